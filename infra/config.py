"""Stack configuration: one validated ``PlatformConfig``.

This module validates data and nothing else: it imports no resource module, so the
CLI, the cost estimator and the teardown guard can read a stack's settings without
building a Pulumi program.

Config keys are camelCase in ``Pulumi.<stack>.yaml`` (``eks-ml-platform:cluster`` with
``version: "1.34"``). Every user mistake becomes one line that names the key, e.g.
``eks-ml-platform:cluster.version: 1.19 is not supported; use 1.30-1.36``.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

PROJECT = "eks-ml-platform"
SUPPORTED_K8S = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36")
DEFAULT_K8S = "1.34"
NVIDIA_FAMILIES = ("g4dn", "g5", "g5g", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")
NEURON_FAMILIES = {"inf1": ("inf1",), "inf2": ("inf2",), "trn1": ("trn1", "trn1n"), "trn2": ("trn2",)}
ARM64_ONLY_FAMILIES = ("g5g",)
INF1_SIZES = ("xlarge", "2xlarge", "6xlarge", "24xlarge")
# A pinned EKS-optimized AL2023 release (awslabs/amazon-eks-ami tag), never @latest.
AMI_ALIAS_RE = re.compile(r"^al2023@v\d{8}$")
AWS_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
DURATION_RE = re.compile(r"^(\d+(ns|us|µs|ms|s|m|h))+$|^Never$")
QUANTITY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")


class ConfigError(Exception):
    """Bad stack configuration. ``problems`` holds one readable line per mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )


def _cidr(value: str, key: str = "CIDR") -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid {key} ({exc})") from None
    return str(net)


# ---------------------------------------------------------------- cluster
class EndpointConfig(_Model):
    """API server endpoint access. Private access is on; public access is optional and CIDR-restricted."""

    private_access: bool = True
    public_access: bool = False
    public_access_cidrs: list[str] = Field(default_factory=list)

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        return [_cidr(c) for c in v]

    @model_validator(mode="after")
    def _check(self) -> "EndpointConfig":
        if not self.private_access and not self.public_access:
            raise ValueError("privateAccess and publicAccess cannot both be false (the API server would be unreachable)")
        if self.public_access and not self.public_access_cidrs:
            raise ValueError("publicAccess is true but publicAccessCidrs is empty; list the CIDRs allowed to reach the API "
                             "(0.0.0.0/0 must be written out on purpose)")
        if not self.public_access and self.public_access_cidrs:
            raise ValueError("publicAccessCidrs is set but publicAccess is false")
        return self


class AdminPrincipal(_Model):
    """An IAM principal given cluster access through an EKS access entry."""

    principal_arn: str
    policy: Literal["cluster-admin", "admin", "edit", "view"] = "cluster-admin"

    @field_validator("principal_arn")
    @classmethod
    def _arn(cls, v: str) -> str:
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$", v):
            raise ValueError(f"{v!r} is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>)")
        return v


class SystemNodesConfig(_Model):
    """The managed on-demand node group (tainted CriticalAddonsOnly) that runs Karpenter and controllers."""

    instance_types: list[str] = Field(default_factory=lambda: ["m6i.large"], min_length=1)
    desired_size: int = Field(2, ge=1, le=20)
    min_size: int = Field(2, ge=1, le=20)
    max_size: int = Field(3, ge=1, le=50)
    disk_size_gib: int = Field(50, ge=20, le=1000)

    @model_validator(mode="after")
    def _sizes(self) -> "SystemNodesConfig":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"need minSize <= desiredSize <= maxSize (got {self.min_size}, {self.desired_size}, {self.max_size})")
        return self


LOG_TYPES = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]


class ClusterConfig(_Model):
    name: str = ""
    version: str = DEFAULT_K8S
    endpoint: EndpointConfig = EndpointConfig()
    logging: list[LOG_TYPES] = Field(default_factory=lambda: ["api", "audit", "authenticator"])
    admins: list[AdminPrincipal] = Field(default_factory=list)
    system_nodes: SystemNodesConfig = SystemNodesConfig()
    deletion_protection: Optional[bool] = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        text = str(v).strip()
        if isinstance(v, float) or re.fullmatch(r"1\.\d", text):
            # YAML reads 1.30 as the float 1.3: ask for a quoted string rather than guess.
            if isinstance(v, float) and f"{v}" + "0" in SUPPORTED_K8S:
                raise ValueError(f"{v} was read as a number; quote it: \"{v}0\"")
        if text not in SUPPORTED_K8S:
            raise ValueError(f"{text} is not supported; use {SUPPORTED_K8S[0]}-{SUPPORTED_K8S[-1]}")
        return text

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,37}", v):
            raise ValueError(f"{v!r} must start with a letter and hold only letters, digits and '-' (max 38 chars)")
        return v


