"""The inf2 serving stack (tests/components/accel_stacks/Pulumi.accel-inf2.yaml), rendered and checked.

It passes ``python -m infra check --manifests`` (schemas, CEL, policy; checkov aside) and shows what inf2
serving adds: the torch-neuronx image, one ``aws.amazon.com/neuroncore`` per replica on the inf2 pool, the
compiled shapes in the server's environment and the compile CronJob on the plain pool.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from infra.check.cli import main as check_main
from tests.components.test_accelerator_stacks import by_kind_name, rendered, requirements
from tests.conftest import manifests

pytestmark = pytest.mark.manifests

STACK = "accel-inf2"
NEURONX = "ghcr.io/eks-ml-platform/sentiment-neuronx@sha256:" + "2" * 64


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inf2")


def test_the_inf2_stack_passes_check(root, capsys):
    rendered(STACK, root)
    assert check_main(["--manifests", str(root / STACK / "out" / "manifests"), "--no-checkov"]) == 0, \
        capsys.readouterr().out
    assert "no findings" in capsys.readouterr().out


def test_inf2_serving_takes_one_neuroncore_per_replica_on_the_inf2_pool(root):
    result = rendered(STACK, root)
    pools = by_kind_name(result, "NodePool")
    assert requirements(pools["inf2"])["karpenter.k8s.aws/instance-family"] == ["inf2"]
    assert pools["inf2"]["spec"]["limits"]["aws.amazon.com/neuron"] == "4"  # devices: 8 NeuronCores
    assert {"key": "aws.amazon.com/neuron", "effect": "NoSchedule"} in pools["inf2"]["spec"]["template"]["spec"]["taints"]
    deploy = by_kind_name(result, "Deployment")["sentiment"]
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == NEURONX
    assert c["resources"]["limits"]["aws.amazon.com/neuroncore"] == "1"
    assert pod["nodeSelector"]["eks-ml-platform/pool"] == "inf2"
    assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert (env["BACKEND"], env["NEURON_BATCH_SIZE"], env["NEURON_SEQ_LEN"], env["NEURON_COMPILE_AT_START"]) == (
        "neuronx", "4", "64", "0")
    (hpa,) = manifests(result, "HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == 6  # twice the replicas, within the pool's 8 NeuronCores


def test_the_compile_cronjob_runs_the_neuronx_image_on_the_plain_pool(root):
    result = rendered(STACK, root)
    cron = by_kind_name(result, "CronJob")["sentiment-neuron-compile"]
    assert cron["spec"]["schedule"] == "*/15 * * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == NEURONX
    assert c["command"][3:] == ["--target", "inf2", "--model-dir", "/models", "--version", "latest",
                                "--batch-size", "4", "--seq-len", "64"]
    assert pod["nodeSelector"] == {"eks-ml-platform/pool": "cpu"} and "tolerations" not in pod
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "models"
    pol = by_kind_name(result, "NetworkPolicy")["sentiment-neuron-compile"]
    assert pol["spec"]["ingress"] == [] and pol["spec"]["egress"] == []
