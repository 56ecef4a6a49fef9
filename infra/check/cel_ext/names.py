"""Names for the static check of a compiled rule: native functions, namespaces, type identifiers."""
from __future__ import annotations

from .registry import FUNCTIONS


#: Functions cel-rust implements itself (as reported by ``Program.references()``).
NATIVE_FUNCTIONS = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn", "type",
    "contains", "startsWith", "endsWith", "matches",
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    # optional values (`optional.of(x)` is reported as variable `optional` + function `of`)
    "of", "none", "ofNonZeroValue", "orValue", "hasValue", "value", "or",
})

#: Namespaces a call may be qualified with (`sets.contains(...)` reports variable `sets`).
NAMESPACES = frozenset({"optional", "sets", "strings", "ip", "format"})

#: Type identifiers usable in expressions such as `type(self) == string`.
TYPE_IDENTIFIERS = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map",
                              "null_type", "type", "duration", "timestamp", "dyn"})


def known_function_names() -> frozenset[str]:
    """Every function name (last dotted component) a rule may call."""
    registered = {name.rsplit(".", 1)[-1] for name in FUNCTIONS}
    return NATIVE_FUNCTIONS | registered