# ---------------------------------------------------------------- network
class VpcConfig(_Model):
    """Create a VPC (cidr, azCount) or bring your own (id + subnet ids)."""

    cidr: str = "10.42.0.0/16"
    az_count: int = 2
    nat_gateways: Optional[Literal["single", "perAz"]] = None  # default: perAz in prod, single otherwise
    id: Optional[str] = None
    private_subnet_ids: list[str] = Field(default_factory=list)
    public_subnet_ids: list[str] = Field(default_factory=list)

    @field_validator("cidr")
    @classmethod
    def _cidr_ok(cls, v: str) -> str:
        net = ipaddress.ip_network(_cidr(v), strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"{v} must be an IPv4 CIDR between /16 and /20 (room for 2-3 AZs of private and public subnets)")
        return str(net)

    @field_validator("az_count")
    @classmethod
    def _az(cls, v: int) -> int:
        if v not in (2, 3):
            raise ValueError(f"{v} is out of range; use 2 or 3 (EKS needs subnets in at least 2 AZs)")
        return v

    @field_validator("id")
    @classmethod
    def _vpc_id(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"vpc-[0-9a-f]{8,17}", v):
            raise ValueError(f"{v!r} is not a VPC id (vpc-xxxxxxxx)")
        return v

    @field_validator("private_subnet_ids", "public_subnet_ids")
    @classmethod
    def _subnets(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", s)]
        if bad:
            raise ValueError(f"{bad} are not subnet ids (subnet-xxxxxxxx)")
        return v

    @model_validator(mode="after")
    def _byo(self) -> "VpcConfig":
        if self.id and len(self.private_subnet_ids) < 2:
            raise ValueError("a bring-your-own VPC (vpc.id) needs privateSubnetIds in at least 2 AZs")
        if not self.id and (self.private_subnet_ids or self.public_subnet_ids):
            raise ValueError("subnet ids were given without vpc.id; set vpc.id to bring your own VPC")
        return self

    @property
    def byo(self) -> bool:
        return self.id is not None


# ---------------------------------------------------------------- node pools
class PoolLimits(_Model):
    """Ceilings for one NodePool: Karpenter launches nothing past them."""

    cpu: int = Field(..., description="vCPUs")
    memory: str = "1000Gi"
    gpu: Optional[int] = None
    neuron: Optional[int] = None

    @field_validator("cpu", "gpu", "neuron")
    @classmethod
    def _positive(cls, v: Optional[int]) -> Optional[int]:
        if v is not None and v <= 0:
            raise ValueError(f"{v} must be a positive integer")
        return v

    @field_validator("memory")
    @classmethod
    def _mem(cls, v: str) -> str:
        if not QUANTITY_RE.match(str(v)) or str(v).startswith(("0", "-")):
            raise ValueError(f"{v!r} must be a positive Kubernetes quantity such as 512Gi")
        return str(v)


class DisruptionBudget(_Model):
    nodes: str = "10%"
    reasons: Optional[list[Literal["Underutilized", "Empty", "Drifted"]]] = None
    schedule: Optional[str] = None
    duration: Optional[str] = None

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, v: str) -> str:
        if not re.fullmatch(r"(100|[1-9]?[0-9])%|[0-9]+", str(v)):
            raise ValueError(f"{v!r} must be a node count or a percentage such as 10%")
        return str(v)

    @model_validator(mode="after")
    def _sched(self) -> "DisruptionBudget":
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration must be set together")
        return self


