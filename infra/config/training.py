"""The training section: ``TrainingConfig`` with its cron, S3/Hugging Face and image checks, and
``cron_problem``; the checks that need the whole config and its node pools are in ``cross.py``."""
from __future__ import annotations

import re
import zoneinfo
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from infra.config.base import pinned_image, pool_name, positive_cpu, _camel, _Model, memory_bytes
from infra.config.node_pools import NodePoolConfig, cpu_pool
from infra.config.queue import TrainingQueueConfig

CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_NAMES = {
    "month": {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())},
    "day of week": {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())},
}
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
S3_URI_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/(?P<prefix>[^\s]*))?$")
HF_URI_RE = re.compile(r"^hf://(?P<id>[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?)$")
TIME_ZONE_RE = re.compile(r"^(UTC|[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+){1,2})$")


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


MAX_WORKERS = 256


def _known_zone(name: str) -> bool:
    """The CronJob's timeZone must be in the tz database (the API server refuses an unknown one)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


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


class TrainingPromotionConfig(_Model):
    """The trainer's promotion gate (its --min-accuracy and --max-regression): when a newly trained version
    becomes `latest`, the version serving follows with ``serving.modelVersion: latest``. A version that fails
    the gate is still exported, not promoted (``promote.py`` promotes it by hand)."""

    # the shipped sample reaches 0.85+ with the defaults; a version below this never reaches serving
    min_accuracy: float = Field(0.7, ge=0, le=1)
    # how much held-out accuracy a new version may lose against the promoted one (0.02: 2 points)
    max_regression: float = Field(0.02, ge=0, le=1)


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
    # Kueue's queue (infra/config/queue.py): share of the pools' limits, flavors, borrowing, start timeout, alert.
    queue: Optional[TrainingQueueConfig] = None
    promotion: TrainingPromotionConfig = TrainingPromotionConfig()

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"{v} workers: a job needs at least 1 worker besides the master")
        if v > MAX_WORKERS:
            raise ValueError(f"{v} workers is more than {MAX_WORKERS}; the sample job's rendezvous and the pools' "
                             "limits are sized for fewer")
        return v

    @field_validator("pool")
    @classmethod
    def _pool(cls, v: Optional[str]) -> Optional[str]:
        return pool_name(v)

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, v: Any) -> Optional[str]:
        return None if v is None else positive_cpu(v)

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
        return pinned_image(v)

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
        if v is not None and not (TIME_ZONE_RE.match(v) and _known_zone(v)):
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
