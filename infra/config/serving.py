"""The serving section: ``ServingConfig`` (resources, ingress, autoscaling); the serving checks that need
the whole config and its node pools are in ``cross.py``."""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from infra.config.base import pinned_image, pool_name, positive_cpu, DNS_LABEL_RE, QUANTITY_RE, _cidr, _Model, cpu_millis
from infra.config.node_pools import NodePoolConfig
from infra.config.training import cron_problem

HOSTNAME_RE = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ACM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:acm:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:certificate/[0-9a-f-]{36}$")
MODEL_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # the server's MODEL_VERSION accepts the same
SERVING_DEVICE_ACCELERATOR = {"inf1": "inf1", "inf2": "inf2", "gpu": "nvidia", "cpu": "none"}
NEURON_DEVICES = ("inf1", "inf2")
# The accelerator resource one serving replica requests (the Neuron device plugin advertises both
# aws.amazon.com/neuron, whole devices, and aws.amazon.com/neuroncore, single cores). inf1 keeps whole devices
# (as the seed: inf1.xlarge has one device of 4 NeuronCores-v1). inf2 takes one NeuronCore-v2: the compiled
# sentiment model runs on a single core, and every Inferentia2 device has 2 (inf2.xlarge: 1 device), so a whole
# device per replica would leave half of each accelerator idle. The device plugin allocates cores and sets
# NEURON_RT_VISIBLE_CORES. Only multi-core requests need the Neuron scheduler extension (installed with the chart,
# schedulerName my-scheduler) to get connected cores, so the server keeps the default scheduler. Pool limits stay
# in devices (limits.neuron, Karpenter's aws.amazon.com/neuron): a pool holds limits.neuron x NEURONCORES_PER_DEVICE
# inf2 replicas.
DEVICE_RESOURCE = {"inf1": "aws.amazon.com/neuron", "inf2": "aws.amazon.com/neuroncore", "gpu": "nvidia.com/gpu"}
NEURONCORES_PER_DEVICE = {"inf2": 2}  # Inferentia2: 2 NeuronCores-v2 per device, every size


class ServingResources(_Model):
    """CPU and memory of one serving pod (the accelerator device is added by ``serving.device``).

    Memory request and limit are the same (an OOM kill mid-batch fails every request in the batch);
    CPU may burst from ``cpu`` to ``cpuLimit``. The HPA's target is a percentage of ``cpu``.
    """

    cpu: str = "1"
    cpu_limit: str = "2"
    # default: 4Gi on inf1 (the server may compile the model with neuron-cc at start-up) and gpu (the CUDA
    # context), 2Gi on cpu
    memory: Optional[str] = None

    def memory_for(self, device: str) -> str:
        return self.memory or ("2Gi" if device == "cpu" else "4Gi")

    @field_validator("cpu", "cpu_limit", mode="before")
    @classmethod
    def _cpu(cls, v: Any) -> str:
        return positive_cpu(v)

    @field_validator("memory", mode="before")
    @classmethod
    def _mem(cls, v: Any) -> Optional[str]:
        if v is None:
            return None
        text = str(v).strip()
        if not QUANTITY_RE.match(text) or float(re.match(r"[\d.]+", text).group()) <= 0:
            raise ValueError(f"{text!r} must be a positive Kubernetes quantity such as 2Gi or 512Mi")
        return text

    @model_validator(mode="after")
    def _order(self) -> "ServingResources":
        if cpu_millis(self.cpu) > cpu_millis(self.cpu_limit):
            raise ValueError(f"cpu {self.cpu} is more than cpuLimit {self.cpu_limit}; the request cannot exceed the limit")
        return self


class ServingIngressConfig(_Model):
    """The Ingress used when ``serving.exposure`` is ``ingress`` (AWS Load Balancer Controller, an ALB)."""

    class_name: str = "alb"
    host: Optional[str] = None  # a DNS name the ALB answers for; default: any host
    certificate_arn: Optional[str] = None  # an ACM certificate: HTTPS on 443, HTTP redirects to it

    @field_validator("class_name")
    @classmethod
    def _class(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v):
            raise ValueError(f"{v!r} must be an IngressClass name (lowercase letters, digits, '-')")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not HOSTNAME_RE.match(v):
            raise ValueError(f"{v!r} is not a DNS host name such as sentiment.example.com (lowercase, no scheme or port)")
        return v

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not ACM_ARN_RE.match(v):
            raise ValueError(f"{v!r} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)")
        return v


# NVIDIA/k8s-device-plugin v0.18.2 README: the node label that selects a named config of the plugin's config map,
# and the label its MPS control daemon's DaemonSet selects (set by GFD, which is off here: the NodePool sets it).
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MPS_CAPABLE_LABEL = "nvidia.com/mps.capable"