class NodePoolConfig(_Model):
    """One Karpenter NodePool and its EC2NodeClass (built by components/karpenter.py).

    ``capacityTypes: [spot, on-demand]`` is spot with on-demand fallback: Karpenter launches spot
    while it is offered and falls back to on-demand when no spot offering fits. ``[spot]`` is
    spot only, ``[on-demand]`` never uses spot. ``amiAlias`` overrides the pinned AL2023 release
    (infra/versions.py AMI_ALIAS) for this pool; ``rootVolumeGib`` defaults by accelerator (50 GiB
    plain, 200 GiB NVIDIA, 150 GiB Neuron: the CUDA/Neuron images are large). ``imdsHopLimit``
    stays 1 (pods cannot reach the node's IMDS credentials) unless a pod on the pool needs IMDS.
    """

    name: str
    accelerator: Literal["none", "nvidia", "inf1", "inf2", "trn1", "trn2"] = "none"
    instance_families: list[str] = Field(..., min_length=1)
    instance_sizes: list[str] = Field(default_factory=list)
    capacity_types: list[Literal["spot", "on-demand", "reserved"]] = Field(default_factory=lambda: ["spot", "on-demand"], min_length=1)
    architectures: list[Literal["amd64", "arm64"]] = Field(default_factory=lambda: ["amd64"], min_length=1)
    limits: PoolLimits
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmptyOrUnderutilized"
    consolidate_after: str = "60s"
    expire_after: str = "720h"
    budgets: list[DisruptionBudget] = Field(default_factory=lambda: [DisruptionBudget()])
    weight: Optional[int] = Field(None, ge=1, le=100)
    root_volume_gib: Optional[int] = Field(None, ge=20, le=16000)
    ami_alias: Optional[str] = None
    imds_hop_limit: int = Field(1, ge=1, le=64)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", v):
            raise ValueError(f"{v!r} must be a DNS label (lowercase letters, digits, '-')")
        return v

    @field_validator("ami_alias")
    @classmethod
    def _ami_alias(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not AMI_ALIAS_RE.match(v):
            raise ValueError(f"{v!r} is not a pinned AL2023 alias; use al2023@vYYYYMMDD (an awslabs/amazon-eks-ami "
                             "release such as al2023@v20260714), never @latest")
        return v

    @field_validator("capacity_types", "architectures", "instance_families", "instance_sizes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"{', '.join(dupes)} listed more than once")
        return v

    @field_validator("consolidate_after", "expire_after")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not DURATION_RE.match(str(v)):
            raise ValueError(f"{v!r} must be a duration such as 30s, 10m, 720h or Never")
        return str(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            domain = key.split("/")[0] if "/" in key else ""
            if domain.endswith(("karpenter.sh", "kubernetes.io", "k8s.io")) and not domain.startswith("node-restriction"):
                raise ValueError(f"label {key!r} uses a domain Karpenter or Kubernetes restricts")
        return v

    @model_validator(mode="after")
    def _accelerator(self) -> "NodePoolConfig":
        fams = self.instance_families
        if self.accelerator == "nvidia":
            bad = [f for f in fams if f not in NVIDIA_FAMILIES]
            if bad:
                raise ValueError(f"accelerator nvidia needs NVIDIA GPU families ({', '.join(NVIDIA_FAMILIES)}); "
                                 f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not")
            if self.limits.gpu is None:
                raise ValueError("a GPU pool needs limits.gpu (the most nvidia.com/gpu it may launch)")
        elif self.accelerator != "none":
            allowed = NEURON_FAMILIES[self.accelerator]
            bad = [f for f in fams if f not in allowed]
            if bad:
                raise ValueError(f"accelerator {self.accelerator} allows instance families {list(allowed)} only; got {bad}")
            if self.limits.neuron is None:
                raise ValueError(f"a {self.accelerator} pool needs limits.neuron (the most aws.amazon.com/neuron devices)")
            if self.accelerator == "inf1":
                bad_sizes = [s for s in self.instance_sizes if s not in INF1_SIZES]
                if bad_sizes:
                    raise ValueError(f"inf1 comes in sizes {list(INF1_SIZES)}; {bad_sizes} do not exist")
                if "arm64" in self.architectures:
                    raise ValueError("inf1 instances are x86_64 only; set architectures: [amd64]")
        else:
            accel = [f for f in fams if f in NVIDIA_FAMILIES or any(f in v for v in NEURON_FAMILIES.values())]
            if accel:
                raise ValueError(f"families {accel} are accelerated; set accelerator (nvidia/inf1/inf2/trn1/trn2) so the "
                                 "pool gets its taint and device limits")
            if self.limits.gpu or self.limits.neuron:
                raise ValueError("limits.gpu/limits.neuron only make sense on an accelerator pool")
        for size in self.instance_sizes:
            if not re.fullmatch(r"(nano|micro|small|medium|large|metal|\d*xlarge|metal-\d+xl)", size):
                raise ValueError(f"instance size {size!r} is not an EC2 size (large, xlarge, 2xlarge, ...)")
        arm_only = [f for f in fams if f in ARM64_ONLY_FAMILIES]
        if arm_only and "arm64" not in self.architectures:
            raise ValueError(f"families {arm_only} are arm64 (Graviton) only; add arm64 to architectures")
        return self

    @property
    def root_volume(self) -> int:
        """Root volume size in GiB: the configured size, or a default sized for the pool's images."""
        if self.root_volume_gib is not None:
            return self.root_volume_gib
        return {"none": 50, "nvidia": 200}.get(self.accelerator, 150)

    @property
    def neuron(self) -> bool:
        return self.accelerator in NEURON_FAMILIES


def default_node_pools(environment: str) -> list[NodePoolConfig]:
    spot_first = ["spot", "on-demand"]
    prod = environment == "prod"
    return [
        NodePoolConfig(
            name="cpu", instance_families=["m6i", "m7i", "c6i", "c7i", "r6i"], capacity_types=spot_first,
            limits=PoolLimits(cpu=64 if not prod else 512, memory="256Gi" if not prod else "2048Gi"),
            consolidation_policy="WhenEmptyOrUnderutilized", consolidate_after="60s",
        ),
        NodePoolConfig(
            name="gpu", accelerator="nvidia", instance_families=["g5", "g6", "g6e"] if not prod else ["g5", "g6", "g6e", "p4d", "p5"],
            capacity_types=spot_first, limits=PoolLimits(cpu=96 if not prod else 1024, memory="768Gi" if not prod else "8192Gi", gpu=4 if not prod else 32),
            consolidation_policy="WhenEmpty", consolidate_after="5m", root_volume_gib=200,
            budgets=[DisruptionBudget(nodes="20%")], expire_after="168h",
        ),
        # dev: spot inf1.xlarge as in the seed (1 Inferentia device, 4 NeuronCores per node);
        # staging/prod: larger sizes too, spot with on-demand fallback.
        NodePoolConfig(
            name="inf1", accelerator="inf1", instance_families=["inf1"],
            instance_sizes=["xlarge"] if environment == "dev" else ["xlarge", "2xlarge"] if not prod else ["xlarge", "2xlarge", "6xlarge"],
            capacity_types=["spot"] if environment == "dev" else spot_first,
            limits=PoolLimits(cpu=32 if not prod else 192, memory="128Gi" if not prod else "768Gi", neuron=4 if not prod else 24),
            consolidation_policy="WhenEmpty", consolidate_after="5m", root_volume_gib=150,
            budgets=[DisruptionBudget(nodes="20%")], expire_after="168h",
        ),
    ]


# ---------------------------------------------------------------- add-ons
class AddonToggle(_Model):
    """Per add-on switch and version override (defaults live in infra/versions.py)."""

    enabled: bool = True
    version: Optional[str] = None


class AddonsConfig(_Model):
    karpenter: AddonToggle = AddonToggle()
    nvidia_device_plugin: AddonToggle = AddonToggle()
    dcgm_exporter: AddonToggle = AddonToggle()
    neuron: AddonToggle = AddonToggle()
    rook_ceph: AddonToggle = AddonToggle()
    monitoring: AddonToggle = AddonToggle()
    training_operator: AddonToggle = AddonToggle()
    # The AWS Load Balancer Controller (components/load_balancer.py): the ALB of serving.exposure ingress
    # and the NLB of serving.exposure loadBalancer.
    load_balancer_controller: AddonToggle = AddonToggle()


class StorageConfig(_Model):
    """Rook-Ceph: OSDs on PVCs backed by encrypted gp3 EBS (see README)."""

    osd_count: int = Field(3, ge=1, le=64)
    osd_size_gib: int = Field(100, ge=10, le=16000)
    replicas: Optional[int] = Field(None, ge=1, le=5)  # default: 3 in prod, 2 otherwise
    failure_domain: Optional[Literal["host", "zone"]] = None  # default: zone in prod, host otherwise
    mon_count: int = 3
    # Teardown switch (Rook's cleanup guide): sets the CephCluster cleanupPolicy so that deleting it wipes
    # the data. Rook stops reconciling the moment this is applied, so it is the step right before
    # `pulumi destroy` (set it, `pulumi up`, then destroy), never a standing setting.
    destroy_data: bool = False

    @field_validator("mon_count")
    @classmethod
    def _mons(cls, v: int) -> int:
        if v not in (1, 3, 5):
            raise ValueError(f"{v} is not allowed; use 1, 3 or 5 (an odd count keeps a quorum)")
        return v

    @model_validator(mode="after")
    def _layout(self) -> "StorageConfig":
        if self.replicas is not None and self.replicas > self.osd_count:
            raise ValueError(f"replicas {self.replicas} needs at least {self.replicas} OSDs; osdCount is {self.osd_count}")
        return self


class MonitoringConfig(_Model):
    retention: str = "15d"
    storage_gib: int = Field(50, ge=5, le=16000)
    gpu_idle_minutes: int = Field(30, ge=1, le=1440)
    serving_p99_target_ms: int = Field(250, ge=1, le=60000)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        if not re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", v):
            raise ValueError(f"{v!r} must be a Prometheus duration such as 15d")
        return v


def _camel(name: str) -> str:
    return to_camel(name)


CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_NAMES = {
    "month": {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())},
    "day of week": {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())},
}
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
S3_URI_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<prefix>[^\s]*))?$")
HF_URI_RE = re.compile(r"^hf://(?P<id>[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?)$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                      r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$")
TIME_ZONE_RE = re.compile(r"^(UTC|[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+){1,2})$")
_MEM_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def memory_bytes(value: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "16Gi", "1G") in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?", str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a memory quantity such as 512Mi or 16Gi")
    return int(float(m.group(1)) * _MEM_UNITS[m.group(2) or ""])


