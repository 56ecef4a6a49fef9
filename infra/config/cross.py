"""The checks that span sections of the config: images, serving and training against the node
pools, the add-ons and the VPC.

They take any object shaped like ``PlatformConfig`` (:class:`StackConfig`), so this module imports
the section models and never ``infra.config.platform``: ``PlatformConfig``'s validator calls them,
and the import graph stays acyclic.
"""
from __future__ import annotations

from typing import Protocol

from infra.config.addons import AddonsConfig, MonitoringConfig, StorageConfig
from infra.config.cluster import ClusterConfig
from infra.config.base import cpu_millis, memory_bytes
from infra.config.images import IMAGE_KEYS, ImagesConfig
from infra.config.network import VpcConfig
from infra.config.node_pools import NodePoolConfig, cpu_pool
from infra.config.serving import DEVICE_RESOURCE, SERVING_DEVICE_ACCELERATOR, ServingConfig
from infra.config.training import TrainingConfig
from infra.config.queue import queue_problems


class StackConfig(Protocol):
    """What the cross-section checks read of a ``PlatformConfig``."""

    @property
    def environment(self) -> str: ...
    @property
    def allow_public_load_balancers(self) -> bool: ...
    @property
    def addons(self) -> AddonsConfig: ...
    @property
    def images(self) -> ImagesConfig: ...
    @property
    def serving(self) -> ServingConfig: ...
    @property
    def training(self) -> TrainingConfig: ...
    @property
    def vpc(self) -> VpcConfig: ...
    @property
    def cluster(self) -> ClusterConfig: ...
    @property
    def storage(self) -> StorageConfig: ...
    @property
    def monitoring(self) -> MonitoringConfig: ...
    @property
    def ceph_replicas(self) -> int: ...
    @property
    def pools(self) -> list[NodePoolConfig]: ...


#: Ceph warns at 85% full and stops writes at 95%: the PVCs must fit below the first.
CEPH_FULL_RATIO = 0.85
ALERTMANAGER_GIB, GRAFANA_GIB = 5, 10  # components/monitoring.py's volumes on ceph-block


def platform_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    """What the workloads need of the add-ons: device plugins, Rook, Karpenter, and room on Ceph."""
    a, out = cfg.addons, []
    workloads = [w for w, on in (("training", cfg.training.enabled), ("serving", cfg.serving.enabled)) if on]
    devices = {("serving.device", "inf1"): ("neuron", "the Neuron device plugin (aws.amazon.com/neuron)"),
               ("serving.device", "inf2"): ("neuron", "the Neuron device plugin (aws.amazon.com/neuroncore)"),
               ("serving.device", "gpu"): ("nvidiaDevicePlugin", "the NVIDIA device plugin (nvidia.com/gpu)"),
               ("training.device", "gpu"): ("nvidiaDevicePlugin", "the NVIDIA device plugin (nvidia.com/gpu)")}
    for (key, device), (addon, what) in devices.items():
        section = cfg.serving if key.startswith("serving") else cfg.training
        toggle = a.neuron if addon == "neuron" else a.nvidia_device_plugin
        if section.enabled and section.device == device and not toggle.enabled:
            out.append((f"addons.{addon}.enabled", f"{key} {device} needs {what}, or its pods never schedule; "
                        f"enable it or change {key}"))
    if workloads and not a.rook_ceph.enabled and "training" not in workloads:  # training_problems reports its own
        out.append(("addons.rookCeph.enabled", "serving reads the models volume, a ceph-filesystem PVC; enable Rook-Ceph "
                    "or set serving.enabled: false"))
    if workloads and not a.karpenter.enabled:
        out.append(("addons.karpenter.enabled", f"{' and '.join(workloads)} run on Karpenter's node pools (the system "
                    "node group is tainted CriticalAddonsOnly); enable Karpenter or disable them"))
    if cfg.vpc.byo and "cidr" not in cfg.vpc.model_fields_set:
        out.append(("vpc.cidr", "with a bring-your-own VPC (vpc.id), set vpc.cidr to that VPC's CIDR: the "
                    "NetworkPolicies admit the API server (webhooks) and the nodes (Ceph clients) from it"))
    mons = cfg.storage.mon_count
    if a.rook_ceph.enabled and not a.karpenter.enabled and cfg.cluster.system_nodes.min_size < mons:
        out.append(("cluster.systemNodes.minSize", f"without Karpenter the {mons} Ceph mons run on the system nodes, "
                    f"one per node: set minSize to at least {mons} (or enable Karpenter)"))
    out += queue_problems(cfg, cfg.pools)  # training.queue and addons.kueue (infra/config/queue.py)
    return out + ceph_capacity_problems(cfg) + node_health_problems(cfg)


