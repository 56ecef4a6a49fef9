"""Karpenter node pools: ``NodePoolConfig`` and its limits and budgets, the accelerator families,
``default_node_pools`` per environment and ``cpu_pool``."""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from infra.config.base import QUANTITY_RE, _Model, aws_tag_problem, check_each, label_problem
from infra.config.instances import NEURON_FAMILIES, NVIDIA_FAMILIES, family_problem, instance_type_problem

ARM64_ONLY_FAMILIES = ("g5g",)
INF1_SIZES = ("xlarge", "2xlarge", "6xlarge", "24xlarge")
# A pinned EKS-optimized AL2023 release (awslabs/amazon-eks-ami tag), never @latest.
AMI_ALIAS_RE = re.compile(r"^al2023@v\d{8}$")
BUDGET_SCHEDULE_RE = re.compile(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))$|^(\S+\s+){4}\S+$")
BUDGET_DURATION_RE = re.compile(r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$")
DURATION_RE = re.compile(r"^(\d+(ns|us|µs|ms|s|m|h))+$|^Never$")

CAPACITY_RESERVATION_ID_RE = re.compile(r"^cr-[0-9a-z]+$")  # the EC2NodeClass CRD's pattern (v1.14.1)
AWS_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
RESERVATION_FORMS = "[{id: cr-...}] or [{tags: {...}, ownerId: <12-digit account>}]"

#: vCPUs, GPUs or Neuron devices: far above any account quota, low enough for exact arithmetic.
MAX_POOL_LIMIT = 100_000

# EFA interfaces (Karpenter's vpc.amazonaws.com/efa capacity) and GPUs of the instance types ``efa: true`` may
# launch: karpenter-provider-aws v1.14.1 website/content/en/docs/reference/instance-types.md. The families are those
# whose EFA carries GPUDirect RDMA (p4d, p5, p5e) or Neuron collectives (trn); g5/g6 have EFA without RDMA.
EFA_TYPES: dict[str, tuple[int, int]] = {"p4d.24xlarge": (4, 8), "p5.4xlarge": (1, 1), "p5.48xlarge": (32, 8),
                                         "p5e.48xlarge": (32, 8), "trn1.32xlarge": (8, 0), "trn1n.32xlarge": (16, 0),
                                         "trn2.48xlarge": (16, 0)}
EFA_FAMILIES = ("p4d", "p5", "p5e", "trn1", "trn1n", "trn2")


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
        if v is not None and v > MAX_POOL_LIMIT:
            raise ValueError(f"{v} is more than {MAX_POOL_LIMIT:,}; a NodePool limit caps what Karpenter may launch, "
                             "use a number you would pay for")
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

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Optional[str]) -> Optional[str]:
        # the NodePool CRD's pattern (karpenter.sh_nodepools.yaml, v1.14.1): a macro or five cron fields
        if v is not None and not BUDGET_SCHEDULE_RE.match(v):
            raise ValueError(f"{v!r} is not a cron schedule (five fields such as '0 9 * * mon-fri', or @daily)")
        return v

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: Optional[str]) -> Optional[str]:
        # the CRD's pattern: hours and/or minutes only, e.g. 8h, 30m, 1h30m
        if v is not None and not BUDGET_DURATION_RE.match(v):
            raise ValueError(f"{v!r} is not a budget duration such as 8h, 30m or 1h30m (hours and minutes only)")
        return v

    @model_validator(mode="after")
    def _sched(self) -> "DisruptionBudget":
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration must be set together")
        return self