def cron_problem(expr: str) -> Optional[str]:
    """Why a CronJob schedule is invalid (standard 5-field cron or a macro), or None."""
    text = " ".join(str(expr).split())
    if text.startswith("@"):
        return None if text in CRON_MACROS else f"{text!r} is not a cron macro; use one of {', '.join(CRON_MACROS)}"
    if re.match(r"^(CRON_)?TZ=", text):
        return "set the time zone with training.timeZone, not a TZ= prefix (Kubernetes rejects it)"
    parts = text.split(" ")
    if len(parts) != 5:
        return (f"{text!r} has {len(parts)} field(s); a cron schedule has 5 (minute hour day-of-month month "
                "day-of-week), e.g. '0 3 * * 0', or use a macro such as @daily")
    for part, (field_name, lo, hi) in zip(parts, _CRON_FIELDS):
        names = _CRON_NAMES.get(field_name, {})
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) < 1):
                return f"{field_name} {item!r}: the step after '/' must be a positive number"
            if base in ("*", "?"):
                if base == "?" and field_name not in ("day of month", "day of week"):
                    return f"{field_name} {item!r}: '?' is only allowed for day of month and day of week"
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(bounds):
                return f"{field_name} {item!r} is not a number, a range a-b, a step */n or a list a,b"
            values = []
            for b in bounds:
                if b.isdigit():
                    values.append(int(b))
                elif b.upper() in names:
                    values.append(names[b.upper()])
                else:
                    return f"{field_name} {b!r} is not a number from {lo} to {hi}"
            if any(not lo <= v <= hi for v in values):
                return f"{field_name} {base!r} is out of range ({lo}-{hi})"
            if len(values) == 2 and values[0] > values[1]:
                return f"{field_name} range {base!r} runs backwards"
    return None


class TrainingDatasetConfig(_Model):
    """How data prep reads ``training.datasetSource`` (columns for s3:// and hf://; the rest for hf:// only)."""

    text_column: str = "text"
    label_column: str = "label"
    config: Optional[str] = None  # hf: the dataset config name
    revision: Optional[str] = None  # hf: pin a dataset revision (a commit)
    train_split: Optional[str] = None  # hf: default "train"
    eval_split: Optional[str] = None  # hf: default a seeded 20% split of the train split

    @field_validator("text_column", "label_column", "config", "train_split", "eval_split")
    @classmethod
    def _name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\[\]:%+-]{0,127}", v):
            raise ValueError(f"{v!r} must be a column, config or split name (letters, digits, '_', '.', '-')")
        return v

    @field_validator("revision")
    @classmethod
    def _revision(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,127}", v):
            raise ValueError(f"{v!r} must be a commit sha, tag or branch of the dataset repository")
        return v


