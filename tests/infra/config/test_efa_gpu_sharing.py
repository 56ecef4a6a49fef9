"""Issue #23: ``efa: true`` pools and ``serving.gpuSharing``: config errors, the specs they add, and the estimate."""
from __future__ import annotations

import pytest
import yaml

from components import device_plugins as dp
from components.accelerators import AcceleratorsSettings, nvidia_device_plugin_values
from components.karpenter import KarpenterSettings
from components.karpenter.node_pools import node_pool_spec
from infra.config import ConfigError, GpuSharing, parse_config
from infra.cost.estimator import estimate
from workloads.sentiment import manifests as sm
from workloads.sentiment.plan import plan as serving_plan
from workloads.sentiment.settings import ServingSettings
from workloads.training import pods
from workloads.training.settings import TrainingSettings

pytestmark = pytest.mark.unit

CPU = {"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}
P5 = {"name": "train", "accelerator": "nvidia", "instanceFamilies": ["p5"], "efa": True,
      "limits": {"cpu": 384, "memory": "4096Gi", "gpu": 16}}
G5 = {"name": "serve", "accelerator": "nvidia", "instanceFamilies": ["g5"], "instanceSizes": ["xlarge"],
      "limits": {"cpu": 32, "memory": "128Gi", "gpu": 2}}
SHARED = {"device": "gpu", "pool": "serve", "replicas": 4, "gpuSharing": {"strategy": "timeSlicing", "replicasPerGpu": 4}}


def _cfg(pools=(CPU, P5, G5), training=None, serving=None):
    raw = {"environment": "dev", "ephemeral": True, "region": "us-west-2", "cluster": {"name": "ml-x"},
           "nodePools": list(pools), "training": training or {"device": "gpu", "pool": "train", "gpusPerWorker": 8},
           "serving": serving or SHARED}
    return parse_config(raw, stack="x")


def _error(**kw) -> str:
    with pytest.raises(ConfigError) as err:
        _cfg(**kw)
    return str(err.value)


def test_efa_on_a_family_without_it_names_the_key_and_the_families():
    msg = _error(pools=(CPU, {**G5, "efa": True}), training={"device": "cpu"}, serving={"device": "cpu"})
    assert "nodePools[1].efa" in msg and "g5" in msg and "p4d, p5, p5e, trn1, trn1n, trn2" in msg
    msg = _error(pools=(CPU, {"name": "t", "accelerator": "trn1", "instanceFamilies": ["trn1"], "efa": True,
                              "instanceSizes": ["2xlarge"], "limits": {"cpu": 16, "neuron": 4}}),
                 training={"device": "cpu"}, serving={"device": "cpu"})
    assert "nodePools[1].efa" in msg and "trn1.32xlarge" in msg


def test_gpu_sharing_needs_gpu_serving_on_a_pool_of_its_own():
    msg = _error(serving={**SHARED, "device": "cpu", "pool": None})
    assert "serving.gpuSharing" in msg and "device gpu (device is cpu)" in msg
    msg = _error(training={"device": "gpu", "pool": "serve"})
    assert "serving.gpuSharing" in msg and "also runs training" in msg
    assert "replicasPerGpu" in _error(serving={**SHARED, "gpuSharing": {"strategy": "timeSlicing", "replicasPerGpu": 1}})


def test_an_efa_pool_launches_only_its_efa_types_and_labels_its_nodes():
    cfg = _cfg()
    pool = next(p for p in cfg.pools if p.name == "train")
    spec = node_pool_spec(pool)
    reqs = {r["key"]: r["values"] for r in spec["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"] == ["p5.4xlarge", "p5.48xlarge"]
    assert spec["template"]["metadata"]["labels"]["eks-ml-platform/efa"] == "true"
    assert (pool.efa_per_worker(8), pool.efa_per_worker(1), pool.efa_per_worker(16)) == (32, 1, 0)
    plain = next(p for p in cfg.pools if p.name == "serve")
    assert plain.efa_instance_types == [] and "eks-ml-platform/efa" not in node_pool_spec(plain)["template"]["metadata"]["labels"]


def test_the_gpu_training_pods_request_efa_and_set_nccl_over_efa():
    s = TrainingSettings.from_config(_cfg())
    p = pods.plan(s)
    assert p.efa == 32
    tpl = pods.replica_template(s, p, role="worker", container="pytorch", ports=[], command=[], args=[], gpu=True, env=[])
    (c,) = tpl["spec"]["containers"]
    assert c["resources"]["limits"]["vpc.amazonaws.com/efa"] == "32" == c["resources"]["requests"]["vpc.amazonaws.com/efa"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["FI_PROVIDER"] == "efa" and env["FI_EFA_USE_DEVICE_RDMA"] == "1" and env["NCCL_SOCKET_IFNAME"] == "^lo,docker"
    assert "requiredDuringSchedulingIgnoredDuringExecution" in tpl["spec"]["affinity"]["podAffinity"]
    helper = pods.replica_template(s, p, role="ps", container="c", ports=[], command=[], args=[], gpu=False, env=[])
    assert helper["spec"]["containers"][0]["env"] == [] and "vpc.amazonaws.com/efa" not in str(helper)
    plain = pods.plan(TrainingSettings.from_config(_cfg(training={"device": "gpu", "pool": "g", "gpusPerWorker": 1},
                                                        pools=(CPU, P5, G5, {**G5, "name": "g"}))))
    assert plain.efa == 0 and pods.efa_env(plain) == []


def test_the_efa_device_plugin_runs_only_where_a_pool_has_efa():
    assert AcceleratorsSettings.from_config(_cfg()).efa_kinds == ("nvidia",)
    no_efa = _cfg(pools=(CPU, {**P5, "efa": False}, G5))
    assert AcceleratorsSettings.from_config(no_efa).efa_kinds == ()
    values = dp.efa_device_plugin_values(["neuron", "nvidia"])
    assert values["nodeSelector"] == {"eks-ml-platform/efa": "true"}
    assert [t["key"] for t in values["tolerations"]] == ["aws.amazon.com/neuron", "nvidia.com/gpu"]


@pytest.mark.parametrize("strategy,key", [("timeSlicing", "timeSlicing"), ("mps", "mps")])
def test_the_device_plugin_shares_only_the_serving_pools_gpus(strategy, key):
    cfg = _cfg(serving={**SHARED, "gpuSharing": {"strategy": strategy, "replicasPerGpu": 4}})
    sharing = AcceleratorsSettings.from_config(cfg).gpu_sharing
    config = nvidia_device_plugin_values(sharing)["config"]
    assert config["default"] == "default" and yaml.safe_load(config["map"]["default"]) == dp.PLAIN_CONFIG
    shared = yaml.safe_load(config["map"][sharing.config_name])["sharing"][key]
    assert shared["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}] and shared["renameByDefault"] is False
    assert shared.get("failRequestsGreaterThanOne", strategy == "timeSlicing") is (strategy == "timeSlicing")
    labels = KarpenterSettings.from_config(cfg).node_labels
    assert list(labels) == ["serve"] and labels["serve"]["nvidia.com/device-plugin.config"] == sharing.config_name
    assert ("nvidia.com/mps.capable" in labels["serve"]) is (strategy == "mps")
    assert "config" not in nvidia_device_plugin_values()  # without sharing the chart's values are unchanged


def test_shared_serving_pods_take_one_gpu_on_the_shared_nodes():
    s = ServingSettings.from_config(_cfg())
    p = serving_plan(s)
    pod = sm.pod_template(s, p)["spec"]
    assert pod["nodeSelector"] == {"eks-ml-platform/pool": "serve", "nvidia.com/device-plugin.config": "serving-time-slicing"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert [c["maxSkew"] for c in pod["topologySpreadConstraints"]] == [1, 4]
    assert s.serving.device_limit(next(x for x in s.pools if x.name == "serve")) == 8  # 2 GPUs x 4
    assert GpuSharing(strategy="mps", replicas_per_gpu=2).config_name == "serving-mps"


def test_the_estimate_divides_the_gpu_among_the_replicas_sharing_it():
    def serving_nodes(serving):
        est = estimate(_cfg(training={"device": "cpu"}, serving=serving))
        return est["serving"]["count"], est["serving"]["usd_per_hour"], est
    plain = serving_nodes({"device": "gpu", "pool": "serve", "replicas": 2})
    shared = serving_nodes({**SHARED, "replicas": 8, "maxReplicas": 8})
    assert plain[0] == 2 and shared[0] == 2  # 8 replicas at 4 per GPU need the GPUs 2 replicas need unshared
    assert shared[1] == plain[1]
    (item,) = [i for i in shared[2]["items"] if i["name"].startswith("serving: 8 replicas")]
    assert "4 replicas per shared GPU (timeSlicing): 2 GPUs" in item["note"]