class CapacityReservation(_Model):
    """One reservation the pool may launch into (an ODCR or an EC2 Capacity Block for ML): a term of the
    EC2NodeClass's ``capacityReservationSelectorTerms`` (by ``id``, or by ``tags`` with an optional
    ``ownerId``), plus what it holds (``instanceType`` x ``instanceCount``) for the cost estimate, which
    counts a reservation as paid whether Karpenter uses it or not."""

    id: Optional[str] = Field(None, description="The reservation's id (cr-...); mutually exclusive with tags/ownerId.")
    tags: Optional[dict[str, str]] = Field(None, description="Select every reservation with these tags (at most 20).")
    owner_id: Optional[str] = Field(None, description="With tags: only reservations owned by this 12-digit AWS account.")
    instance_type: Optional[str] = Field(None, description="What the reservation holds, for the cost estimate (p5.48xlarge).")
    instance_count: Optional[int] = Field(None, ge=1, le=10_000, description="How many instances it holds (cost estimate).")

    @field_validator("id")
    @classmethod
    def _id(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not CAPACITY_RESERVATION_ID_RE.match(v):
            raise ValueError(f"{v!r} is not a capacity reservation id (cr- then lowercase letters and digits)")
        return v

    @field_validator("owner_id", mode="before")
    @classmethod
    def _owner(cls, v: object) -> Optional[str]:
        if v is not None and not AWS_ACCOUNT_RE.match(str(v)):
            raise ValueError(f"{v!r} is not a 12-digit AWS account id (quote it: \"012345678901\")")
        return None if v is None else str(v)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
        if v is None:
            return v
        if not v or len(v) > 20:
            raise ValueError("select by 1 to 20 tags (the EC2NodeClass CRD's limit)")
        for key in v:
            value = v[key]  # '*' selects every value of the key (the CRD's rule)
            problem = (aws_tag_problem(key, "" if value == "*" else value)
                       or (None if value else f"tag {key!r} has an empty value; use '*' for any"))
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("instance_type")
    @classmethod
    def _itype(cls, v: Optional[str]) -> Optional[str]:
        problem = v and instance_type_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _form(self) -> "CapacityReservation":
        if self.id is None and not self.tags:
            raise ValueError(f"name the reservation: {RESERVATION_FORMS}")
        if self.id is not None and (self.tags or self.owner_id):
            raise ValueError("id is mutually exclusive with tags and ownerId (the EC2NodeClass CRD's rule); use one form")
        if self.owner_id is not None and not self.tags:
            raise ValueError("ownerId narrows a tags selection; give tags too, or select by id")
        if (self.instance_type is None) != (self.instance_count is None):
            raise ValueError("instanceType and instanceCount go together (what the reservation holds, for the estimate)")
        return self

    def term(self) -> dict[str, object]:
        """The ``capacityReservationSelectorTerms`` entry (the CRD spells the owner ``ownerID``)."""
        if self.id is not None:
            return {"id": self.id}
        term: dict[str, object] = {"tags": dict(self.tags or {})}
        if self.owner_id is not None:
            term["ownerID"] = self.owner_id
        return term


class NodePoolConfig(_Model):
    """One Karpenter NodePool and its EC2NodeClass (built by components/karpenter.py).

    ``capacityTypes: [spot, on-demand]`` is spot with on-demand fallback: Karpenter launches spot
    while it is offered and falls back to on-demand when no spot offering fits. ``[spot]`` is
    spot only, ``[on-demand]`` never uses spot. ``amiAlias`` overrides the pinned AL2023 release
    (infra/versions.py AMI_ALIAS) for this pool; ``rootVolumeGib`` defaults by accelerator (50 GiB
    plain, 200 GiB NVIDIA, 150 GiB Neuron: the CUDA/Neuron images are large). ``imdsHopLimit``
    stays 1 (pods cannot reach the node's IMDS credentials) unless a pod on the pool needs IMDS.
    ``reserved`` in ``capacityTypes`` needs ``capacityReservations`` (the EC2NodeClass selects them);
    Karpenter uses reservations first whatever the order, then falls back to spot/on-demand if listed.
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
    capacity_reservations: list[CapacityReservation] = Field(
        default_factory=list, max_length=30,
        description="With capacityTypes reserved: the ODCRs / Capacity Blocks the pool may use, by id or by tags.")
    capacity_reservation_type: Optional[Literal["default", "capacity-block"]] = Field(
        None,
        description="Only reservations of this type (capacity-block: EC2 Capacity Blocks for ML); needs capacityTypes [reserved].")
    efa: bool = Field(False, description="Elastic Fabric Adapter: the EFA sizes of p4d, p5, p5e, trn1, trn1n, trn2 "
                                         "only, with the EFA device plugin; pods request vpc.amazonaws.com/efa.")

    @field_validator("efa")
    @classmethod
    def _efa(cls, v: bool, info: ValidationInfo) -> bool:
        fams, sizes = info.data.get("instance_families"), info.data.get("instance_sizes") or []
        bad = [f for f in fams or [] if f not in EFA_FAMILIES]
        if v and bad:
            raise ValueError(f"{', '.join(bad)} {'has' if len(bad) == 1 else 'have'} no EFA this platform uses; "
                             f"efa: true takes the families {', '.join(EFA_FAMILIES)} (GPUDirect RDMA / Neuron "
                             "collectives over EFA)")
        if v and fams and not efa_types(fams, sizes):
            raise ValueError(f"instanceSizes {sizes} hold no EFA instance type of {', '.join(fams)}; EFA types: "
                             f"{', '.join(t for t in EFA_TYPES if t.split('.')[0] in fams)}")
        return v

    @field_validator("capacity_reservations")
    @classmethod
    def _reservations(cls, v: list[CapacityReservation], info: ValidationInfo) -> list[CapacityReservation]:
        types = info.data.get("capacity_types") or []
        if v and "reserved" not in types:
            raise ValueError("is set but capacityTypes has no reserved; add it (e.g. [reserved, on-demand]: reserved "
                             "first, on-demand when the reservations are full)")
        ids = [r.id for r in v if r.id]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{', '.join(sorted({i for i in ids if ids.count(i) > 1}))} listed more than once")
        return v

    @field_validator("capacity_reservation_type")
    @classmethod
    def _reservation_type(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        types = info.data.get("capacity_types") or []
        if v is not None and list(types) != ["reserved"]:
            raise ValueError(f"{v} restricts the pool to {v} reservations: on-demand and spot offerings carry no "
                             "karpenter.k8s.aws/capacity-reservation-type label, so set capacityTypes: [reserved] "
                             "(or leave capacityReservationType out to keep the fallback)")
        return v

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

    @field_validator("instance_families")
    @classmethod
    def _families(cls, v: list[str]) -> list[str]:
        check_each(v, family_problem)
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
            problem = label_problem(key, v[key])
            if problem:
                raise ValueError(problem)
            domain = key.split("/")[0] if "/" in key else ""
            if domain.endswith(("karpenter.sh", "kubernetes.io", "k8s.io")) and not domain.startswith("node-restriction"):
                raise ValueError(f"label {key!r} uses a domain Karpenter or Kubernetes restricts")
        return v

    @model_validator(mode="after")
    def _reserved(self) -> "NodePoolConfig":
        if "reserved" in self.capacity_types and not self.capacity_reservations:
            raise ValueError(f"capacityTypes has reserved but capacityReservations is empty: name the reservations, "
                             f"{RESERVATION_FORMS}; Karpenter launches only into reservations its EC2NodeClass selects")
        return self

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
    def capacity_types_by_priority(self) -> list[str]:
        """The capacity types in Karpenter's launch order: reserved first (pre-paid), then as configured."""
        return sorted(self.capacity_types, key=lambda t: t != "reserved")

    @property
    def neuron(self) -> bool:
        return self.accelerator in NEURON_FAMILIES

    @property
    def efa_instance_types(self) -> list[str]:
        """With ``efa``: the pool's instance types that have EFA (its NodePool launches only these)."""
        return efa_types(self.instance_families, self.instance_sizes) if self.efa else []

    def efa_per_worker(self, gpus: int) -> int:
        """EFA interfaces a pod with ``gpus`` GPUs requests: those of the smallest EFA type that holds it (0: no EFA)."""
        fits = [EFA_TYPES[t][0] for t in self.efa_instance_types if EFA_TYPES[t][1] >= gpus]
        return min(fits, default=0)


def efa_types(families: list[str], sizes: list[str]) -> list[str]:
    """The instance types of ``families`` (limited to ``sizes`` when given) that have EFA interfaces."""
    return [t for t in EFA_TYPES if t.split(".")[0] in families and (not sizes or t.split(".")[1] in sizes)]


def default_node_pools(environment: str) -> list[NodePoolConfig]:
    """cpu, gpu and inf1 in every environment; inf2 in staging and prod (their stack files serve on it)."""
    prod, dev, spot_first = environment == "prod", environment == "dev", ["spot", "on-demand"]
    # accelerator pools: empty nodes go after 5 minutes, at most a fifth at a time, a week's lifetime
    accel = dict(consolidation_policy="WhenEmpty", consolidate_after="5m", budgets=[DisruptionBudget(nodes="20%")], expire_after="168h")
    neuron = dict(cpu=32 if not prod else 192, memory="128Gi" if not prod else "768Gi", neuron=4 if not prod else 24)
    pools = [
        NodePoolConfig(
            name="cpu", instance_families=["m6i", "m7i", "c6i", "c7i", "r6i"], capacity_types=spot_first,
            limits=PoolLimits(cpu=64 if not prod else 512, memory="256Gi" if not prod else "2048Gi"),
            consolidation_policy="WhenEmptyOrUnderutilized", consolidate_after="60s"),
        NodePoolConfig(
            name="gpu", accelerator="nvidia", instance_families=["g5", "g6", "g6e"] if not prod else ["g5", "g6", "g6e", "p4d", "p5"],
            capacity_types=spot_first, limits=PoolLimits(cpu=96 if not prod else 1024, memory="768Gi" if not prod else "8192Gi", gpu=4 if not prod else 32),
            root_volume_gib=200, **accel),
        # dev: spot inf1.xlarge as in the seed (1 Inferentia device, 4 NeuronCores per node); staging/prod: larger sizes,
        # spot with on-demand fallback, and inf2 beside it (inf2.xlarge: 1 Inferentia2 device, 2 NeuronCores-v2).
        NodePoolConfig(name="inf1", accelerator="inf1", instance_families=["inf1"], capacity_types=["spot"] if dev else spot_first,
                       instance_sizes=["xlarge"] if dev else ["xlarge", "2xlarge"] if not prod else ["xlarge", "2xlarge", "6xlarge"],
                       limits=PoolLimits(**neuron), root_volume_gib=150, **accel),
    ]
    if not dev:
        pools.append(NodePoolConfig(name="inf2", accelerator="inf2", instance_families=["inf2"], capacity_types=spot_first,
                                    instance_sizes=["xlarge", "8xlarge"] + (["24xlarge"] if prod else []), limits=PoolLimits(**neuron),
                                    root_volume_gib=150, **accel))
    return pools


def cpu_pool(pools: list[NodePoolConfig]) -> Optional[NodePoolConfig]:
    """The pool for CPU-only pods (data prep, TFJob PS, CPU training): the one named cpu, else the first plain pool."""
    plain = [p for p in pools if p.accelerator == "none"]
    return next((p for p in plain if p.name == "cpu"), plain[0] if plain else None)
