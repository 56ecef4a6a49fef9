"""The EC2 instance families and sizes the config accepts: one table, extended here when AWS adds one.

A family or type outside it is refused with the table's name, so a typo (``m6l``, ``M6I``,
``m6i.lage``) never reaches Karpenter or the node group, where it would only fail at launch.
"""
from __future__ import annotations

import re
from typing import Optional

NVIDIA_FAMILIES = ("g4dn", "g5", "g5g", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")
NEURON_FAMILIES = {"inf1": ("inf1",), "inf2": ("inf2",), "trn1": ("trn1", "trn1n"), "trn2": ("trn2",)}
# general purpose, compute, memory, storage and burstable families of the current generations
GENERAL_FAMILIES = (
    "m5", "m5a", "m5ad", "m5d", "m5dn", "m5n", "m5zn", "m6a", "m6g", "m6gd", "m6i", "m6id", "m6idn", "m6in",
    "m7a", "m7g", "m7gd", "m7i", "m7i-flex", "m8g", "m8gd", "m8i",
    "c5", "c5a", "c5ad", "c5d", "c5n", "c6a", "c6g", "c6gd", "c6gn", "c6i", "c6id", "c6in", "c7a", "c7g", "c7gd",
    "c7gn", "c7i", "c7i-flex", "c8g", "c8gd", "c8i",
    "r5", "r5a", "r5ad", "r5b", "r5d", "r5dn", "r5n", "r6a", "r6g", "r6gd", "r6i", "r6id", "r6idn", "r6in", "r7a",
    "r7g", "r7gd", "r7i", "r7iz", "r8g", "r8gd", "r8i", "x2gd", "x2idn", "x2iedn", "x8g", "z1d",
    "i3", "i3en", "i4g", "i4i", "i7i", "i7ie", "im4gn", "is4gen", "d3", "d3en",
    "t3", "t3a", "t4g",
)
KNOWN_FAMILIES = (frozenset(GENERAL_FAMILIES) | frozenset(NVIDIA_FAMILIES)
                  | frozenset(f for fams in NEURON_FAMILIES.values() for f in fams))
SIZE_RE = re.compile(r"^(nano|micro|small|medium|large|xlarge|([2-9]|[1-9][0-9])xlarge|metal(-[0-9]+xl)?)$")
TABLE = "infra/config/instances.py"


def family_problem(family: str) -> Optional[str]:
    """Why ``family`` is not an EC2 instance family this platform knows, or None."""
    if "." in family and family.split(".", 1)[0] in KNOWN_FAMILIES:
        return f"{family!r} is an instance type; list its family ({family.split('.', 1)[0]})"
    if family not in KNOWN_FAMILIES:
        lower = family.lower()
        hint = f" (families are lower case: {lower})" if lower in KNOWN_FAMILIES else ""
        return f"{family!r} is not an EC2 instance family in {TABLE}{hint}; add it there if AWS offers it"
    return None


def instance_type_problem(instance_type: str) -> Optional[str]:
    """Why ``instance_type`` is not ``<known family>.<size>``, or None."""
    family, dot, size = instance_type.partition(".")
    if not dot:
        return f"{instance_type!r} is not an instance type such as m6i.large"
    problem = family_problem(family)
    if problem:
        return f"{instance_type!r}: {problem}"
    if not SIZE_RE.match(size):
        return f"{instance_type!r}: {size!r} is not an EC2 instance size (large, xlarge, 2xlarge ... metal)"
    return None
