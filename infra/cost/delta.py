"""What a change does to the cost estimate, for the PR comment: every figure with its delta, and the
items that moved (``python -m infra prdiff --cost-base B --cost-head H``).

The inputs are two ``python -m infra cost --json`` outputs. An item is matched across them by its
category, scope and its name with the numbers taken out, so "serving: 3 replicas on 3 x inf1.xlarge"
and "serving: 4 replicas on 4 x inf1.xlarge" are the same item that moved.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

#: (key in the cost JSON, label): every headline figure the estimate gives
FIGURES = (
    ("idle_usd_per_hour", "idle"),
    ("idle_with_serving_usd_per_hour", "idle with always-on serving"),
    ("max_on_demand_usd_per_hour", "max, on-demand"),
    ("max_spot_usd_per_hour", "max, spot"),
)
SAME = 0.005  # half a cent an hour: below that a figure has not moved


def usd(x: Any) -> str:
    return f"${float(x):,.2f}" if isinstance(x, (int, float)) else "?"


def delta_text(old: Any, new: Any) -> str:
    """``+$0.08`` / ``−$1.00`` / ``no change`` ("" when either side is unknown)."""
    if not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
        return ""
    d = float(new) - float(old)
    if abs(d) < SAME:
        return "no change"
    return f"{'+' if d > 0 else '−'}${abs(d):,.2f}"


def _key(item: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(item.get("category", "")), str(item.get("scope", "")),
            re.sub(r"\d+(\.\d+)?", "#", str(item.get("name", ""))))


def moved_items(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[str]:
    """One line per item added, removed, renamed (a count changed) or re-priced, in head's order."""
    old = {_key(i): i for i in base.get("items") or []}
    new = {_key(i): i for i in head.get("items") or []}
    lines = []
    for key, item in new.items():
        was = old.get(key)
        price = item.get("usd_per_hour")
        if was is None:
            lines.append(f"- added: {item.get('name')} ({usd(price)}/h)")
        elif was.get("name") != item.get("name") or delta_text(was.get("usd_per_hour"), price) not in ("no change", ""):
            name = item.get("name") if was.get("name") == item.get("name") else f"{was.get('name')} → {item.get('name')}"
            lines.append(f"- {name}: {usd(was.get('usd_per_hour'))}/h → {usd(price)}/h "
                         f"({delta_text(was.get('usd_per_hour'), price)}/h)")
    lines += [f"- removed: {i.get('name')} ({usd(i.get('usd_per_hour'))}/h)" for k, i in old.items() if k not in new]
    return lines


def _unknown(cost: Mapping[str, Any]) -> list[str]:
    return [str(i.get("name")) for i in cost.get("items") or [] if i.get("usd_per_hour") is None]


def cost_lines(cost: Optional[Mapping[str, Any]]) -> list[str]:
    """The PR comment's cost section from ``{"base": cost-json, "head": cost-json}`` or a bare head cost-json."""
    if not cost:
        return []
    paired = "head" in cost or "base" in cost
    head = cost.get("head") if paired else cost
    base = cost.get("base") if paired else None
    if not head:
        return []
    idle, peak = head.get("idle_usd_per_hour"), head.get("max_usd_per_hour")
    line = f"**Cost** ({head.get('region', '?')}): idle {usd(idle)}/h"
    if base:
        line += f" ({delta_text(base.get('idle_usd_per_hour'), idle)})"
    month = head.get("idle_usd_per_month")
    if isinstance(month, (int, float)):
        line += f" ≈ {usd(month)}/month"
    line += f", max {usd(peak)}/h"
    if base:
        line += f" ({delta_text(base.get('max_usd_per_hour'), peak)})"
    out = [line + " (on-demand list prices, see `python -m infra cost`)"]
    unknown = _unknown(head)
    if unknown:
        out += ["", f"Unknown prices (not in the price table, left out of the totals): {', '.join(unknown)}"]
    if not base:
        return out
    out += ["", "| figure | base | head | change |", "|---|---|---|---|"]
    for key, label in FIGURES:
        out.append(f"| {label} | {usd(base.get(key))}/h | {usd(head.get(key))}/h | "
                   f"{delta_text(base.get(key), head.get(key)) or '?'} |")
    moved = moved_items(base, head)
    if moved:
        out += ["", "Items that moved:", *moved]
    return out
