"""``python -m infra migrate karpenter IN... [--out DIR] [--cluster NAME]``: reads files, writes only what
passes ``check``, says why otherwise; bad input is one line on stderr and exit 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.migrate.cli import main
from infra.migrate.karpenter import migrate
from tests.conftest import REPO, raise_if_artifact_unavailable

pytestmark = pytest.mark.manifests

SEED = Path(__file__).parent / "fixtures" / "seed-provisioner.yaml"
TEMPLATE = """\
apiVersion: karpenter.k8s.aws/v1alpha1
kind: AWSNodeTemplate
metadata:
  name: neuron
spec:
  amiFamily: AL2023
  instanceProfile: KarpenterNodeInstanceProfile-demo
  subnetSelector: {karpenter.sh/discovery: demo}
  securityGroupSelector: {karpenter.sh/discovery: demo}
"""
PROVISIONER_REF = """\
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: inf1
spec:
  providerRef: {name: neuron}
  requirements:
    - {key: karpenter.k8s.aws/instance-family, operator: In, values: [inf1]}
  limits: {resources: {cpu: 64}}
  consolidation: {enabled: true}
  kubeletConfiguration: {maxPods: 30}
"""
V1_POOL = """\
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: general
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: neuron}
      requirements:
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
  limits: {cpu: 32}
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["karpenter", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_seed_on_stdout_is_the_library_result_with_its_warnings_as_comments(capsys):
    rc, out, err = run(capsys, str(SEED))
    assert rc == 0, err
    assert list(yaml.safe_load_all(out)) == migrate(list(yaml.safe_load_all(SEED.read_text()))).objects
    assert out.startswith("# karpenter.sh/v1 NodePool/default, from karpenter.sh/v1alpha5 Provisioner/default (")
    assert "# WARNING: placeholder <cluster-name> left unresolved in spec.instanceProfile" in out
    assert "EC2NodeClass/default:\n  warning: " in err  # the summary goes to stderr, the YAML alone to stdout


def test_out_writes_one_file_per_object_and_cluster_resolves_the_placeholder(capsys, tmp_path):
    rc, out, err = run(capsys, str(SEED), "--out", str(tmp_path / "v1"), "--cluster", "ml-prod")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == ["ec2nodeclass-default.yaml", "nodepool-default.yaml"]
    cls = yaml.safe_load((tmp_path / "v1" / "ec2nodeclass-default.yaml").read_text())
    assert cls["spec"]["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "ml-prod"}}]
    assert "<cluster-name>" not in (tmp_path / "v1" / "ec2nodeclass-default.yaml").read_text()
    assert f"wrote {tmp_path / 'v1' / 'nodepool-default.yaml'}" in out


def test_multi_document_files_unknown_kinds_and_v1_input(capsys, tmp_path):
    (tmp_path / "a.yaml").write_text(PROVISIONER_REF + "---\n" + "apiVersion: v1\nkind: ConfigMap\n"
                                     "metadata: {name: notes}\ndata: {}\n---\n" + V1_POOL)
    (tmp_path / "b.yml").write_text("---\n" + TEMPLATE)
    rc, out, err = run(capsys, str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"), "--out", str(tmp_path / "out"))
    assert rc == 0, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["ec2nodeclass-neuron.yaml", "nodepool-general.yaml", "nodepool-inf1.yaml"]
    cls = yaml.safe_load((tmp_path / "out" / "ec2nodeclass-neuron.yaml").read_text())
    assert cls["spec"]["kubelet"] == {"maxPods": 30}  # the Provisioner's kubelet, on the class it refers to
    general = (tmp_path / "out" / "nodepool-general.yaml").read_text()
    assert yaml.safe_load(general) == yaml.safe_load(V1_POOL)  # already v1: passed through (and checked)
    assert f"v1 ConfigMap ({tmp_path / 'a.yaml'}, document 2) is not a Karpenter object this command migrates" in out


def test_a_result_the_api_server_or_policy_would_reject_is_not_written(capsys, tmp_path):
    bad = TEMPLATE.replace("  amiFamily: AL2023\n", "  amiFamily: AL2023\n  metadataOptions: {httpTokens: optional}\n")
    (tmp_path / "in.yaml").write_text(bad + "---\n" + PROVISIONER_REF.replace(
        "  limits: {resources: {cpu: 64}}\n", "  labels: {kubernetes.io/hostname: x}\n"))
    rc, out, err = run(capsys, str(tmp_path / "in.yaml"), "--out", str(tmp_path / "out"))
    assert rc == 1 and out == ""
    assert "would be rejected" in err and "nothing written" in err
    assert "[policy] EC2NodeClass/neuron: imdsv2-required" in err
    assert "[cel] NodePool/inf1: spec.template.metadata.labels" in err
    assert "[policy] NodePool/inf1: nodepool-limits" in err
    assert not (tmp_path / "out").exists()


def test_v1_input_is_checked_too(capsys, tmp_path):
    (tmp_path / "v1.yaml").write_text(V1_POOL.replace("operator: In", "operator: Within"))
    rc, _, err = run(capsys, str(tmp_path / "v1.yaml"))
    assert rc == 1
    assert "[crd-schema] NodePool/general: spec.template.spec.requirements[0].operator: 'Within'" in err


@pytest.mark.parametrize("content, expected", [
    (None, "{f}: cannot read it: No such file or directory"),
    ("kind: [", "{f}: not valid YAML: "),
    ("- a\n- b\n", "{f}, document 1: expected a mapping (a Kubernetes object), got list"),
    ("metadata: {name: x}\n", "{f}, document 1: a document without apiVersion/kind"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "{f}: no Karpenter object to migrate"),
    (TEMPLATE.replace("AL2023", "Bottlerocket"), "{f}, document 1: AWSNodeTemplate/neuron: spec.amiFamily: "
                                                 "Bottlerocket has no alias pinned"),
    (PROVISIONER_REF.replace("consolidation: {enabled: true}", "ttlSecondsAfterEmpty: soon"),
     "{f}, document 1: Provisioner/inf1: spec.ttlSecondsAfterEmpty: expected a whole number of seconds"),
    ("---\n" + TEMPLATE + "---\n" + TEMPLATE, "{f}, document 2: would be a second EC2NodeClass/neuron (the first came from {f}, document 1)"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(capsys, tmp_path, content, expected):
    f = tmp_path / "in.yaml"
    if content is not None:
        f.write_text(content)
    rc, out, err = run(capsys, str(f), "--out", str(tmp_path / "out"))
    assert rc == 2 and out == ""
    assert err.startswith("error: " + expected.format(f=f)), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_folder_as_input_or_a_file_as_out_is_an_error(capsys, tmp_path):
    rc, _, err = run(capsys, str(tmp_path))
    assert rc == 2 and err == f"error: {tmp_path}: is a folder; give the YAML files\n"
    (tmp_path / "file").write_text("")
    rc, _, err = run(capsys, str(SEED), "--out", str(tmp_path / "file"))
    assert rc == 2 and err == f"error: --out {tmp_path / 'file'}: not a folder\n"
    rc, _, err = run(capsys, str(SEED), "--cluster", "<cluster-name>")
    assert rc == 2 and err == "error: --cluster '<cluster-name>': not a cluster name\n"


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["karpenter"], ["flux", "x.yaml"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def test_python_m_infra_migrate_karpenter_runs_the_command():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "infra", "migrate", "karpenter", str(SEED)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    raise_if_artifact_unavailable(proc)
    assert proc.returncode == 0, proc.stderr
    assert [d["kind"] for d in yaml.safe_load_all(proc.stdout)] == ["NodePool", "EC2NodeClass"]
    helptext = subprocess.run([sys.executable, "-m", "infra", "--help"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60).stdout
    assert "migrate   karpenter IN... [--out DIR] [--cluster NAME]" in helptext