class GpuSharing(_Model):
    """``serving.gpuSharing``: the serving pool's GPUs advertised as ``replicasPerGpu`` ``nvidia.com/gpu`` each by
    the NVIDIA device plugin, every serving pod taking one shared GPU. ``timeSlicing``: CUDA time slices, no memory
    or fault isolation; ``mps``: CUDA MPS, each pod limited to 1/N of the GPU's memory and compute (experimental
    upstream since v0.15.0). MIG partitions are not supported."""

    strategy: Literal["timeSlicing", "mps"]
    replicas_per_gpu: int = Field(..., ge=2, le=48, description="pods per GPU (CUDA MPS takes at most 48 clients)")

    @property
    def config_name(self) -> str:
        """The device plugin config the serving pool's nodes select (their DEVICE_PLUGIN_CONFIG_LABEL)."""
        return "serving-time-slicing" if self.strategy == "timeSlicing" else "serving-mps"

    def node_labels(self) -> dict[str, str]:
        labels = {DEVICE_PLUGIN_CONFIG_LABEL: self.config_name}
        if self.strategy == "mps":
            labels[MPS_CAPABLE_LABEL] = "true"
        return labels


class NeuronServingConfig(_Model):
    """``serving.neuron`` (device inf1 or inf2): the shapes the model is compiled for, and where it is compiled.

    The compile CronJob (workloads/sentiment/compile_job.py) compiles the serving version for these shapes
    next to it on the models volume every ``compileSchedule`` (a no-op once it is there); the server loads that
    artifact only when its version and shapes match, and exits with the remedy otherwise, unless
    ``compileAtStartup`` lets every pod compile into its own /tmp (minutes per pod)."""

    batch_size: int = Field(8, ge=1, le=1024, description="the compiled batch size (every call is padded to it)")
    seq_len: int = Field(128, ge=8, le=512, description="the compiled tokens per text (the model takes 512 at most)")
    compile_at_startup: bool = False
    compile_schedule: str = "*/10 * * * *"

    @field_validator("compile_schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        text = " ".join(str(v).split())
        if text.startswith(("TZ=", "CRON_TZ=")):
            raise ValueError(f"{text!r}: a TZ= prefix is refused by Kubernetes; give a 5-field cron (in UTC) "
                             "such as '*/10 * * * *'")
        problem = cron_problem(text)
        if problem:
            raise ValueError(f"{problem} (a 5-field cron such as '*/10 * * * *')")
        return text


class ServingConfig(_Model):
    """The sentiment-analysis Deployment (workloads/sentiment)."""

    enabled: bool = True
    # inf1 stays the default everywhere: changing it would move existing stacks' serving hardware
    device: Literal["inf1", "inf2", "gpu", "cpu"] = "inf1"
    replicas: int = Field(3, ge=1, le=100)  # the floor: initial count and the autoscaler's minimum
    image: Optional[str] = None
    exposure: Literal["ingress", "loadBalancer", "none"] = "ingress"
    public: bool = False
    keda: bool = False  # a KEDA ScaledObject instead of the HPA; KEDA itself must be installed by you
    pool: Optional[str] = None  # default: the first node pool whose accelerator matches the device
    max_replicas: Optional[int] = Field(None, ge=1, le=100)  # default: see max_replicas_for
    target_cpu_percent: int = Field(70, ge=10, le=100)
    keda_target_rps: int = Field(50, ge=1, le=100000)  # requests/s per replica before KEDA adds one
    resources: ServingResources = ServingResources()
    max_batch_size: int = Field(32, ge=1, le=4096)
    max_batch_wait_ms: float = Field(5, ge=0, le=1000)
    max_queue: int = Field(512, ge=1, le=1000000)
    workers: int = Field(1, ge=1, le=64)
    # device cpu: the server's CPU_ENGINE (auto: the trainer's fastest ONNX graph within the accuracy budget)
    cpu_engine: Literal["auto", "onnx-int8", "onnx-fp32", "torch-fp32"] = "auto"
    startup_timeout_seconds: int = Field(600, ge=30, le=3600)
    zone_spread: Optional[Literal["required", "preferred"]] = None  # default: required in prod, preferred otherwise
    ingress: ServingIngressConfig = ServingIngressConfig()
    load_balancer_cidrs: Optional[list[str]] = None  # where load-balancer traffic comes from; default: vpc.cidr
    client_namespaces: list[str] = Field(default_factory=list)  # in-cluster namespaces allowed to call the API
    # latest: follow the version the trainer promoted (MODEL_DIR/latest); a version name pins it (a rollback)
    model_version: str = "latest"
    gpu_sharing: Optional[GpuSharing] = None  # device gpu only: several pods per GPU on the serving pool
    neuron: NeuronServingConfig = NeuronServingConfig()  # device inf1/inf2: compiled shapes and the compile job

    @field_validator("neuron")
    @classmethod
    def _neuron(cls, v: NeuronServingConfig, info: ValidationInfo) -> NeuronServingConfig:
        device = info.data.get("device")
        if v.model_fields_set and device is not None and device not in NEURON_DEVICES:
            raise ValueError(f"sets the compiled Neuron model; it needs device inf1 or inf2 (device is {device}): "
                             "remove serving.neuron or set device: inf2")
        return v

    @field_validator("cpu_engine")
    @classmethod
    def _engine(cls, v: str, info: ValidationInfo) -> str:
        device = info.data.get("device")
        if v != "auto" and device is not None and device != "cpu":
            raise ValueError(f"picks the CPU inference engine; it needs device cpu (device is {device}): remove "
                             "cpuEngine or set device: cpu")
        return v

    @field_validator("gpu_sharing")
    @classmethod
    def _sharing(cls, v: Optional[GpuSharing], info: ValidationInfo) -> Optional[GpuSharing]:
        device = info.data.get("device")
        if v is not None and device is not None and device != "gpu":
            raise ValueError(f"shares NVIDIA GPUs; it needs device gpu (device is {device}): remove gpuSharing or "
                             "set device: gpu")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: Optional[str]) -> Optional[str]:
        return pinned_image(v)

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: Optional[str]) -> Optional[str]:
        return pool_name(v)

    @field_validator("load_balancer_cidrs")
    @classmethod
    def _lb_cidrs(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        if v is None:
            return v
        if not v:
            raise ValueError("is empty; list the CIDRs load-balancer traffic comes from, or leave it out for vpc.cidr")
        out = []
        for c in v:
            net = ipaddress.ip_network(_cidr(c), strict=True)
            if net.version != 4:
                raise ValueError(f"{c} is not an IPv4 CIDR (the cluster's pods are IPv4)")
            out.append(str(net))
        return out

    @field_validator("model_version")
    @classmethod
    def _model_version(cls, v: str) -> str:
        if v in (".", "..") or not MODEL_VERSION_RE.match(v):
            raise ValueError(f"{v!r} must be latest or a version folder name on the models volume, such as "
                             "v20260101T000000Z-0123abcd (letters, digits, '.', '_', '-')")
        return v

    @field_validator("client_namespaces")
    @classmethod
    def _namespaces(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if not DNS_LABEL_RE.match(n)]
        if bad:
            raise ValueError(f"{bad} are not namespace names (lowercase letters, digits, '-')")
        return v

    @model_validator(mode="after")
    def _check(self) -> "ServingConfig":
        if self.max_queue < self.max_batch_size:
            raise ValueError(f"maxQueue {self.max_queue} is smaller than maxBatchSize {self.max_batch_size}; "
                             "a full batch could never form")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas {self.max_replicas} is below replicas {self.replicas} (replicas is the minimum)")
        if self.public and self.exposure == "none":
            raise ValueError("public is true but exposure is none; use exposure ingress or loadBalancer")
        if self.exposure != "ingress" and (self.ingress.host or self.ingress.certificate_arn):
            raise ValueError(f"ingress.host/ingress.certificateArn apply to exposure ingress only (exposure is {self.exposure})")
        if self.exposure == "none" and self.load_balancer_cidrs is not None:
            raise ValueError("loadBalancerCidrs is set but exposure is none (no load balancer sends traffic)")
        return self

    # ---- derived settings (used by workloads/sentiment/component.py and the cross checks)
    def pool_for(self, pools: list["NodePoolConfig"]) -> Optional["NodePoolConfig"]:
        """The node pool the pods run on: ``pool`` by name, else the first whose accelerator fits the device."""
        if self.pool is not None:
            return next((p for p in pools if p.name == self.pool), None)
        want = SERVING_DEVICE_ACCELERATOR[self.device]
        return next((p for p in pools if p.accelerator == want), None)

    @property
    def neuron_device(self) -> bool:
        return self.device in NEURON_DEVICES

    @property
    def replicas_per_device(self) -> int:
        """Replicas one accelerator device holds: replicasPerGpu with gpuSharing, the NeuronCores of an inf2
        device (a replica takes one core), else 1."""
        if self.gpu_sharing:
            return self.gpu_sharing.replicas_per_gpu
        return NEURONCORES_PER_DEVICE.get(self.device, 1)

    def device_limit(self, pool: "NodePoolConfig") -> Optional[int]:
        """How many replicas the pool's accelerator devices hold (``replicas_per_device`` per device the pool
        may launch); None on CPU."""
        limit = {"inf1": pool.limits.neuron, "inf2": pool.limits.neuron, "gpu": pool.limits.gpu}.get(self.device)
        return limit * self.replicas_per_device if limit else limit

    def max_replicas_for(self, pool: "NodePoolConfig") -> int:
        """``maxReplicas``, or by default twice ``replicas`` capped at the pool's device limit (never below replicas)."""
        if self.max_replicas is not None:
            return self.max_replicas
        limit = self.device_limit(pool)
        most = min(2 * self.replicas, 100) if limit is None else min(2 * self.replicas, limit)
        return max(self.replicas, most)

    def zone_spread_for(self, environment: str) -> str:
        return self.zone_spread or ("required" if environment == "prod" else "preferred")
