"""Offline preview: run the real program under ``pulumi.runtime.set_mocks`` and write what it would create.

Output (``build/<stack>/``):
- ``preview.json`` in the shape of ``pulumi preview --json`` (steps with newState: urn, type, custom,
  inputs, parent, dependencies, provider, protect). Secrets print as ``[secret]``.
- ``manifests/NNN-<kind>-<namespace>-<name>.yaml``: one file per Kubernetes object the program
  creates directly. Helm releases stay in preview.json with chart, version and values.
- ``summary.txt``: the human summary that is also printed.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.config import PROJECT, PlatformConfig, SECRET_KEYS, from_flat, merged_stack_config
from infra.preview.mocks import SECRET_TEXT, RecordingMonitor, Registration, mock_engine

REPO = Path(__file__).resolve().parents[2]
NOT_MANIFESTS = ("kubernetes:helm.sh/", "kubernetes:yaml", "pulumi:providers:")
OFFLINE_SECRET = "offline-render-placeholder"  # never printed: secrets render as [secret]


@dataclass
class RenderResult:
    cfg: PlatformConfig
    preview: dict[str, Any]
    manifests: list[tuple[str, dict[str, Any]]]  # (file name, object)
    seconds: float
    summary: str


def _config_for_engine(flat: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Config as the engine hands it to a program: strings, structured values as JSON, secrets decrypted."""
    values, secrets = {}, []
    for key, value in flat.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = OFFLINE_SECRET  # the ciphertext cannot be decrypted offline
            secrets.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value)
    return values, secrets


def run_program(cfg: PlatformConfig, flat: dict[str, Any]) -> tuple[RecordingMonitor, float]:
    """Run the real program for ``cfg`` under the mock harness; the monitor holds what it registered."""
    from infra import program

    values, secret_keys = _config_for_engine(flat)
    start = time.perf_counter()
    with mock_engine(project=PROJECT, stack=cfg.stack, region=cfg.region, cluster_name=cfg.cluster_name,
                     config=values, secret_keys=secret_keys) as monitor:
        program.run(cfg)
    return monitor, time.perf_counter() - start


def _type_to_api(type_token: str) -> tuple[str, str]:
    """kubernetes:core/v1:Namespace -> ("v1", "Namespace"); kubernetes:karpenter.sh/v1:NodePool -> (...)."""
    _, group_version, kind = type_token.split(":")
    group, _, version = group_version.partition("/")
    return (version if group == "core" else f"{group}/{version}"), kind


def _manifest(reg: Registration) -> dict[str, Any] | None:
    if not reg.type.startswith("kubernetes:") or reg.type.startswith(NOT_MANIFESTS) or not reg.custom:
        return None
    obj = {k: v for k, v in reg.inputs.items() if not k.startswith("__")}
    api, kind = _type_to_api(reg.type)
    obj.setdefault("apiVersion", api)
    obj.setdefault("kind", kind)
    meta = obj.setdefault("metadata", {})
    meta.setdefault("name", reg.name)
    return obj


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-")


def build_preview(cfg: PlatformConfig, flat: dict[str, Any], regs: list[Registration]) -> dict[str, Any]:
    regs = sorted(regs, key=lambda r: r.urn)
    steps = []
    for r in regs:
        state = {
            "urn": r.urn, "type": r.type, "custom": r.custom, "inputs": r.inputs, "parent": r.parent,
            "dependencies": r.dependencies, "propertyDependencies": r.property_dependencies,
            "provider": r.provider, "protect": r.protect,
        }
        if r.aliases:  # a resource that moved: `pulumi up` renames it in place
            state["aliases"] = sorted(r.aliases)
        steps.append({"op": "create", "urn": r.urn, "provider": r.provider, "newState": state})
    config = {}
    for key, value in sorted(flat.items()):
        secret = (isinstance(value, dict) and set(value) == {"secure"}) or key.split(":")[-1] in SECRET_KEYS
        config[key] = SECRET_TEXT if secret else value
    return {"config": config, "steps": steps, "changeSummary": {"create": len(steps)}}