class TrainingConfig(_Model):
    """The sample fine-tuning job (workloads/training) and the training operator job around it.

    ``cpu``/``memory`` are per replica (master, each worker, each TFJob PS); requests equal limits
    (Guaranteed QoS, so a training pod is the last to be evicted under node pressure).
    """

    enabled: bool = True
    kind: Literal["PyTorchJob", "TFJob"] = "PyTorchJob"
    workers: int = 1
    device: Literal["cpu", "gpu"] = "gpu"
    gpus_per_worker: int = Field(1, ge=0, le=8)
    pool: Optional[str] = None  # default: the nvidia pool with the most GPUs (gpu), the first plain pool (cpu)
    cpu: Optional[str] = None  # per replica; default: 3 with a GPU, 2 on CPU
    memory: Optional[str] = None  # per replica; default: 12Gi with a GPU, 6Gi on CPU
    shm_size: str = "1Gi"  # /dev/shm (tmpfs, counts against memory) for DataLoader workers
    image: Optional[str] = None  # default: the sample trainer (IMAGES["trainer"] / ["trainer_gpu"])
    command: list[str] = Field(default_factory=list)  # your own trainer: replaces the sample's command and args
    epochs: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(16, ge=1, le=4096)
    learning_rate: float = Field(1e-4, gt=0, le=1)
    max_samples: Optional[int] = Field(None, ge=1)
    base_model: Optional[str] = None  # a hub id (needs egress) or a path in the image; default: the shipped MiniLM
    checkpoint_every_steps: int = Field(200, ge=0, le=1_000_000)  # 0: only per epoch (and on SIGTERM)
    termination_grace_period_seconds: int = Field(120, ge=30, le=3600)  # time to write the SIGTERM checkpoint
    backoff_limit: int = Field(6, ge=0, le=100)
    schedule: Optional[str] = None  # cron for periodic retraining
    time_zone: Optional[str] = None  # IANA zone for schedule; default: the controller's (UTC on EKS)
    dataset_source: Optional[str] = None  # s3://bucket/prefix or hf://<dataset>; default: the shipped sample
    dataset: TrainingDatasetConfig = TrainingDatasetConfig()
    datasets_size_gib: int = Field(20, ge=1, le=16000)  # the RWX PVC `datasets` (CephFS)
    models_size_gib: int = Field(20, ge=1, le=16000)  # the RWX PVC `models` (CephFS), read by serving
    parameter_servers: int = Field(1, ge=0, le=16)

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"{v} workers: a job needs at least 1 worker besides the master")
        return v

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not DNS_LABEL_RE.match(v):
            raise ValueError(f"{v!r} must be a node pool name (lowercase letters, digits, '-')")
        return v

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, v: Any) -> Optional[str]:
        if v is None:
            return v
        text = str(v).strip()
        if cpu_millis(text) <= 0:
            raise ValueError(f"{text!r} must be more than 0")
        return text

    @field_validator("memory", "shm_size", mode="before")
    @classmethod
    def _mem(cls, v: Any) -> Optional[str]:
        if v is None:
            return v
        text = str(v).strip()
        if memory_bytes(text) <= 0:
            raise ValueError(f"{text!r} must be a positive Kubernetes quantity such as 512Mi or 16Gi")
        return text

    @field_validator("image")
    @classmethod
    def _image(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if not IMAGE_RE.match(v):
            raise ValueError(f"{v!r} is not a pinned image reference (registry/name:tag or registry/name@sha256:<digest>)")
        if v.endswith(":latest"):
            raise ValueError(f"{v!r} uses :latest; pin a version tag or a digest so every replica runs the same code")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str]) -> list[str]:
        if any(not str(c).strip() for c in v):
            raise ValueError("holds an empty string; give the executable and its arguments, e.g. [python, /app/train.py]")
        return v

    @field_validator("base_model")
    @classmethod
    def _base_model(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (not v or any(ch.isspace() for ch in v)):
            raise ValueError(f"{v!r} must be a hub id such as sentence-transformers/all-MiniLM-L6-v2 or a path in the image")
        return v

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        text = " ".join(v.split())
        problem = cron_problem(text)
        if problem:
            raise ValueError(problem)
        return text

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not TIME_ZONE_RE.match(v):
            raise ValueError(f"{v!r} is not an IANA time zone such as UTC or Europe/Berlin")
        return v

    @field_validator("dataset_source")
    @classmethod
    def _source(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if v.startswith("s3://"):
            m = S3_URI_RE.match(v)
            if not m or ".." in m.group("bucket") or (m.group("prefix") or "").startswith("/"):
                raise ValueError(f"{v!r} is not an S3 URI such as s3://my-bucket/datasets/sentiment "
                                 "(bucket: 3-63 lowercase letters, digits, '.', '-')")
            return v
        if v.startswith("hf://"):
            if not HF_URI_RE.match(v):
                raise ValueError(f"{v!r} is not a Hugging Face dataset id such as hf://stanfordnlp/sst2")
            return v
        raise ValueError(f"{v!r} has an unknown scheme; use s3://bucket/prefix or hf://<dataset id>, "
                         "or leave it out for the shipped sample")

    @model_validator(mode="after")
    def _check(self) -> "TrainingConfig":
        if self.time_zone and not self.schedule:
            raise ValueError("timeZone is set but schedule is not; it only applies to periodic retraining")
        src = self.dataset_source or ""
        ds_set = self.dataset.model_fields_set
        if not src and ds_set:
            raise ValueError(f"dataset.{sorted(_camel(f) for f in ds_set)[0]} is set but datasetSource is not; "
                             "the shipped sample has fixed columns")
        hf_only = sorted(_camel(f) for f in ds_set & {"config", "revision", "train_split", "eval_split"})
        if src.startswith("s3://") and hf_only:
            raise ValueError(f"dataset.{hf_only[0]} only applies to hf:// sources (an s3:// prefix holds train.jsonl "
                             "and, optionally, eval.jsonl)")
        if memory_bytes(self.shm_size) >= memory_bytes(self.memory_per_replica):
            raise ValueError(f"shmSize {self.shm_size} must be less than memory {self.memory_per_replica} "
                             "(/dev/shm is counted against the pod's memory limit)")
        return self

    # ---- derived settings
    @property
    def cpu_per_replica(self) -> str:
        return self.cpu or ("3" if self.device == "gpu" else "2")

    @property
    def memory_per_replica(self) -> str:
        return self.memory or ("12Gi" if self.device == "gpu" else "6Gi")

    @property
    def gpu_replicas(self) -> int:
        """Replicas that get GPUs: master + workers (PyTorchJob) or the workers (TFJob; PS stay on CPU)."""
        if self.device != "gpu":
            return 0
        return self.workers + 1 if self.kind == "PyTorchJob" else self.workers

    @property
    def replicas(self) -> int:
        return self.workers + (1 if self.kind == "PyTorchJob" else self.parameter_servers)

    @property
    def dataset_name(self) -> str:
        """The folder under the datasets PVC (``/data/<name>``) that data prep fills and the trainer reads."""
        src = self.dataset_source
        if not src:
            return "sample"
        scheme, _, rest = src.partition("://")
        slug = re.sub(r"[^a-z0-9]+", "-", rest.lower()).strip("-")
        return f"{scheme}-{slug}"[:63].rstrip("-")

    def pool_for(self, pools: list[NodePoolConfig]) -> Optional[NodePoolConfig]:
        """The node pool the trainer replicas run on."""
        if self.pool is not None:
            return next((p for p in pools if p.name == self.pool), None)
        if self.device == "gpu":
            gpu = [p for p in pools if p.accelerator == "nvidia"]
            return max(gpu, key=lambda p: p.limits.gpu or 0) if gpu else None
        return cpu_pool(pools)


def cpu_pool(pools: list[NodePoolConfig]) -> Optional[NodePoolConfig]:
    """The pool for CPU-only pods (data prep, TFJob PS, CPU training): the one named cpu, else the first plain pool."""
    plain = [p for p in pools if p.accelerator == "none"]
    return next((p for p in plain if p.name == "cpu"), plain[0] if plain else None)


CPU_QUANTITY_RE = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOSTNAME_RE = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ACM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:acm:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:certificate/[0-9a-f-]{36}$")
SERVING_DEVICE_ACCELERATOR = {"inf1": "inf1", "gpu": "nvidia", "cpu": "none"}


def cpu_millis(value: str) -> int:
    """A Kubernetes CPU quantity ("500m", "1", "1.5") in millicores."""
    text = str(value)
    if not CPU_QUANTITY_RE.match(text):
        raise ValueError(f"{value!r} is not a CPU quantity such as 500m, 1 or 1.5")
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


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
        text = str(v).strip()
        if cpu_millis(text) <= 0:
            raise ValueError(f"{text!r} must be more than 0")
        return text

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


class ServingConfig(_Model):
    """The sentiment-analysis Deployment (workloads/sentiment)."""

    enabled: bool = True
    device: Literal["inf1", "gpu", "cpu"] = "inf1"
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
    startup_timeout_seconds: int = Field(600, ge=30, le=3600)
    zone_spread: Optional[Literal["required", "preferred"]] = None  # default: required in prod, preferred otherwise
    ingress: ServingIngressConfig = ServingIngressConfig()
    load_balancer_cidrs: Optional[list[str]] = None  # where load-balancer traffic comes from; default: vpc.cidr
    client_namespaces: list[str] = Field(default_factory=list)  # in-cluster namespaces allowed to call the API

    @field_validator("image")
    @classmethod
    def _image(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if not IMAGE_RE.match(v):
            raise ValueError(f"{v!r} is not a pinned image reference (registry/name:tag or registry/name@sha256:<digest>)")
        if v.endswith(":latest"):
            raise ValueError(f"{v!r} uses :latest; pin a version tag or a digest so every replica runs the same code")
        return v

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not DNS_LABEL_RE.match(v):
            raise ValueError(f"{v!r} must be a node pool name (lowercase letters, digits, '-')")
        return v

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

    def device_limit(self, pool: "NodePoolConfig") -> Optional[int]:
        """How many accelerator devices the pool may launch (one per replica); None on CPU."""
        return {"inf1": pool.limits.neuron, "gpu": pool.limits.gpu}.get(self.device)

    def max_replicas_for(self, pool: "NodePoolConfig") -> int:
        """``maxReplicas``, or by default twice ``replicas`` capped at the pool's device limit (never below replicas)."""
        if self.max_replicas is not None:
            return self.max_replicas
        limit = self.device_limit(pool)
        most = min(2 * self.replicas, 100) if limit is None else min(2 * self.replicas, limit)
        return max(self.replicas, most)

    def zone_spread_for(self, environment: str) -> str:
        return self.zone_spread or ("required" if environment == "prod" else "preferred")


# ---------------------------------------------------------------- top level
class PlatformConfig(_Model):
    stack: str = "dev"
    environment: Literal["dev", "staging", "prod"] = "dev"
    ephemeral: bool = False
    protect: bool = False
    region: str = "us-west-2"
    cluster: ClusterConfig = ClusterConfig()
    vpc: VpcConfig = VpcConfig()
    addons: AddonsConfig = AddonsConfig()
    node_pools: Optional[list[NodePoolConfig]] = None
    storage: StorageConfig = StorageConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()
    allow_public_load_balancers: bool = False
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not AWS_REGION_RE.match(v):
            raise ValueError(f"{v!r} is not an AWS region such as us-west-2")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if k.lower().startswith("aws:"):
                raise ValueError(f"tag key {k!r} uses the reserved aws: prefix")
        return v

    @model_validator(mode="before")
    @classmethod
    def _environment_defaults(cls, data: Any) -> Any:
        """prod spreads over 3 AZs unless told otherwise (Ceph size 3 across zones needs them)."""
        if isinstance(data, dict) and data.get("environment") == "prod":
            vpc = data.get("vpc")
            if vpc is None:
                data = {**data, "vpc": {"azCount": 3}}
            elif isinstance(vpc, dict) and not ({"azCount", "az_count", "id"} & set(vpc)):
                data = {**data, "vpc": {**vpc, "azCount": 3}}
        return data

    @model_validator(mode="after")
    def _cross(self) -> "PlatformConfig":
        problems = []
        if self.environment == "prod":
            if not self.cluster.admins:
                problems.append(("cluster.admins", "prod needs at least one admin principal (an access entry), "
                                 "or nobody can reach the cluster"))
            if self.ephemeral:
                problems.append(("ephemeral", "prod cannot be ephemeral (ephemeral stacks may be torn down by automation)"))
        pools = self.pools
        names = [p.name for p in pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(("nodePools", f"duplicate pool names: {', '.join(dupes)}"))
        if self.addons.rook_ceph.enabled:
            problems += self._storage_problems(pools)
        if self.training.enabled:
            problems += self._training_problems(pools)
        problems += self._load_balancer_problems()
        if self.serving.enabled:
            want = {"inf1": "inf1", "gpu": "nvidia"}.get(self.serving.device)
            if want and not any(p.accelerator == want for p in pools):
                problems.append(("serving.device", f"{self.serving.device} needs a node pool with accelerator {want}"))
            if self.serving.public and not self.allow_public_load_balancers:
                problems.append(("serving.public", "a public endpoint needs allowPublicLoadBalancers: true"))
            if self.serving.exposure != "none" and not self.addons.load_balancer_controller.enabled:
                what = "the ALB Ingress" if self.serving.exposure == "ingress" else "the NLB Service"
                problems.append(("addons.loadBalancerController.enabled",
                                 f"serving.exposure {self.serving.exposure} needs the AWS Load Balancer Controller "
                                 f"({what} never gets a load balancer without it); enable it or set "
                                 "serving.exposure: none"))
            problems += self._serving_problems(pools)
        if problems:
            raise _CrossProblems(problems)
        return self

    def _storage_problems(self, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
        """Ceph layouts that would never become healthy (components/storage.py)."""
        out = []
        size, domain = self.ceph_replicas, self.ceph_failure_domain
        if self.storage.osd_count < size:
            out.append(("storage.osdCount", f"{self.storage.osd_count} OSDs cannot hold {size} replicas; "
                        f"use at least {size} (or lower storage.replicas)"))
        if domain == "zone" and not self.vpc.byo and self.vpc.az_count < size:
            out.append(("storage.failureDomain", f"zone needs at least {size} AZs for {size} replicas; "
                        f"vpc.azCount is {self.vpc.az_count} (use failureDomain host or more AZs)"))
        if self.addons.karpenter.enabled and not any(
                p.accelerator == "none" and "on-demand" in p.capacity_types for p in pools):
            out.append(("nodePools", "Rook-Ceph runs on on-demand nodes of an untainted pool: add 'on-demand' to "
                        "the capacityTypes of a pool with accelerator none"))
        return out

    def _load_balancer_problems(self) -> list[tuple[str, str]]:
        """The AWS Load Balancer Controller's IAM policy is vendored for one chart version (components/load_balancer.py)."""
        from infra.versions import CHARTS  # pinned data only (no resource module)

        lbc, pinned = self.addons.load_balancer_controller, CHARTS["load_balancer_controller"].version
        if lbc.enabled and lbc.version is not None and lbc.version != pinned:
            return [("addons.loadBalancerController.version", f"{lbc.version} is not vendored; the platform ships the "
                     f"controller's IAM policy for chart {pinned} (components/data/aws-load-balancer-controller/): "
                     "vendor the new version's policy and bump infra/versions.py")]
        return []

    def _training_problems(self, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
        """Training checks that need the node pools (workloads/training)."""
        from infra.versions import MANIFESTS  # pinned data only (no resource module)

        tr, out = self.training, []
        if not self.addons.training_operator.enabled:
            out.append(("addons.trainingOperator.enabled", "training needs the training operator (PyTorchJob/TFJob); "
                        "enable it or set training.enabled: false"))
        vendored = MANIFESTS["training_operator"].tag
        version = self.addons.training_operator.version
        if version is not None and version != vendored:
            out.append(("addons.trainingOperator.version", f"{version} is not vendored; the platform ships the "
                        f"training operator {vendored} (components/manifests/training-operator/)"))
        if not self.addons.rook_ceph.enabled:
            out.append(("addons.rookCeph.enabled", "training needs the ceph-filesystem StorageClass (ReadWriteMany) "
                        "for its datasets and models volumes"))
        if tr.kind == "TFJob" and not tr.image:
            out.append(("training.image", "a TFJob needs your TensorFlow image (the sample trainer is PyTorch)"))
        if tr.kind == "TFJob" and tr.schedule:
            out.append(("training.schedule", "periodic retraining runs the sample PyTorch trainer; it is not available "
                        "with kind TFJob (leave schedule out, or use kind PyTorchJob)"))
        want = "nvidia" if tr.device == "gpu" else "none"
        if tr.pool is not None:
            named = next((p for p in pools if p.name == tr.pool), None)
            if named is None:
                return out + [("training.pool", f"no node pool named {tr.pool!r} (pools: {', '.join(p.name for p in pools)})")]
            if named.accelerator != want:
                return out + [("training.pool", f"pool {tr.pool!r} has accelerator {named.accelerator}; device {tr.device} "
                               f"needs accelerator {want}")]
        pool = tr.pool_for(pools)
        if pool is None:
            what = "a node pool with accelerator nvidia" if tr.device == "gpu" else "a node pool without an accelerator"
            return out + [("training.device", f"{tr.device} needs {what}")]
        plain = cpu_pool(pools)
        if plain is None:
            out.append(("nodePools", "training needs a node pool without an accelerator for data prep and TFJob "
                        "parameter servers"))
        if tr.device == "gpu":
            need = tr.gpus_per_worker * tr.gpu_replicas
            if tr.gpus_per_worker < 1:
                out.append(("training.gpusPerWorker", "device gpu needs at least 1 GPU per worker"))
            elif need > (pool.limits.gpu or 0):
                out.append(("training.gpusPerWorker", f"{tr.gpus_per_worker} GPUs x {tr.gpu_replicas} replicas = {need} "
                            f"exceeds the GPU limit of pool {pool.name!r} ({pool.limits.gpu or 0})"))
        # The replicas that share the trainer pool (TFJob parameter servers run on the plain pool).
        on_pool = tr.workers + 1 if tr.kind == "PyTorchJob" else tr.workers
        if tr.kind == "TFJob" and plain is not None and plain.name == pool.name:
            on_pool += tr.parameter_servers
        cpu_need = cpu_millis(tr.cpu_per_replica) * on_pool
        if cpu_need > pool.limits.cpu * 1000:
            out.append(("training.cpu", f"{tr.cpu_per_replica} CPU x {on_pool} replicas = {cpu_need / 1000:g} exceeds the "
                        f"cpu limit of pool {pool.name!r} ({pool.limits.cpu})"))
        mem_need = memory_bytes(tr.memory_per_replica) * on_pool
        if mem_need > memory_bytes(pool.limits.memory):
            out.append(("training.memory", f"{tr.memory_per_replica} x {on_pool} replicas exceeds the memory limit of "
                        f"pool {pool.name!r} ({pool.limits.memory})"))
        return out

    def _serving_problems(self, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
        """Serving checks that need the node pools or the VPC (workloads/sentiment)."""
        sv, out = self.serving, []
        want = SERVING_DEVICE_ACCELERATOR[sv.device]
        if sv.pool is not None:
            named = next((p for p in pools if p.name == sv.pool), None)
            if named is None:
                return [("serving.pool", f"no node pool named {sv.pool!r} (pools: {', '.join(p.name for p in pools)})")]
            if named.accelerator != want:
                return [("serving.pool", f"pool {sv.pool!r} has accelerator {named.accelerator}; device {sv.device} "
                         f"needs accelerator {want}")]
        pool = sv.pool_for(pools)
        if pool is None:
            if sv.device == "cpu":
                out.append(("serving.device", "cpu needs a node pool without an accelerator"))
            return out  # inf1/gpu without a pool are reported above
        limit = sv.device_limit(pool)
        unit = {"inf1": "aws.amazon.com/neuron devices", "gpu": "GPUs"}.get(sv.device)
        if limit is not None and sv.replicas > limit:
            out.append(("serving.replicas", f"{sv.replicas} replicas need {sv.replicas} {unit} but pool {pool.name!r} "
                        f"may launch {limit} (limits)"))
        if limit is not None and sv.max_replicas is not None and sv.max_replicas > limit:
            out.append(("serving.maxReplicas", f"{sv.max_replicas} replicas need {sv.max_replicas} {unit} but pool "
                        f"{pool.name!r} may launch {limit} (limits)"))
        if sv.keda and sv.max_replicas_for(pool) <= sv.replicas:
            out.append(("serving.keda", f"KEDA needs room to scale: maxReplicas ({sv.max_replicas_for(pool)}) must be "
                        f"above replicas ({sv.replicas})"))
        if (sv.exposure != "none" and sv.load_balancer_cidrs is None and self.vpc.byo
                and "cidr" not in self.vpc.model_fields_set):
            out.append(("serving.loadBalancerCidrs", "with a bring-your-own VPC, set serving.loadBalancerCidrs (or "
                        "vpc.cidr) to your VPC's CIDRs: the NetworkPolicy admits load-balancer traffic from them"))
        return out

    # ---- derived settings (one place, so every consumer agrees)
    @property
    def pools(self) -> list[NodePoolConfig]:
        return list(self.node_pools) if self.node_pools is not None else default_node_pools(self.environment)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"ml-{self.stack}"

    @property
    def nat_mode(self) -> str:
        return self.vpc.nat_gateways or ("perAz" if self.environment == "prod" else "single")

    @property
    def ceph_replicas(self) -> int:
        return self.storage.replicas or (3 if self.environment == "prod" else 2)

    @property
    def ceph_failure_domain(self) -> str:
        return self.storage.failure_domain or ("zone" if self.environment == "prod" else "host")

    @property
    def deletion_protection(self) -> bool:
        if self.cluster.deletion_protection is not None:
            return self.cluster.deletion_protection
        return self.protect

    @property
    def common_tags(self) -> dict[str, str]:
        tags = {"eks-ml-platform/stack": self.stack, "eks-ml-platform/environment": self.environment,
                "eks-ml-platform/cluster": self.cluster_name, "managed-by": "pulumi"}
        if self.ephemeral:
            tags["eks-ml-platform/ephemeral"] = "true"
        tags.update(self.tags)
        return tags


class _CrossProblems(ValueError):
    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


# ---------------------------------------------------------------- loading
def _camel_fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    model: Any = PlatformConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        f = fields.get(part)
        if f is None:
            return None
        ann = f.annotation
        inner = _unwrap_model(ann)
        if inner is None:
            return None
        model = inner
    return model


def _unwrap_model(ann: Any) -> Optional[type[BaseModel]]:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _loc_text(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _format_errors(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in {"function-after", "function-before"}))
        typ = err["type"]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _CrossProblems):
            problems.extend(f"{PROJECT}:{k}: {m}" for k, m in ctx_err.problems)
            continue
        key = _loc_text(loc)
        if typ == "extra_forbidden":
            parent = _model_at(loc[:-1])
            hint = ""
            if parent is not None:
                close = difflib.get_close_matches(str(loc[-1]), _camel_fields(parent), n=1, cutoff=0.6)
                allowed = ", ".join(_camel_fields(parent))
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed keys: {allowed}"
            problems.append(f"{PROJECT}:{key}: unknown key{hint}")
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        elif typ == "literal_error":
            msg = f"{err['input']!r} is not allowed; use one of {err['ctx']['expected']}"
        elif typ in {"int_parsing", "int_type", "bool_parsing", "bool_type", "string_type", "list_type", "dict_type",
                     "model_type", "model_attributes_type", "int_from_float", "float_parsing"}:
            msg = f"{err['input']!r} has the wrong type ({msg.lower()})"
        elif typ == "missing":
            msg = "is required"
        problems.append(f"{PROJECT}:{key}: {msg}")
    # one line per problem, stable order
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def parse_config(raw: dict[str, Any], *, stack: str) -> PlatformConfig:
    """Validate a dict of this project's config (keys without the ``eks-ml-platform:`` prefix)."""
    data = dict(raw)
    data.setdefault("stack", stack)
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def split_stack_config(flat: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{"eks-ml-platform:x": .., "aws:region": ..}`` into (ours, others). Values may be JSON strings."""
    ours, others = {}, {}
    for key, value in flat.items():
        ns, _, name = key.partition(":")
        if ns == PROJECT and name:
            ours[name] = value
        else:
            others[key] = value
    return ours, others


def project_defaults(project_dir: Path) -> dict[str, Any]:
    """Defaults declared in Pulumi.yaml (`default:` of typed keys, `value:` of structured ones)."""
    doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    out = {}
    for key, decl in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            out[full] = decl["default"]
        elif isinstance(decl, dict) and "value" in decl:
            out[full] = decl["value"]
        elif not isinstance(decl, dict):
            out[full] = decl
    return out


def read_stack_file(stack: str, project_dir: Path) -> dict[str, Any]:
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise ConfigError([f"stack {stack!r} does not exist: no {path.name} (known stacks: {', '.join(known) or 'none'})"])
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path.name} is not valid YAML: {exc}"]) from None
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ConfigError([f"{path.name}: 'config' must be a mapping"])
    return cfg


def merged_stack_config(stack: str, project_dir: Path) -> dict[str, Any]:
    """All config for a stack as Pulumi would see it: Pulumi.yaml defaults overlaid by the stack file."""
    merged = project_defaults(project_dir)
    merged.update(read_stack_file(stack, project_dir))
    return merged


SECRET_KEYS = ("grafanaAdminPassword",)  # read with pulumi.Config.get_secret by their component


def from_flat(flat: dict[str, Any], *, stack: str, engine_secrets: frozenset[str] = frozenset()) -> PlatformConfig:
    """Validate a stack's flat config. ``engine_secrets``: keys the engine marked secret (decrypted values)."""
    ours, others = split_stack_config(flat)
    if "region" not in ours and others.get("aws:region"):
        ours["region"] = others["aws:region"]
    problems = []
    for key in SECRET_KEYS:
        value = ours.pop(key, None)
        if value is not None and not (isinstance(value, dict) and "secure" in value) \
                and f"{PROJECT}:{key}" not in engine_secrets:
            problems.append(f"{PROJECT}:{key}: must be a secret; set it with `pulumi config set --secret {key}`")
    for key, value in list(ours.items()):
        if isinstance(value, dict) and "secure" in value:
            problems.append(f"{PROJECT}:{key}: secrets are not accepted for this key")
        elif isinstance(value, str) and value[:1] in "[{":
            import json

            try:
                ours[key] = json.loads(value)  # the engine hands structured values over as JSON text
            except ValueError:
                pass
    try:
        cfg = parse_config(ours, stack=stack)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return cfg


def load_stack_config(stack: str, project_dir: Path) -> PlatformConfig:
    """Read and validate ``Pulumi.<stack>.yaml`` (offline; used by render, cost, teardown)."""
    return from_flat(merged_stack_config(stack, project_dir), stack=stack)


def load_from_pulumi() -> PlatformConfig:
    """Inside a Pulumi program: validate the stack's whole config as the engine passed it."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    from pulumi.runtime.config import is_config_secret

    flat = dict(get_config_env())
    flat.update(CONFIG.get())
    secrets = frozenset(k for k in flat if is_config_secret(k))
    return from_flat(flat, stack=pulumi.get_stack(), engine_secrets=secrets)
