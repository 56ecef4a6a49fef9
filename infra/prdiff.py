"""Compare two offline previews (base branch vs PR head) for the PR comment.

``python -m infra prdiff --base build-base/dev --head build/dev [--cost-base F --cost-head F]
[--out F] [--json]``

Each directory holds the ``preview.json`` that ``make preview`` writes (``{"config", "steps":
[{"op", "urn", "newState": {"urn", "type", "inputs", ...}}], "changeSummary"}``). A missing base
preview counts as an empty stack, so the first PR that adds the render still gets a comment.
Cost files are the output of ``python -m infra cost --stack S --json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from infra.cost.delta import cost_lines

NODEPOOL_TYPE_PREFIX = "kubernetes:karpenter.sh/"
HELM_RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
MAX_PATHS = 12  # changed leaf paths shown per resource
MAX_VALUE = 60  # characters of a value shown


# --------------------------------------------------------------------------------------------
# Reading a preview
# --------------------------------------------------------------------------------------------


def resources_of(preview: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``urn -> newState`` for every step that leaves a resource in the new state."""
    out: dict[str, dict[str, Any]] = {}
    for step in preview.get("steps") or []:
        if step.get("op") in ("delete", "discard", "remove-pending-replace"):
            continue
        state = step.get("newState") or {}
        urn = state.get("urn") or step.get("urn")
        if urn:
            out[urn] = {**state, "urn": urn, "type": state.get("type") or _type_of(urn)}
    return out