def build_manifests(regs: list[Registration]) -> list[tuple[str, dict[str, Any]]]:
    objs = [m for m in (_manifest(r) for r in regs) if m is not None]
    objs.sort(key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    out = []
    for i, obj in enumerate(objs, 1):
        meta = obj["metadata"]
        fname = f"{i:03d}-{_slug(obj['kind'])}-{_slug(meta.get('namespace') or 'cluster')}-{_slug(meta['name'])}.yaml"
        out.append((fname, obj))
    return out


def summarize(cfg: PlatformConfig, preview: dict[str, Any], manifests: list) -> str:
    states = [s["newState"] for s in preview["steps"]]
    by_urn = {s["urn"]: s for s in states}
    lines = [f"stack {cfg.stack} ({cfg.environment}) · cluster {cfg.cluster_name} · Kubernetes {cfg.cluster.version} · "
             f"region {cfg.region}", f"{len(states)} resources, {len(manifests)} Kubernetes manifests", ""]
    # resources per top-level component (the direct children of the Platform)
    per: Counter = Counter()
    for s in states:
        chain, cur = [], s
        while cur and cur["parent"] in by_urn:
            chain.append(cur)
            cur = by_urn[cur["parent"]]
        top = chain[-2]["urn"].split("::")[-1] if len(chain) >= 2 else s["urn"].split("::")[-1]
        per[top] += 1
    lines.append("Resources per component:")
    lines += [f"  {name:<32} {n:>4}" for name, n in sorted(per.items())]
    releases = [s for s in states if s["type"] == "kubernetes:helm.sh/v3:Release"]
    if releases:
        lines += ["", "Helm releases (pinned):"]
        lines += [f"  {r['inputs'].get('name', '?'):<28} {r['inputs'].get('chart', '?')} {r['inputs'].get('version', '?')}"
                  for r in sorted(releases, key=lambda r: r["inputs"].get("name", ""))]
    from infra.versions import MANIFESTS

    lines += ["", "Upstream manifests (pinned, built in code):"]
    lines += [f"  {name:<28} {v.repo} {v.tag} ({v.path})" for name, v in sorted(MANIFESTS.items())]
    pools = [m for _, m in manifests if m.get("kind") == "NodePool"]
    if pools:
        lines += ["", "Karpenter NodePools:"]
        for p in pools:
            reqs = {r["key"]: r.get("values", []) for r in p["spec"]["template"]["spec"].get("requirements", [])}
            fams = reqs.get("karpenter.k8s.aws/instance-family", [])
            caps = reqs.get("karpenter.sh/capacity-type", [])
            limits = ", ".join(f"{k}={v}" for k, v in sorted(p["spec"].get("limits", {}).items()))
            lines.append(f"  {p['metadata']['name']:<8} families={','.join(fams)} capacity={','.join(caps)} limits: {limits}")
    from infra.cost.estimator import estimate  # part of the repository: an import error is a bug
    from infra.cost.table import PriceTableError

    try:
        est = estimate(cfg)
    except PriceTableError as exc:  # the tooling's gap (a region or type the table lacks), not the stack's
        lines += ["", f"Cost estimate: unknown price ({exc})"]
    else:
        lines += ["", f"Cost estimate: idle ${est['idle_usd_per_hour']:.2f}/h "
                      f"(${est['idle_usd_per_hour'] * 730:,.0f}/month), "
                      f"max ${est['max_usd_per_hour']:.2f}/h with every NodePool at its limits"]
        unknown = [i["name"] for i in est["items"] if i["usd_per_hour"] is None]
        if unknown:
            lines.append(f"  unknown price (not in the price table, left out): {', '.join(unknown)}")
    return "\n".join(lines) + "\n"


def render(stack: str, out: Path | None = None, project_dir: Path = REPO) -> RenderResult:
    """Validate the stack's config (raising ConfigError before anything is registered), run, write."""
    flat = merged_stack_config(stack, project_dir)
    cfg = from_flat(flat, stack=stack)
    from infra.program import preload

    preload(cfg)  # a missing upstream file stops here, before the engine starts
    monitor, seconds = run_program(cfg, flat)
    preview = build_preview(cfg, flat, monitor.registrations)
    manifests = build_manifests(monitor.registrations)
    summary = summarize(cfg, preview, manifests)
    if out is not None:
        write(out, preview, manifests, summary)
    return RenderResult(cfg, preview, manifests, seconds, summary)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~10x faster, same output


def dump_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_DUMPER, sort_keys=True, default_flow_style=False, width=120, allow_unicode=False)


def write(out: Path, preview: dict, manifests: list[tuple[str, dict]], summary: str) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "manifests").mkdir(parents=True)
    (out / "preview.json").write_text(json.dumps(preview, indent=2, sort_keys=True) + "\n")
    for fname, obj in manifests:
        (out / "manifests" / fname).write_text(dump_yaml(obj))
    (out / "summary.txt").write_text(summary)
