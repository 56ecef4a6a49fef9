"""The text report of an estimate (:func:`format_text`)."""

from __future__ import annotations

from typing import Any, Mapping


def _money(x: float | None) -> str:
    if x is None:
        return "unknown price"
    return f"${x:,.2f}" if x >= 1 else f"${x:,.4f}"


def format_text(est: Mapping[str, Any]) -> str:
    lines = [f"Cost estimate for stack '{est['stack']}' ({est['region']}, price table "
             f"{est['price_table']['date']})", ""]

    def section(title: str, scope: str) -> None:
        rows = [i for i in est["items"] if i["scope"] == scope]
        if not rows:
            return
        lines.append(title)
        for i in rows:
            price = i["usd_per_hour"]
            lines.append(f"  {i['name']:<72} {_money(price) + ('/h' if price is not None else ''):>12}")
        lines.append("")

    section("Idle (no jobs, NodePools at zero):", "idle")
    lines.append(f"  {'idle total':<72} {_money(est['idle_usd_per_hour']):>10}/h  "
                 f"≈ {_money(est['idle_usd_per_month'])}/month")
    lines.append("")
    section("Always-on serving:", "serving")
    if est["serving_usd_per_hour"]:
        lines.append(f"  {'idle + serving':<72} {_money(est['idle_with_serving_usd_per_hour']):>10}/h  "
                     f"≈ {_money(est['idle_with_serving_usd_per_month'])}/month")
        lines.append("")
    section("Every NodePool at its limits (worst case):", "max")
    lines.append(f"  {'max, on-demand where allowed':<72} {_money(est['max_usd_per_hour']):>10}/h")
    lines.append(f"  {'max, spot where allowed':<72} {_money(est['max_spot_usd_per_hour']):>10}/h")
    lines.append("")
    lines.append("Excluded: " + "; ".join(est["excluded"]) + ".")
    for note in est["notes"]:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"