def _type_of(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent$...$type>::<name>
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def stack_of(preview: Mapping[str, Any]) -> str | None:
    for urn in resources_of(preview):
        if urn.startswith("urn:pulumi:"):
            return urn.split(":", 3)[2].split("::", 1)[0]
    return None


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        if not value:
            yield path, {}
        for key in sorted(value, key=str):
            yield from _leaves(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        if not value:
            yield path, []
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def changed_paths(old: Any, new: Any) -> list[dict[str, Any]]:
    """Leaf-level differences, as ``{"path", "old", "new"}`` (missing side is ``None``)."""
    a, b = dict(_leaves(old)), dict(_leaves(new))
    out = []
    for path in sorted(set(a) | set(b)):
        if a.get(path, _MISSING) != b.get(path, _MISSING):
            out.append({"path": path or "(value)", "old": a.get(path), "new": b.get(path)})
    return out


_MISSING = object()


# --------------------------------------------------------------------------------------------
# The diff
# --------------------------------------------------------------------------------------------


def _short(res: Mapping[str, Any]) -> dict[str, str]:
    return {"urn": res["urn"], "type": res.get("type", ""), "name": name_of(res["urn"])}


def _release_info(res: Mapping[str, Any]) -> dict[str, Any]:
    inputs = res.get("inputs") or {}
    return {"chart": inputs.get("chart"), "version": inputs.get("version")}


def diff_previews(base: Mapping[str, Any], head: Mapping[str, Any]) -> dict[str, Any]:
    """Resources added/removed/changed, NodePool changes, Helm chart bumps, config changes."""
    a, b = resources_of(base or {}), resources_of(head or {})
    added = [_short(b[u]) for u in sorted(set(b) - set(a))]
    removed = [_short(a[u]) for u in sorted(set(a) - set(b))]
    changed = []
    for urn in sorted(set(a) & set(b)):
        old, new = a[urn], b[urn]
        paths = changed_paths(old.get("inputs") or {}, new.get("inputs") or {})
        if bool(old.get("protect")) != bool(new.get("protect")):
            paths.append({"path": "(protect)", "old": bool(old.get("protect")),
                          "new": bool(new.get("protect"))})
        if old.get("type") != new.get("type"):
            paths.append({"path": "(type)", "old": old.get("type"), "new": new.get("type")})
        if paths:
            changed.append({**_short(new), "changes": paths})

    nodepools = []
    for item in added:
        if item["type"].startswith(NODEPOOL_TYPE_PREFIX) and item["type"].endswith(":NodePool"):
            nodepools.append({**item, "op": "added", "changes": []})
    for item in removed:
        if item["type"].startswith(NODEPOOL_TYPE_PREFIX) and item["type"].endswith(":NodePool"):
            nodepools.append({**item, "op": "removed", "changes": []})
    for item in changed:
        if item["type"].startswith(NODEPOOL_TYPE_PREFIX) and item["type"].endswith(":NodePool"):
            nodepools.append({**item, "op": "changed"})

    helm = []
    for urn in sorted(set(a) | set(b)):
        res = b.get(urn) or a.get(urn)
        if res.get("type") not in HELM_RELEASE_TYPES:
            continue
        old = _release_info(a[urn]) if urn in a else None
        new = _release_info(b[urn]) if urn in b else None
        if old == new:
            continue
        helm.append({"urn": urn, "name": name_of(urn),
                     "chart": (new or old)["chart"],
                     "old_version": old and old["version"], "new_version": new and new["version"],
                     "old_chart": old and old["chart"]})

    config = changed_paths(base.get("config") or {}, head.get("config") or {}) if base or head \
        else []
    return {
        "stack": stack_of(head) or stack_of(base),
        "added": added,
        "removed": removed,
        "changed": changed,
        "nodepools": nodepools,
        "helm": helm,
        "config": config,
        "counts": {"base": len(a), "head": len(b), "added": len(added), "removed": len(removed),
                   "changed": len(changed)},
    }


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "∅"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    text = text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
    if len(text) > MAX_VALUE:
        text = text[:MAX_VALUE - 1] + "…"
    return f"`{text}`"


def to_markdown(diff: Mapping[str, Any], cost: Mapping[str, Any] | None = None) -> str:
    c = diff.get("counts", {})
    stack = diff.get("stack") or "?"
    lines = [f"### Stack `{stack}`", ""]
    if not (diff["added"] or diff["removed"] or diff["changed"] or diff["config"]):
        lines.append(f"No resource changes ({c.get('head', 0)} resources).")
    else:
        lines.append(f"**{c.get('added', 0)} to add, {c.get('changed', 0)} to change, "
                     f"{c.get('removed', 0)} to remove** ({c.get('base', 0)} → "
                     f"{c.get('head', 0)} resources).")
    section = cost_lines(cost)
    if section:
        lines += ["", *section]

    if diff["helm"]:
        lines += ["", "**Helm charts**", "", "| release | chart | base | head |",
                  "|---|---|---|---|"]
        for h in diff["helm"]:
            chart = h["chart"]
            if h.get("old_chart") and h["old_chart"] != chart:
                chart = f"{h['old_chart']} → {chart}"
            lines.append(f"| {h['name']} | {chart} | {h['old_version'] or '(new)'} | "
                         f"{h['new_version'] or '(removed)'} |")

    if diff["nodepools"]:
        lines += ["", "**Karpenter NodePools**", ""]
        for np_ in diff["nodepools"]:
            lines.append(f"- `{np_['name']}` {np_['op']}")
            for ch in np_.get("changes", [])[:MAX_PATHS]:
                lines.append(f"  - {ch['path']}: {_fmt(ch['old'])} → {_fmt(ch['new'])}")

    if diff["config"]:
        lines += ["", "**Stack config**", ""]
        for ch in diff["config"][:MAX_PATHS * 2]:
            lines.append(f"- {ch['path']}: {_fmt(ch['old'])} → {_fmt(ch['new'])}")

    def table(title: str, items: list[Mapping[str, Any]]) -> None:
        if not items:
            return
        lines.extend(["", f"<details><summary>{title} ({len(items)})</summary>", "",
                      "| type | name |", "|---|---|"])
        lines.extend(f"| `{i['type']}` | {i['name']} |" for i in items)
        lines.extend(["", "</details>"])

    table("Added", diff["added"])
    table("Removed", diff["removed"])
    if diff["changed"]:
        lines += ["", f"<details><summary>Changed ({len(diff['changed'])})</summary>", ""]
        for item in diff["changed"]:
            lines.append(f"- `{item['type']}` **{item['name']}**")
            for ch in item["changes"][:MAX_PATHS]:
                lines.append(f"  - {ch['path']}: {_fmt(ch['old'])} → {_fmt(ch['new'])}")
            if len(item["changes"]) > MAX_PATHS:
                lines.append(f"  - … {len(item['changes']) - MAX_PATHS} more")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _load_preview(directory: Path) -> tuple[dict[str, Any], bool]:
    path = Path(directory) / "preview.json"
    if not path.is_file():
        return {}, False
    return json.loads(path.read_text()), True


def _load_json(path: Path | None) -> dict[str, Any] | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        return None
    return json.loads(p.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra prdiff",
                                description="Markdown diff of two offline previews.")
    p.add_argument("--base", type=Path, required=True, help="directory with the base preview.json")
    p.add_argument("--head", type=Path, required=True, help="directory with the head preview.json")
    p.add_argument("--cost-base", type=Path, help="`infra cost --json` output for the base")
    p.add_argument("--cost-head", type=Path, help="`infra cost --json` output for the head")
    p.add_argument("--out", type=Path, help="write here instead of stdout")
    p.add_argument("--json", action="store_true", help="print the diff as JSON")
    args = p.parse_args(argv)

    head, head_ok = _load_preview(args.head)
    if not head_ok:
        print(f"prdiff: no preview.json in {args.head}", file=sys.stderr)
        return 2
    base, base_ok = _load_preview(args.base)
    diff = diff_previews(base, head)
    cost = None
    cost_head, cost_base = _load_json(args.cost_head), _load_json(args.cost_base)
    if cost_head:
        cost = {"head": cost_head, "base": cost_base}
    if args.json:
        text = json.dumps({**diff, "base_missing": not base_ok, "cost": cost}, indent=2,
                          sort_keys=True) + "\n"
    else:
        text = to_markdown(diff, cost)
        if not base_ok:
            text += "\n_No base preview (the base branch does not render this stack yet): " \
                    "everything counts as added._\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
