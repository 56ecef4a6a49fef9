"""serving.device inf2 and serving.neuron (issue #23): validation, the device resource, pool maths, the estimate."""
from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_config
from infra.cost.estimator import estimate
from workloads.sentiment import manifests as sm
from workloads.sentiment.plan import plan as serving_plan
from workloads.sentiment.settings import ServingSettings

pytestmark = pytest.mark.unit

CPU = {"name": "cpu", "instanceFamilies": ["m6i"], "limits": {"cpu": 64, "memory": "256Gi"}}
INF1 = {"name": "inf1", "accelerator": "inf1", "instanceFamilies": ["inf1"], "instanceSizes": ["xlarge"],
        "limits": {"cpu": 32, "memory": "128Gi", "neuron": 4}}
INF2 = {"name": "inf2", "accelerator": "inf2", "instanceFamilies": ["inf2"], "instanceSizes": ["xlarge"],
        "limits": {"cpu": 32, "memory": "128Gi", "neuron": 4}}


def _cfg(serving: dict, pools=(CPU, INF2), environment: str = "dev", **extra):
    raw = {"environment": environment, "ephemeral": environment == "dev", "region": "us-west-2",
           "cluster": {"name": "ml-x", **({"admins": [{"principalArn": "arn:aws:iam::123456789012:role/a",
                                                       "policy": "cluster-admin"}]} if environment == "prod" else {})},
           "nodePools": list(pools), "training": {"enabled": False}, "serving": serving, **extra}
    return parse_config(raw, stack="x")


def _error(serving: dict, **kw) -> str:
    with pytest.raises(ConfigError) as err:
        _cfg(serving, **kw)
    return str(err.value)


def test_inf2_serving_without_an_inf2_pool_names_serving_device_and_node_pools():
    msg = _error({"device": "inf2"}, pools=(CPU, INF1))
    assert "serving.device: inf2 needs a node pool with accelerator inf2" in msg
    assert "nodePools" in msg and "cpu (none), inf1 (inf1)" in msg
    # and an inf1 pool named for inf2 serving is refused with what it has
    assert "pool 'inf1' has accelerator inf1; device inf2 needs accelerator inf2" in _error(
        {"device": "inf2", "pool": "inf1"}, pools=(CPU, INF1, INF2))


@pytest.mark.parametrize("schedule, words", [
    ("*/10 * * *", "has 4 field(s); a cron schedule has 5"),
    ("61 * * * *", "minute '61' is out of range (0-59)"),
    ("TZ=UTC */10 * * * *", "TZ= prefix"),
    ("@sometimes", "not a cron macro"),
])
def test_a_bad_compile_schedule_names_the_key_and_the_form(schedule, words):
    msg = _error({"device": "inf2", "neuron": {"compileSchedule": schedule}})
    assert "serving.neuron.compileSchedule" in msg and words in msg and "5-field cron" in msg


@pytest.mark.parametrize("neuron, key, words", [
    ({"batchSize": 0}, "serving.neuron.batchSize", "greater than or equal to 1"),
    ({"batchSize": 2048}, "serving.neuron.batchSize", "less than or equal to 1024"),
    ({"seqLen": 4}, "serving.neuron.seqLen", "greater than or equal to 8"),
    ({"seqLen": 1024}, "serving.neuron.seqLen", "less than or equal to 512"),
    ({"compileAtStart": True}, "serving.neuron.compileAtStart", ""),
])
def test_bad_shapes_are_config_errors_naming_the_key(neuron, key, words):
    msg = _error({"device": "inf2", "neuron": neuron})
    assert key in msg and words in msg


def test_the_neuron_block_needs_a_neuron_device():
    msg = _error({"device": "cpu", "neuron": {"batchSize": 4}})
    assert "serving.neuron" in msg and "device inf1 or inf2 (device is cpu)" in msg


def test_inf2_needs_the_neuron_device_plugin_and_a_plain_pool_for_the_compile_job():
    msg = _error({"device": "inf2"}, addons={"neuron": {"enabled": False}})
    assert "addons.neuron.enabled" in msg and "aws.amazon.com/neuroncore" in msg
    msg = _error({"device": "inf2"}, pools=(INF2,))
    assert "nodePools" in msg and "compiles its model in a CronJob on a node pool without an accelerator" in msg