def node_health_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    """The node monitoring agent is an EKS add-on: EKS picks its version (infra/versions.py EKS_ADDONS)."""
    if cfg.addons.node_monitoring_agent.version is not None:
        return [("addons.nodeMonitoringAgent.version", "the EKS node monitoring agent is an EKS add-on whose version "
                 "EKS picks for the cluster (pin it in infra/versions.py EKS_ADDONS); set only enabled here")]
    return []


def ceph_capacity_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    """The PVCs on Ceph (workload volumes, monitoring's volumes) must fit below Ceph's nearfull ratio."""
    if not cfg.addons.rook_ceph.enabled:
        return []
    claims = {}
    if cfg.training.enabled or cfg.serving.enabled:
        claims["training.datasetsSizeGib"] = cfg.training.datasets_size_gib
        claims["training.modelsSizeGib"] = cfg.training.models_size_gib
    if cfg.addons.monitoring.enabled:
        claims["monitoring.storageGib"] = cfg.monitoring.storage_gib + ALERTMANAGER_GIB + GRAFANA_GIB
    usable = cfg.storage.osd_count * cfg.storage.osd_size_gib / cfg.ceph_replicas * CEPH_FULL_RATIO
    need = sum(claims.values())
    if need <= usable:
        return []
    return [("storage.osdSizeGib", f"the PVCs on Ceph need {need} GiB ({', '.join(f'{k} {v}' for k, v in claims.items())}) "
             f"but {cfg.storage.osd_count} OSDs x {cfg.storage.osd_size_gib} GiB at {cfg.ceph_replicas} replicas hold "
             f"{usable:.0f} GiB below {CEPH_FULL_RATIO:.0%} full; raise storage.osdSizeGib or osdCount, or shrink them")]


def needed_images(cfg: StackConfig) -> list[str]:
    """The image keys (``IMAGE_KEYS``) this stack's workloads run, in a stable order."""
    out = []
    tr, sv = cfg.training, cfg.serving
    if tr.enabled:
        out.append("trainer")  # data prep
        if tr.kind == "PyTorchJob" and not tr.image and tr.device == "gpu":
            out.append("trainerGpu")
    if sv.enabled and not sv.image:
        out.append({"inf1": "serverNeuron", "inf2": "serverNeuronx"}.get(sv.device, "server"))
    return out


def images_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    """With ``images.build: true`` no reference may be given (it would be ignored); with ``false``, every
    needed image must be."""
    im = cfg.images
    if im.build:
        return [(f"images.{k}", f"{im.ref(k)!r} is set while images.build is true: the stack builds and pins its "
                 "own images and would ignore it; remove it, or set images.build: false to use prebuilt images")
                for k in IMAGE_KEYS if im.ref(k) is not None]
    why = {"trainer": "data prep (and CPU training) runs the CPU trainer image",
           "trainerGpu": "GPU training runs the GPU trainer image (or set training.image)",
           "server": f"{cfg.serving.device} serving runs the sentiment server image (or set serving.image)",
           "serverNeuron": "inf1 serving runs the Neuron sentiment server image (or set serving.image)",
           "serverNeuronx": "inf2 serving runs the torch-neuronx sentiment server image (or set serving.image)"}
    return [(f"images.{k}", f"is required with images.build: false: {why[k]}; set a reference pinned by tag or "
             "digest, e.g. the release image in infra/versions.py")
            for k in needed_images(cfg) if im.ref(k) is None]


