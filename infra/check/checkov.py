"""checkov (kubernetes framework) over a folder of manifests, less what ``check-skips.yaml`` skips with a reason.

checkov is a genuinely optional third-party tool (its own virtualenv, ``make deps``): when it is
missing that is reported as a finding, never a silent pass.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from infra.check.report import Finding

REPO = Path(__file__).resolve().parents[2]
SKIPS_FILE = REPO / "check-skips.yaml"


def load_skips(path: Path = SKIPS_FILE) -> dict[str, Any]:
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def checkov_binary() -> str | None:
    local = REPO / ".venv-checkov" / "bin" / "checkov"
    if local.exists():
        return str(local)
    return shutil.which("checkov")


def run_checkov(manifest_dir: Path, *, framework: str = "kubernetes") -> list[Finding]:
    """Run checkov over a folder; every finding not listed (with a reason) in check-skips.yaml is reported."""
    binary = checkov_binary()
    if binary is None:
        return [Finding("checkov", str(manifest_dir), "checkov is not installed (run `make deps`)")]
    skips = load_skips().get("checkov", {}) or {}
    cmd = [binary, "-d", str(manifest_dir), "--framework", framework, "-o", "json", "--quiet", "--compact",
           "--skip-download", "--soft-fail"]
    if skips:
        cmd += ["--skip-check", ",".join(sorted(skips))]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    text = proc.stdout.strip()
    if not text:
        return [Finding("checkov", str(manifest_dir), f"checkov produced no report: {proc.stderr.strip()[-500:]}")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [Finding("checkov", str(manifest_dir), f"unreadable checkov output: {text[:300]}")]
    results = data if isinstance(data, list) else [data]
    out = []
    for block in results:
        for failed in (block.get("results") or {}).get("failed_checks", []):
            res = failed.get("resource", "?")
            out.append(Finding("checkov", f"{Path(failed.get('file_path', '')).name} {res}",
                               f"{failed['check_id']} {failed.get('check_name', '')}"))
    return out
