"""``python -m infra check`` in process (infra/check/cli.py, infra/check/run.py): the exit codes (0 clean, 1 on
any finding, 2 on a bad option, a bad stack or a missing upstream file, each in one line), the report title, and
how a stack check combines its validators: the rendered objects, the policy rules on the preview's resources, each
Helm release's values, and checkov on the rendered folder. The real stacks, end to end, are in test_check.py; here
the render is replaced by a tiny result so each part's contribution is visible."""
from __future__ import annotations

import types
from pathlib import Path

import pytest
import yaml

from infra import upstream
from infra.check import cli, run
from infra.check.report import Finding
from infra.versions import CHARTS

pytestmark = pytest.mark.manifests

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ml-workloads"},
             "data": {"k": "v"}}


def _folder(tmp_path: Path, *docs, name="m.yaml", raw: str | None = None) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(raw if raw is not None else yaml.safe_dump_all(list(docs)))
    return folder


def test_a_clean_folder_is_exit_0_and_says_checkov_was_skipped(tmp_path, capsys):
    folder = _folder(tmp_path, CONFIGMAP)
    assert cli.main(["--manifests", str(folder), "--no-checkov"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"check of {folder} (checkov skipped: --no-checkov)"
    assert "v1/ConfigMap" in out and out.rstrip().endswith("no findings")


def test_any_finding_is_exit_1_and_listed(tmp_path, capsys):
    bad = {**CONFIGMAP, "bogus": 1}
    folder = _folder(tmp_path, bad, [1, 2])  # a schema error, and a document that is not an object
    (folder / "broken.yml").write_text("kind: [unclosed\n")
    assert cli.main(["--manifests", str(folder), "--no-checkov"]) == 1
    out = capsys.readouterr().out
    assert "3 finding(s):" in out
    assert "[yaml] broken.yml: not valid YAML" in out
    assert "[yaml] m.yaml: a document without apiVersion/kind" in out
    assert "[core-schema] ConfigMap/ml-workloads/a:" in out and "'bogus' was unexpected" in out


def test_read_manifest_dir_reads_yaml_and_yml_recursively_and_skips_empty_documents(tmp_path):
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.yaml").write_text("---\n" + yaml.safe_dump(CONFIGMAP) + "---\n")
    (folder / "sub" / "b.yml").write_text(yaml.safe_dump({**CONFIGMAP, "metadata": {"name": "b"}}))
    (folder / "notes.txt").write_text("kind: ignored")
    objs, bad = run.read_manifest_dir(folder)
    assert [o["metadata"]["name"] for o in objs] == ["a", "b"] and bad == []


@pytest.mark.parametrize("flag", ["--manifests", "--crds"])
def test_a_folder_option_that_is_not_a_folder_is_exit_2(tmp_path, capsys, flag):
    args = [flag, str(tmp_path / "missing")] + (["--manifests", str(tmp_path)] if flag == "--crds" else [])
    assert cli.main(args) == 2
    assert capsys.readouterr().err == f"error: {flag} {tmp_path / 'missing'}: not a folder\n"


def test_an_unknown_stack_is_exit_2_naming_the_known_ones(tmp_path, capsys):
    assert cli.main(["--stack", "nope", "--out", str(tmp_path / "out"), "--no-checkov"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("invalid stack configuration:\n  stack 'nope' does not exist: no Pulumi.nope.yaml")
    assert "dev" in err and "prod" in err and not (tmp_path / "out").exists()


def test_a_missing_upstream_file_is_exit_2_in_one_line(tmp_path, monkeypatch, capsys):
    def unavailable(*a, **k):
        raise upstream.ArtifactUnavailable("upstream artifact karpenter-crds (x) is not available: nowhere")

    monkeypatch.setattr(cli, "check_manifests", unavailable)
    assert cli.main(["--manifests", str(_folder(tmp_path, CONFIGMAP))]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: upstream artifact karpenter-crds (x) is not available: nowhere\n"
    assert captured.out == ""


def test_stack_and_manifests_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--stack", "dev", "--manifests", str(tmp_path)])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_the_stack_defaults_to_dev_and_its_build_folder(monkeypatch, capsys):
    seen = {}

    def fake_check_stack(stack, out, crd_dir, *, with_checkov):
        seen.update(stack=stack, out=out, crd_dir=crd_dir, with_checkov=with_checkov)
        return run.Report()

    monkeypatch.setattr(cli, "check_stack", fake_check_stack)
    assert cli.main([]) == 0
    assert seen == {"stack": "dev", "out": cli.REPO / "build" / "dev", "crd_dir": None, "with_checkov": True}
    assert capsys.readouterr().out.splitlines()[0] == "check of stack dev"


# --- check_stack: what each validator adds --------------------------------------------------------------------

def _preview(values) -> dict:
    return {"steps": [
        {"urn": "urn:pulumi:dev::eks-ml-platform::kubernetes:helm.sh/v3:Release::karpenter",
         "newState": {"type": "kubernetes:helm.sh/v3:Release", "inputs": {
             "name": "karpenter", "chart": CHARTS["karpenter"].chart, "version": CHARTS["karpenter"].version,
             "values": values}}},
        {"urn": "urn:pulumi:dev::eks-ml-platform::kubernetes:helm.sh/v3:Release::mystery",
         "newState": {"type": "kubernetes:helm.sh/v3:Release", "inputs": {
             "name": "mystery", "chart": "oci://example.com/charts/mystery", "version": "0.1.0", "values": {}}}},
    ]}


def _fake_render(monkeypatch, manifests, preview, *, public_lb=False):
    cfg = types.SimpleNamespace(cluster=types.SimpleNamespace(version="1.34"), allow_public_load_balancers=public_lb,
                                serving=types.SimpleNamespace(enabled=False, device="cpu"))
    result = types.SimpleNamespace(manifests=manifests, cfg=cfg, preview=preview)
    import infra.preview.render as render_mod

    monkeypatch.setattr(render_mod, "render", lambda stack, out: result)


def test_check_stack_combines_schema_policy_helm_values_and_checkov(tmp_path, monkeypatch):
    _fake_render(monkeypatch, [("ml-workloads/a.yaml", CONFIGMAP)], _preview({"replicas": 2, "nosuchkey": 1}))
    checkov_dirs = []

    def fake_checkov(path):
        checkov_dirs.append(path)
        return [Finding("checkov", "ConfigMap/a", "CKV_TEST: a finding")]

    monkeypatch.setattr(run, "run_checkov", fake_checkov)
    report = run.check_stack("dev", tmp_path, None)
    assert checkov_dirs == [tmp_path / "manifests"]
    assert Finding("helm-values", "HelmRelease/karpenter", f"nosuchkey: not in karpenter "
                   f"{CHARTS['karpenter'].version} values.yaml") in report.findings
    assert Finding("checkov", "ConfigMap/a", "CKV_TEST: a finding") in report.findings
    assert len(report.findings) == 2 and not report.ok
    assert report.helm_checked == [f"karpenter: karpenter {CHARTS['karpenter'].version}"]
    assert len(report.helm_not_checked) == 1 and report.helm_not_checked[0].startswith("mystery: ")
    assert {"policy", "helm_values", "checkov"} <= set(report.timings)


def test_check_stack_without_checkov_or_objects_never_runs_it(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "run_checkov", lambda path: pytest.fail("checkov ran"))
    _fake_render(monkeypatch, [("a.yaml", CONFIGMAP)], {"steps": []})
    assert run.check_stack("dev", tmp_path, None, with_checkov=False).ok
    _fake_render(monkeypatch, [], {"steps": []})
    report = run.check_stack("dev", tmp_path, None)
    assert report.ok and "checkov" not in report.timings


def test_a_helm_values_that_are_not_a_map_is_a_finding(tmp_path, monkeypatch):
    _fake_render(monkeypatch, [], _preview(["not", "a", "map"]))
    report = run.check_stack("dev", tmp_path, None)
    assert report.findings == [Finding("helm-values", "HelmRelease/karpenter", "(values): is a list, not a map")]


def test_run_policy_judges_the_preview_resources_too(monkeypatch):
    seen = {}

    def evaluate(objs, resources, *, allow_public_lb):
        seen.update(objs=objs, resources=resources, allow_public_lb=allow_public_lb)
        return [types.SimpleNamespace(resource="aws:s3/bucket:Bucket::b", rule="s3-encrypted", message="not encrypted")]

    monkeypatch.setattr(run.rules, "evaluate", evaluate)
    preview = {"steps": [{"urn": "urn:b", "newState": {"type": "aws:s3/bucket:Bucket", "inputs": {"bucket": "b"}}}]}
    found = run.run_policy([CONFIGMAP], preview, allow_public_lb=True)
    assert found == [Finding("policy", "aws:s3/bucket:Bucket::b", "s3-encrypted: not encrypted")]
    assert seen == {"objs": [CONFIGMAP], "resources": [{"type": "aws:s3/bucket:Bucket", "urn": "urn:b",
                                                       "inputs": {"bucket": "b"}}], "allow_public_lb": True}
    run.run_policy([], None, allow_public_lb=False)
    assert seen["resources"] == [] and seen["allow_public_lb"] is False  # --manifests: no preview, no resources