def test_images_server_neuronx_is_required_with_build_false():
    msg = _error({"device": "inf2"}, images={"build": False})
    assert "images.serverNeuronx" in msg and "inf2 serving runs the torch-neuronx sentiment server image" in msg
    ref = "ghcr.io/eks-ml-platform/sentiment-neuronx@sha256:" + "a" * 64
    cfg = _cfg({"device": "inf2"}, images={"build": False, "serverNeuronx": ref})
    assert cfg.images.server_neuronx == ref


def test_an_inf2_replica_takes_one_neuroncore_and_a_pool_holds_two_per_device():
    cfg = _cfg({"device": "inf2", "replicas": 3})
    s = ServingSettings.from_config(cfg)
    pool = next(p for p in s.pools if p.name == "inf2")
    assert s.serving.replicas_per_device == 2 and s.serving.device_limit(pool) == 8  # 4 devices x 2 NeuronCores
    assert s.serving.max_replicas_for(pool) == 6  # twice the replicas, under the 8 cores
    p = serving_plan(s)
    assert (p.backend, p.device_resource, p.toleration_key) == ("neuronx", "aws.amazon.com/neuroncore",
                                                               "aws.amazon.com/neuron")
    pod = sm.pod_template(s, p)["spec"]
    res = pod["containers"][0]["resources"]
    assert res["limits"]["aws.amazon.com/neuroncore"] == res["requests"]["aws.amazon.com/neuroncore"] == "1"
    assert "aws.amazon.com/neuron" not in res["limits"]
    assert [c["maxSkew"] for c in pod["topologySpreadConstraints"]] == [1, 2]  # two replicas per inf2.xlarge
    assert pod["nodeSelector"] == {"eks-ml-platform/pool": "inf2"}
    # 9 replicas need 9 NeuronCores: more than the 8 the pool may launch
    msg = _error({"device": "inf2", "replicas": 9, "maxReplicas": 9})
    assert "serving.replicas: 9 replicas need 9 NeuronCores (aws.amazon.com/neuroncore) but pool 'inf2' may launch 8" in msg


def test_the_server_env_carries_the_backend_and_the_compiled_shapes():
    def env(serving):
        s = ServingSettings.from_config(_cfg(serving, pools=(CPU, INF1, INF2)))
        return {e["name"]: e["value"] for e in sm.server_env(s, serving_plan(s))}
    inf2 = env({"device": "inf2", "neuron": {"batchSize": 16, "seqLen": 64, "compileAtStartup": True}})
    assert inf2["BACKEND"] == "neuronx"
    assert (inf2["NEURON_BATCH_SIZE"], inf2["NEURON_SEQ_LEN"], inf2["NEURON_COMPILE_AT_START"]) == ("16", "64", "1")
    inf1 = env({"device": "inf1"})
    assert inf1["BACKEND"] == "neuron" and inf1["NEURON_COMPILE_AT_START"] == "0"  # never compile in the pod
    assert (inf1["NEURON_BATCH_SIZE"], inf1["NEURON_SEQ_LEN"]) == ("8", "128")
    cpu = env({"device": "cpu"})
    assert not {"NEURON_BATCH_SIZE", "NEURON_SEQ_LEN", "NEURON_COMPILE_AT_START"} & set(cpu)


def _serving_item(est) -> dict:
    (item,) = [i for i in est["items"] if i["name"].startswith("serving: ") and "replicas on" in i["name"]]
    return item


def test_the_estimate_prices_one_neuroncore_per_replica_two_per_inf2_device():
    est = estimate(_cfg({"device": "inf2", "replicas": 3}))
    assert est["serving"]["instance_type"] == "inf2.xlarge" and est["serving"]["count"] == 2  # ceil(3 / 2)
    item = _serving_item(est)
    assert "one NeuronCore per replica, 2 per inf2 device: 2 devices" in item["note"]
    inf1 = estimate(_cfg({"device": "inf1", "replicas": 3}, pools=(CPU, INF1)))
    assert inf1["serving"]["count"] == 3  # whole devices on inf1
    # prod spreads the replicas over its 3 zones (required): a device per zone before two share one
    prod = estimate(_cfg({"device": "inf2", "replicas": 3}, environment="prod"))
    assert prod["serving"]["count"] == 3
    item = _serving_item(prod)
    assert (item["quantity"], item["unit"], item["unit_usd_per_hour"]) == (3, "node", 0.2654)  # inf2.xlarge spot