def serving_problems(cfg: StackConfig, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
    """Serving checks that need the whole config (node pools, add-ons, VPC); run when serving is enabled."""
    problems: list[tuple[str, str]] = []
    device = cfg.serving.device
    want = SERVING_DEVICE_ACCELERATOR[device] if device != "cpu" else None
    if want and not any(p.accelerator == want for p in pools):
        problems.append(("serving.device", f"{device} needs a node pool with accelerator {want}, and nodePools has "
                         f"none (pools: {', '.join(f'{p.name} ({p.accelerator})' for p in pools) or 'none'}): add "
                         f"one to nodePools (the staging and prod defaults have inf1 and inf2) or change serving.device"))
    if cfg.serving.public and not cfg.allow_public_load_balancers:
        problems.append(("serving.public", "a public endpoint needs allowPublicLoadBalancers: true"))
    if cfg.serving.exposure != "none" and not cfg.addons.load_balancer_controller.enabled:
        what = "the ALB Ingress" if cfg.serving.exposure == "ingress" else "the NLB Service"
        problems.append(("addons.loadBalancerController.enabled",
                         f"serving.exposure {cfg.serving.exposure} needs the AWS Load Balancer Controller "
                         f"({what} never gets a load balancer without it); enable it or set "
                         "serving.exposure: none"))
    return problems + serving_pool_problems(cfg, pools) + gpu_sharing_problems(cfg, pools) + compile_job_problems(cfg, pools)


def compile_job_problems(cfg: StackConfig, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
    """The Neuron compile CronJob (inf1/inf2 serving) runs on a pool without an accelerator: the compilers
    (neuron-cc, neuronx-cc) need CPUs only, so it never holds a Neuron device serving could use."""
    if cfg.serving.neuron_device and cpu_pool(pools) is None:
        return [("nodePools", f"serving.device {cfg.serving.device} compiles its model in a CronJob on a node pool "
                 "without an accelerator, and nodePools has none; add one (accelerator: none)")]
    return []


def gpu_sharing_problems(cfg: StackConfig, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
    """Shared GPUs only on a serving pool of their own: a pool training also uses would share training's GPUs."""
    sv, tr = cfg.serving, cfg.training
    pool = sv.pool_for(pools) if sv.gpu_sharing else None
    if pool is None or not tr.enabled or tr.device != "gpu":
        return []
    train = tr.pool_for(pools)
    if train is not None and train.name == pool.name:
        return [("serving.gpuSharing", f"pool {pool.name!r} also runs training, whose GPUs must not be shared; "
                 "give serving a pool of its own (serving.pool) or set training.pool")]
    return []


def serving_pool_problems(cfg: StackConfig, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
    """Serving checks that need the node pools or the VPC (workloads/sentiment)."""
    sv, out = cfg.serving, []
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
    unit = {"inf1": f"{DEVICE_RESOURCE['inf1']} devices", "inf2": f"NeuronCores ({DEVICE_RESOURCE['inf2']})",
            "gpu": "GPUs"}.get(sv.device)
    if limit is not None and sv.replicas > limit:
        out.append(("serving.replicas", f"{sv.replicas} replicas need {sv.replicas} {unit} but pool {pool.name!r} "
                    f"may launch {limit} (limits)"))
    if limit is not None and sv.max_replicas is not None and sv.max_replicas > limit:
        out.append(("serving.maxReplicas", f"{sv.max_replicas} replicas need {sv.max_replicas} {unit} but pool "
                    f"{pool.name!r} may launch {limit} (limits)"))
    most = sv.max_replicas_for(pool)
    cpu_need = cpu_millis(sv.resources.cpu) * most
    if cpu_need > pool.limits.cpu * 1000:
        out.append(("serving.resources.cpu", f"{sv.resources.cpu} CPU x {most} replicas = {cpu_need / 1000:g} exceeds "
                    f"the cpu limit of pool {pool.name!r} ({pool.limits.cpu})"))
    memory = sv.resources.memory_for(sv.device)
    if memory_bytes(memory) * most > memory_bytes(pool.limits.memory):
        out.append(("serving.resources.memory", f"{memory} x {most} replicas exceeds the memory limit of pool "
                    f"{pool.name!r} ({pool.limits.memory})"))
    if sv.keda and sv.max_replicas_for(pool) <= sv.replicas:
        out.append(("serving.keda", f"KEDA needs room to scale: maxReplicas ({sv.max_replicas_for(pool)}) must be "
                    f"above replicas ({sv.replicas})"))
    if (sv.exposure != "none" and sv.load_balancer_cidrs is None and cfg.vpc.byo
            and "cidr" not in cfg.vpc.model_fields_set):
        out.append(("serving.loadBalancerCidrs", "with a bring-your-own VPC, set serving.loadBalancerCidrs (or "
                    "vpc.cidr) to your VPC's CIDRs: the NetworkPolicy admits load-balancer traffic from them"))
    return out


def training_problems(cfg: StackConfig, pools: list[NodePoolConfig]) -> list[tuple[str, str]]:
    """Training checks that need the node pools (workloads/training)."""
    from infra.versions import MANIFESTS  # pinned data only (no resource module)

    tr, out = cfg.training, []
    if not cfg.addons.training_operator.enabled:
        out.append(("addons.trainingOperator.enabled", "training needs the training operator (PyTorchJob/TFJob); "
                    "enable it or set training.enabled: false"))
    pinned = MANIFESTS["training_operator"].tag
    version = cfg.addons.training_operator.version
    if version is not None and version != pinned:
        out.append(("addons.trainingOperator.version", f"{version} is not pinned; the platform installs the "
                    f"training operator {pinned} (its upstream files are pinned in infra/upstream.py)"))
    if not cfg.addons.rook_ceph.enabled:
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
