"""The price table (``infra/prices/<region>.json``): loading it, quantities, line items, and the
per-pool pricing helpers (instance types a pool allows, its limits, filling it to them)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Mapping, Optional

PRICES_DIR = Path(__file__).resolve().parents[1] / "prices"
REPO = Path(__file__).resolve().parents[2]


_QTY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_TO_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1, "Ti": 2**10, "Pi": 2**20,
           "k": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30,
           "P": 1e15 / 2**30}
ACCEL_DIM = {"nvidia": "gpu", "inf1": "neuron", "inf2": "neuron", "trn1": "neuron", "trn2": "neuron"}
SERVING_POOL = {"inf1": "inf1", "gpu": "nvidia", "cpu": "none"}


class PriceTableError(Exception):
    pass


def load_prices(region: str, prices_dir: Path = PRICES_DIR) -> dict[str, Any]:
    path = Path(prices_dir) / f"{region}.json"
    if not path.is_file():
        have = sorted(p.stem for p in Path(prices_dir).glob("*.json"))
        raise PriceTableError(f"no price table for region {region} (have: {', '.join(have) or 'none'}); "
                              f"add infra/prices/{region}.json")
    return json.loads(path.read_text())


def quantity_gib(value: Any) -> float:
    """A Kubernetes memory quantity (``256Gi``) in GiB."""
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    return float(m[1]) * _TO_GIB[m[2]]


def _r(x: float) -> float:
    return round(x, 4)


UNKNOWN_PRICE = "unknown price: not in the price table, left out of the totals"


def _item(name: str, category: str, quantity: float, unit: str, unit_usd_per_hour: Optional[float],
          hpm: float, *, scope: str, note: str = "") -> dict[str, Any]:
    """One line item. ``unit_usd_per_hour`` None: the table has no price for it (usd fields None)."""
    if unit_usd_per_hour is None:
        note = f"{note}; {UNKNOWN_PRICE}" if note else UNKNOWN_PRICE
        out = {"name": name, "category": category, "scope": scope, "quantity": quantity, "unit": unit,
               "unit_usd_per_hour": None, "usd_per_hour": None, "usd_per_month": None}
    else:
        per_hour = quantity * unit_usd_per_hour
        out = {"name": name, "category": category, "scope": scope, "quantity": quantity, "unit": unit,
               "unit_usd_per_hour": _r(unit_usd_per_hour), "usd_per_hour": _r(per_hour),
               "usd_per_month": round(per_hour * hpm, 2)}
    if note:
        out["note"] = note
    return out


@dataclass
class Ledger:
    """One estimate's running state: the price table it reads and the line items and notes it adds up."""

    prices: Mapping[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def svc(self) -> Mapping[str, Any]:
        return self.prices["services"]

    @property
    def hpm(self) -> float:
        """Hours per month (the table's, 730 by default)."""
        return float(self.prices.get("hours_per_month", 730))

    @property
    def gp3_hour(self) -> float:
        """gp3 $/GiB-hour."""
        return self.svc["gp3_per_gb_month"] / self.hpm

    def add(self, name: str, category: str, quantity: float, unit: str, unit_usd_per_hour: Optional[float], *,
            scope: str, note: str = "") -> dict[str, Any]:
        """Append one line item (see :func:`_item`) and return it."""
        item = _item(name, category, quantity, unit, unit_usd_per_hour, self.hpm, scope=scope, note=note)
        self.items.append(item)
        return item


def known_instance(prices: Mapping[str, Any], itype: str) -> Optional[Mapping[str, Any]]:
    """The table's entry for ``itype``, or None (a valid type the table lacks: its price is unknown)."""
    return prices["instances"].get(itype)


def _instance(prices: Mapping[str, Any], itype: str) -> Mapping[str, Any]:
    try:
        return prices["instances"][itype]
    except KeyError:
        raise PriceTableError(f"{itype} is not in the price table for {prices.get('region')}") from None


def pool_types(pool: Any, prices: Mapping[str, Any]) -> tuple[dict[str, Mapping[str, Any]], list[str]]:
    """Instance types of the table that a pool may launch, and the families the table lacks."""
    fams = list(pool.instance_families)
    sizes = set(pool.instance_sizes or [])
    found: dict[str, Mapping[str, Any]] = {}
    for name, spec in prices["instances"].items():
        fam, _, size = name.partition(".")
        if fam in fams and (not sizes or size in sizes):
            found[name] = spec
    missing = [f for f in fams if not any(n.startswith(f + ".") for n in found)]
    return found, missing


def pool_limits(pool: Any) -> dict[str, float]:
    limits = {"vcpu": float(pool.limits.cpu), "memory_gib": quantity_gib(pool.limits.memory)}
    if getattr(pool.limits, "gpu", None):
        limits["gpu"] = float(pool.limits.gpu)
    if getattr(pool.limits, "neuron", None):
        limits["neuron"] = float(pool.limits.neuron)
    return limits


def fill_to_limits(types: Mapping[str, Mapping[str, Any]], limits: Mapping[str, float],
                   price_key: str) -> list[tuple[str, int]]:
    """The costliest set of instances whose total stays within ``limits`` (greedy).

    Repeatedly takes the type with the highest price per share of the pool's limits it uses,
    as many as still fit. Returns ``[(type, count)]``.
    """
    remaining = dict(limits)
    chosen: list[tuple[str, int]] = []

    def share(spec: Mapping[str, Any]) -> float:
        return max(spec.get(d, 0) / limits[d] for d in limits)

    while True:
        fits = [(n, s) for n, s in types.items()
                if share(s) > 0 and all(s.get(d, 0) <= remaining[d] + 1e-9 for d in remaining)]
        if not fits:
            return chosen
        name, spec = max(fits, key=lambda ns: (ns[1][price_key] / share(ns[1]), ns[1][price_key],
                                               ns[0]))
        count = int(min(math.floor((remaining[d] + 1e-9) / spec[d])
                        for d in remaining if spec.get(d, 0) > 0))
        chosen.append((name, count))
        for d in remaining:
            remaining[d] -= count * spec.get(d, 0)


def _cheapest_hosting(types: Mapping[str, Mapping[str, Any]], dim: str, need: float,
                      price_key: str) -> tuple[str, int, float] | None:
    best = None
    for name, spec in sorted(types.items()):
        per = spec.get(dim, 0)
        if per <= 0:
            continue
        count = math.ceil(need / per)
        cost = count * spec[price_key]
        if best is None or cost < best[2] - 1e-12:
            best = (name, count, cost)
    return best


def _eks_hourly(version: str, prices: Mapping[str, Any]) -> tuple[float, str]:
    svc = prices["services"]
    ends = prices.get("eks_standard_support_end") or {}
    end = ends.get(version)
    if end and prices.get("date") and date.fromisoformat(prices["date"]) > date.fromisoformat(end):
        return svc["eks_extended_support_per_hour"], (
            f"Kubernetes {version} left EKS standard support on {end}: extended support rate")
    return svc["eks_control_plane_per_hour"], f"Kubernetes {version}, standard support"
