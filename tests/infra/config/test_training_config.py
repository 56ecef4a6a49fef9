"""training.* (and the training operator toggle): every bad value is one clear line naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import ConfigError, cron_problem, load_stack_config, memory_bytes, parse_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CPU_ONLY = [{"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}]
GPU_ONLY = [{"name": "gpu", "accelerator": "nvidia", "instanceFamilies": ["g5"],
             "limits": {"cpu": 96, "memory": "768Gi", "gpu": 4}}]


def problems(raw: dict, stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, stack=stack)
    assert exc.value.problems, "a ConfigError must carry at least one problem"
    return exc.value.problems


def one_problem(raw: dict, stack: str = "dev") -> str:
    found = problems(raw, stack)
    assert len(found) == 1, found
    return found[0]


def training(**kw) -> dict:
    return {"training": kw}


# ---------------------------------------------------------------- good configs
@pytest.mark.parametrize("stack, device, workers", [("dev", "cpu", 1), ("staging", "gpu", 1), ("prod", "gpu", 3)])
def test_shipped_stacks_train_where_expected(stack, device, workers):
    cfg = load_stack_config(stack, REPO)
    tr = cfg.training
    assert (tr.enabled, tr.kind, tr.device, tr.workers) == (True, "PyTorchJob", device, workers)
    assert tr.pool_for(cfg.pools).name == ("cpu" if device == "cpu" else "gpu")
    assert tr.dataset_name == "sample" and tr.termination_grace_period_seconds >= 60


def test_defaults_and_derived_settings():
    tr = parse_config({}, stack="dev").training
    assert (tr.kind, tr.device, tr.workers, tr.gpus_per_worker, tr.epochs) == ("PyTorchJob", "gpu", 1, 1, 3)
    assert (tr.cpu_per_replica, tr.memory_per_replica) == ("3", "12Gi")
    assert tr.gpu_replicas == 2 and tr.replicas == 2
    cpu = parse_config(training(device="cpu"), stack="dev").training
    assert (cpu.cpu_per_replica, cpu.memory_per_replica, cpu.gpu_replicas) == ("2", "6Gi", 0)
    tf = parse_config(training(kind="TFJob", image="registry.example.com/team/tf:2.16", workers=2,
                               parameterServers=2), stack="dev").training
    assert tf.gpu_replicas == 2 and tf.replicas == 4  # PS replicas get no GPU


@pytest.mark.parametrize("schedule", [
    "@daily", "@weekly", "@hourly", "0 3 * * 0", "0 3 * * SUN", "*/15 2-4 1,15 JAN-MAR MON-FRI", "30 4 1 */2 *",
    "0 0 ? * 7", "  0   3 * * *  ",
])
def test_good_schedules(schedule):
    cfg = parse_config(training(schedule=schedule, timeZone="Europe/Berlin"), stack="dev")
    assert cfg.training.schedule == " ".join(schedule.split())
    assert cron_problem(schedule) is None


@pytest.mark.parametrize("source, name", [
    (None, "sample"),
    ("s3://my-bucket/datasets/sentiment/", "s3-my-bucket-datasets-sentiment"),
    ("s3://my.bucket", "s3-my-bucket"),
    ("hf://stanfordnlp/sst2", "hf-stanfordnlp-sst2"),
    ("hf://imdb", "hf-imdb"),
])
def test_good_dataset_sources(source, name):
    raw = training(datasetSource=source) if source else {}
    assert parse_config(raw, stack="dev").training.dataset_name == name


def test_hub_options_and_own_image():
    cfg = parse_config(training(datasetSource="hf://stanfordnlp/sst2", dataset={
        "textColumn": "sentence", "labelColumn": "label", "evalSplit": "validation", "revision": "main"},
        image="ghcr.io/acme/trainer@sha256:" + "a" * 64, command=["python", "/app/train.py"]), stack="dev")
    assert cfg.training.dataset.text_column == "sentence" and cfg.training.dataset.eval_split == "validation"


def test_disabled_training_is_not_checked():
    # a TFJob without an image is fine while training is off (nothing is created)
    cfg = parse_config(training(enabled=False, kind="TFJob"), stack="dev")
    assert not cfg.training.enabled


def test_memory_quantities():
    assert memory_bytes("1Gi") == 2**30 and memory_bytes("512Mi") == 2**29 and memory_bytes("1G") == 10**9
    with pytest.raises(ValueError):
        memory_bytes("lots")


# ---------------------------------------------------------------- bad values
@pytest.mark.parametrize("raw, expected", [
    # workers
    (training(workers=0), "eks-ml-platform:training.workers: 0 workers: a job needs at least 1 worker besides the master"),
    (training(workers=-2), "eks-ml-platform:training.workers: -2 workers: a job needs at least 1 worker"),
    (training(workers="two"), "eks-ml-platform:training.workers: 'two' has the wrong type"),
    # job kind and device
    (training(kind="MPIJob"), "eks-ml-platform:training.kind: 'MPIJob' is not allowed; use one of 'PyTorchJob' or 'TFJob'"),
    (training(kind="TrainJob"), "eks-ml-platform:training.kind: 'TrainJob' is not allowed"),
    (training(device="tpu"), "eks-ml-platform:training.device: 'tpu' is not allowed; use one of 'cpu' or 'gpu'"),
    # TFJob needs the user's image
    (training(kind="TFJob"), "eks-ml-platform:training.image: a TFJob needs your TensorFlow image (the sample trainer is PyTorch)"),
    (training(kind="TFJob", image="ghcr.io/acme/tf:2.16", schedule="@daily"),
     "eks-ml-platform:training.schedule: periodic retraining runs the sample PyTorch trainer; it is not available with kind TFJob"),
    # GPUs
    (training(gpusPerWorker=9), "eks-ml-platform:training.gpusPerWorker: Input should be less than or equal to 8"),
    (training(gpusPerWorker=0), "eks-ml-platform:training.gpusPerWorker: device gpu needs at least 1 GPU per worker"),
    (training(workers=3, gpusPerWorker=2),
     "eks-ml-platform:training.gpusPerWorker: 2 GPUs x 4 replicas = 8 exceeds the GPU limit of pool 'gpu' (4)"),
    (training(kind="TFJob", image="ghcr.io/acme/tf:2.16", workers=3, gpusPerWorker=2),
     "eks-ml-platform:training.gpusPerWorker: 2 GPUs x 3 replicas = 6 exceeds the GPU limit of pool 'gpu' (4)"),
    ({"nodePools": CPU_ONLY, "serving": {"device": "cpu"}},
     "eks-ml-platform:training.device: gpu needs a node pool with accelerator nvidia"),
    ({"nodePools": GPU_ONLY, "serving": {"device": "gpu"}, "training": {"device": "cpu"}},
     "eks-ml-platform:training.device: cpu needs a node pool without an accelerator"),
    ({"nodePools": GPU_ONLY, "serving": {"device": "gpu"}},
     "eks-ml-platform:nodePools: training needs a node pool without an accelerator for data prep"),
    # pool selection
    (training(pool="fast"), "eks-ml-platform:training.pool: no node pool named 'fast' (pools: cpu, gpu, inf1)"),
    (training(pool="cpu"), "eks-ml-platform:training.pool: pool 'cpu' has accelerator none; device gpu needs accelerator nvidia"),
    (training(pool="Big_Pool"), "eks-ml-platform:training.pool: 'Big_Pool' must be a node pool name"),
    # resources
    (training(cpu="0"), "eks-ml-platform:training.cpu: '0' must be more than 0"),
    (training(cpu="two"), "eks-ml-platform:training.cpu: 'two' is not a CPU quantity such as 500m, 1 or 1.5"),
    (training(memory="lots"), "eks-ml-platform:training.memory: 'lots' is not a memory quantity such as 512Mi or 16Gi"),
    (training(memory="0Gi"), "eks-ml-platform:training.memory: '0Gi' must be a positive Kubernetes quantity"),
    (training(memory="2Gi", shmSize="2Gi"), "eks-ml-platform:training: shmSize 2Gi must be less than memory 2Gi"),
    (training(device="cpu", cpu="40"),
     "eks-ml-platform:training.cpu: 40 CPU x 2 replicas = 80 exceeds the cpu limit of pool 'cpu' (64)"),
    (training(device="cpu", memory="200Gi"),
     "eks-ml-platform:training.memory: 200Gi x 2 replicas exceeds the memory limit of pool 'cpu' (256Gi)"),
    # image and command
    (training(image="ghcr.io/acme/trainer:latest"), "eks-ml-platform:training.image: 'ghcr.io/acme/trainer:latest' uses :latest"),
    (training(image="ghcr.io/acme/trainer"), "eks-ml-platform:training.image: 'ghcr.io/acme/trainer' is not a pinned image reference"),
    (training(image="Not An Image:1"), "eks-ml-platform:training.image: 'Not An Image:1' is not a pinned image reference"),
    (training(command=["python", ""]), "eks-ml-platform:training.command: holds an empty string"),
    (training(baseModel="two words"), "eks-ml-platform:training.baseModel: 'two words' must be a hub id"),
    # numbers
    (training(epochs=0), "eks-ml-platform:training.epochs: Input should be greater than or equal to 1"),
    (training(batchSize=0), "eks-ml-platform:training.batchSize: Input should be greater than or equal to 1"),
    (training(learningRate=0), "eks-ml-platform:training.learningRate: Input should be greater than 0"),
    (training(learningRate=2), "eks-ml-platform:training.learningRate: Input should be less than or equal to 1"),
    (training(maxSamples=0), "eks-ml-platform:training.maxSamples: Input should be greater than or equal to 1"),
    (training(checkpointEverySteps=-1), "eks-ml-platform:training.checkpointEverySteps: Input should be greater than or equal to 0"),
    (training(terminationGracePeriodSeconds=5),
     "eks-ml-platform:training.terminationGracePeriodSeconds: Input should be greater than or equal to 30"),
    (training(backoffLimit=-1), "eks-ml-platform:training.backoffLimit: Input should be greater than or equal to 0"),
    (training(parameterServers=17), "eks-ml-platform:training.parameterServers: Input should be less than or equal to 16"),
    (training(datasetsSizeGib=0), "eks-ml-platform:training.datasetsSizeGib: Input should be greater than or equal to 1"),
    (training(modelsSizeGib=0), "eks-ml-platform:training.modelsSizeGib: Input should be greater than or equal to 1"),
    # schedule (cron)
    (training(schedule="every day"), "eks-ml-platform:training.schedule: 'every day' has 2 field(s); a cron schedule has 5"),
    (training(schedule="* * * *"), "eks-ml-platform:training.schedule: '* * * *' has 4 field(s)"),
    (training(schedule="61 * * * *"), "eks-ml-platform:training.schedule: minute '61' is out of range (0-59)"),
    (training(schedule="0 24 * * *"), "eks-ml-platform:training.schedule: hour '24' is out of range (0-23)"),
    (training(schedule="0 0 0 * *"), "eks-ml-platform:training.schedule: day of month '0' is out of range (1-31)"),
    (training(schedule="0 0 * 13 *"), "eks-ml-platform:training.schedule: month '13' is out of range (1-12)"),
    (training(schedule="0 3 * * 8"), "eks-ml-platform:training.schedule: day of week '8' is out of range (0-7)"),
    (training(schedule="0 3 * * FUNDAY"), "eks-ml-platform:training.schedule: day of week 'FUNDAY' is not a number from 0 to 7"),
    (training(schedule="5-1 * * * *"), "eks-ml-platform:training.schedule: minute range '5-1' runs backwards"),
    (training(schedule="*/0 * * * *"), "eks-ml-platform:training.schedule: minute '*/0': the step after '/' must be a positive number"),
    (training(schedule="? * * * *"), "eks-ml-platform:training.schedule: minute '?': '?' is only allowed for day of month"),
    (training(schedule="@sometimes"), "eks-ml-platform:training.schedule: '@sometimes' is not a cron macro; use one of @yearly"),
    (training(schedule="TZ=UTC 0 3 * * *"), "eks-ml-platform:training.schedule: set the time zone with training.timeZone"),
    (training(schedule="@daily", timeZone="Mars Base"), "eks-ml-platform:training.timeZone: 'Mars Base' is not an IANA time zone"),
    (training(timeZone="UTC"), "eks-ml-platform:training: timeZone is set but schedule is not"),
    # dataset source
    (training(datasetSource="gs://bucket/data"),
     "eks-ml-platform:training.datasetSource: 'gs://bucket/data' has an unknown scheme; use s3://bucket/prefix or hf://<dataset id>"),
    (training(datasetSource="/data/mine"), "eks-ml-platform:training.datasetSource: '/data/mine' has an unknown scheme"),
    (training(datasetSource="s3://"), "eks-ml-platform:training.datasetSource: 's3://' is not an S3 URI"),
    (training(datasetSource="s3://My_Bucket/x"), "eks-ml-platform:training.datasetSource: 's3://My_Bucket/x' is not an S3 URI"),
    (training(datasetSource="s3://ab/x"), "eks-ml-platform:training.datasetSource: 's3://ab/x' is not an S3 URI"),
    (training(datasetSource="s3://my..bucket/x"), "eks-ml-platform:training.datasetSource: 's3://my..bucket/x' is not an S3 URI"),
    (training(datasetSource="hf://"), "eks-ml-platform:training.datasetSource: 'hf://' is not a Hugging Face dataset id"),
    (training(datasetSource="hf://a/b/c"), "eks-ml-platform:training.datasetSource: 'hf://a/b/c' is not a Hugging Face dataset id"),
    (training(dataset={"textColumn": "sentence"}),
     "eks-ml-platform:training: dataset.textColumn is set but datasetSource is not"),
    (training(datasetSource="s3://my-bucket/x", dataset={"evalSplit": "validation"}),
     "eks-ml-platform:training: dataset.evalSplit only applies to hf:// sources"),
    (training(datasetSource="hf://imdb", dataset={"textColumn": "a b"}),
     "eks-ml-platform:training.dataset.textColumn: 'a b' must be a column, config or split name"),
    (training(datasetSource="hf://imdb", dataset={"revision": "-x"}),
     "eks-ml-platform:training.dataset.revision: '-x' must be a commit sha, tag or branch"),
    # typos
    (training(epoch=3), "eks-ml-platform:training.epoch: unknown key; did you mean 'epochs'?"),
    (training(gpus=2), "eks-ml-platform:training.gpus: unknown key"),
    # the operator and storage it needs
    ({"addons": {"trainingOperator": {"enabled": False}}},
     "eks-ml-platform:addons.trainingOperator.enabled: training needs the training operator (PyTorchJob/TFJob)"),
    ({"addons": {"trainingOperator": {"version": "v1.8.1"}}},
     "eks-ml-platform:addons.trainingOperator.version: v1.8.1 is not pinned; the platform installs the training operator v1.9.4"),
    ({"addons": {"rookCeph": {"enabled": False}}},
     "eks-ml-platform:addons.rookCeph.enabled: training needs the ceph-filesystem StorageClass"),
])
def test_bad_training_config(raw, expected):
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), f"expected {expected!r} in {found}"


def test_several_problems_are_reported_together():
    found = problems(training(kind="TFJob", schedule="@daily", workers=3, gpusPerWorker=2))
    keys = sorted(p.split(": ")[0] for p in found)
    assert keys == ["eks-ml-platform:training.gpusPerWorker", "eks-ml-platform:training.image",
                    "eks-ml-platform:training.schedule"]


def test_errors_are_single_lines_without_tracebacks():
    msg = one_problem(training(workers=0))
    assert "\n" not in msg and "Traceback" not in msg and "pydantic" not in msg.lower()
