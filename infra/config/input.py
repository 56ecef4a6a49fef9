"""The raw input before validation: stack files read with limits, and values of a shape no model can choke on.

A stack file can come from a fork's pull request (the preview job renders it), so reading one is
bounded: at most ``MAX_FILE_BYTES``, no YAML aliases (an alias bomb of a few hundred bytes expands
to gigabytes once anything walks it), no duplicate keys (YAML keeps the last one silently), and a
top level that is a mapping with a ``config`` mapping of string keys. Then every value is walked
once: nesting depth, string length, lone surrogates, non-string keys and absurd integers are
refused with the key's path, before pydantic or any arithmetic sees them.
"""
from __future__ import annotations

from typing import Any

import yaml

from infra.config.base import PROJECT

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 12
MAX_STRING_CHARS = 4096
#: No setting of this platform is anywhere near this; larger integers are a mistake or an attack.
MAX_ABS_INT = 10**15


class StackFileError(ValueError):
    """A stack file that cannot be read as config: the message is one line and names the file."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise StackFileError(f"line {mark.line + 1}: YAML aliases (*name) are not accepted in stack files; "
                                 "write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: refused below by the shape check
                continue
            if duplicate:
                raise StackFileError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r} (YAML would keep "
                                     "only the last one); keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, name: str) -> Any:
    """One YAML document, read with the limits above. Raises StackFileError with one line naming ``name``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise StackFileError(f"{name}: larger than {MAX_FILE_BYTES:,} bytes; a stack file is a few kB")
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except StackFileError as exc:
        raise StackFileError(f"{name}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise StackFileError(f"{name} is not valid YAML{where}: {problem}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise StackFileError(f"{name}: a value cannot be read ({exc})") from None
    return doc


def load_stack_text(text: str, name: str) -> dict[str, Any]:
    """The ``config`` mapping of a stack file's text (a mapping of string keys), or StackFileError."""
    doc = load_yaml_text(text, name)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise StackFileError(f"{name}: the file must be a mapping with a 'config' key, not a {type(doc).__name__}")
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise StackFileError(f"{name}: 'config' must be a mapping of keys to values, not a {type(cfg).__name__}")
    bad = [k for k in cfg if not isinstance(k, str)]
    if bad:
        raise StackFileError(f"{name}: config keys must be strings such as '{PROJECT}:region'; {bad[0]!r} is not")
    return cfg


def input_problems(value: Any, key: str, depth: int = 0) -> list[tuple[str, str]]:
    """``[(key path, problem)]`` for values no section model should ever see (walked once, depth first)."""
    if depth > MAX_DEPTH:
        return [(key, f"is nested more than {MAX_DEPTH} levels deep")]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if not isinstance(k, str):
                out.append((key, f"has a key {k!r} that is not a string"))
                continue
            out += input_problems(v, f"{key}.{k}" if key else k, depth + 1)
        return out
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in input_problems(v, f"{key}[{i}]", depth + 1)]
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            return [(key, f"is {len(value):,} characters long (at most {MAX_STRING_CHARS:,})")]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [(key, "contains a character that is not valid Unicode text (a lone surrogate)")]
        return []
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ABS_INT:
        return [(key, f"is out of range (at most {MAX_ABS_INT:.0e} in size)")]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return [(key, "must be a finite number")]
    return []
