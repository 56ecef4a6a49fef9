"""A small, token-aware source rewrite for Kubernetes CEL rules.

The `cel` package (cel-rust) parses almost all of the CEL that CRD rules use, and Kubernetes'
extension functions are registered on it as ordinary (receiver-style) functions, see
``cel_ext``. Two things cannot be expressed through function registration and are handled here
by rewriting the rule text before it is compiled:

* ``size``: cel-rust's built-in ``size()`` counts the *bytes* of a string, while CEL (and so the
  apiserver) counts code points. Built-ins cannot be overridden, so every *call* named ``size``
  (``size(x)`` and ``x.size()``) is renamed to ``_k8s_size``, a registered function with CEL
  semantics. Field selections such as ``self.size`` are left alone.
* ``cel.bind(v, init, expr)``: a macro from cel-go's bindings extension that cel-rust lacks. It is
  rewritten to the equivalent ``([init].map(v, expr)[0])``, which uses only the native ``map``
  macro.

The rewrite works on tokens, so string literals and comments are never touched. It also detects
syntax the library cannot parse (optional field selection ``a.?b``, optional index ``a[?0]``,
optional entries ``[?x]`` / ``{?k: v}``), so that the caller can report a clear reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Token", "tokenize", "rewrite", "RewriteResult", "RewriteError", "SIZE_FUNCTION", "macro_binders"]

SIZE_FUNCTION = "_k8s_size"

# Order matters: comments and string literals before punctuation; longer operators first.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<string>
        (?:[rR][bB]?|[bB][rR]?)?
        (?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\n])*'|"(?:\\.|[^\\"\n])*")
    )
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<punct>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

# Raw strings must not treat a backslash as an escape: handled by a second pattern.
_RAW_STRING_RE = re.compile(
    r"""(?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")""",
    re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # ws, comment, string, ident, number, punct
    text: str


class RewriteError(ValueError):
    """The rule text could not be tokenized (the library would not parse it either)."""


def tokenize(src: str) -> list[Token]:
    """Split CEL source into tokens; whitespace and comments are kept as tokens."""
    tokens: list[Token] = []
    pos = 0
    n = len(src)
    while pos < n:
        ch = src[pos]
        if ch in "rRbB":
            raw = _RAW_STRING_RE.match(src, pos)
            if raw is not None and re.match(r"[bB]?[rR]|[rR]", src[pos:pos + 2]):
                tokens.append(Token("string", raw.group(0)))
                pos = raw.end()
                continue
        m = _TOKEN_RE.match(src, pos)
        if m is None:
            raise RewriteError(f"unexpected character {src[pos]!r} at offset {pos}")
        kind = m.lastgroup or "punct"
        tokens.append(Token(kind, m.group(0)))
        pos = m.end()
    return tokens


@dataclass(frozen=True)
class RewriteResult:
    source: str                   # the rewritten source (identical to the input if nothing changed)
    unsupported: str | None       # a reason when the rule uses syntax the library cannot handle
    changed: bool


def _find_close(sig: list[Token], open_idx: int) -> int:
    """Index (into sig) of the bracket closing sig[open_idx]; -1 if unbalanced."""
    depth = 0
    for j in range(open_idx, len(sig)):
        t = sig[j]
        if t.kind != "punct":
            continue
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _split_args(sig: list[Token], start: int, end: int) -> list[list[Token]]:
    """Split sig[start:end] (the inside of a call) at top-level commas."""
    args: list[list[Token]] = [[]]
    depth = 0
    for t in sig[start:end]:
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.kind == "punct" and t.text == ",":
            args.append([])
            continue
        args[-1].append(t)
    if args == [[]]:
        return []
    return args


def _emit(sig: list[Token]) -> str:
    """Re-join significant tokens (separated by single spaces, which CEL ignores)."""
    return " ".join(t.text for t in sig)


def _rewrite_sig(sig: list[Token]) -> tuple[list[Token], bool]:
    out: list[Token] = []
    changed = False
    i = 0
    while i < len(sig):
        t = sig[i]
        prev = out[-1] if out else None
        prev_is_dot = prev is not None and prev.kind == "punct" and prev.text == "."
        nxt = sig[i + 1] if i + 1 < len(sig) else None
        if (
            t.kind == "ident" and t.text == "cel" and not prev_is_dot
            and i + 3 < len(sig)
            and sig[i + 1].text == "." and sig[i + 2].kind == "ident" and sig[i + 2].text == "bind"
            and sig[i + 3].text == "("
        ):
            close = _find_close(sig, i + 3)
            if close != -1:
                args = _split_args(sig, i + 4, close)
                if len(args) == 3 and len(args[0]) == 1 and args[0][0].kind == "ident":
                    init, init_changed = _rewrite_sig(args[1])
                    body, body_changed = _rewrite_sig(args[2])
                    text = f"([{_emit(init)}].map({args[0][0].text}, {_emit(body)})[0])"
                    out.extend(tok for tok in tokenize(text) if tok.kind not in ("ws", "comment"))
                    changed = True
                    i = close + 1
                    continue
        if t.kind == "ident" and t.text == "size" and nxt is not None and nxt.kind == "punct" and nxt.text == "(":
            out.append(Token("ident", SIZE_FUNCTION))
            changed = True
            i += 1
            continue
        out.append(t)
        i += 1
    return out, changed


def _optional_syntax(sig: list[Token]) -> str | None:
    for i, t in enumerate(sig):
        if t.kind != "punct" or t.text != "?" or i == 0:
            continue
        before = sig[i - 1]
        if before.kind == "punct" and before.text == ".":
            return "optional field selection ('.?') is not supported by the CEL library"
        if before.kind == "punct" and before.text == "[":
            # `x[?i]` (optional index) or `[?x]` (optional list element)
            return "optional index or list element ('[?') is not supported by the CEL library"
        if before.kind == "punct" and before.text in "{,":
            return "optional map/list entries ('?key: value') are not supported by the CEL library"
    return None


def rewrite(src: str) -> RewriteResult:
    """Rewrite a rule for the cel-rust runtime (see module docstring)."""
    try:
        tokens = tokenize(src)
    except RewriteError:
        # Leave it to the library to report the syntax error.
        return RewriteResult(src, None, False)
    sig = [t for t in tokens if t.kind not in ("ws", "comment")]
    reason = _optional_syntax(sig)
    new_sig, changed = _rewrite_sig(sig)
    if not changed:
        return RewriteResult(src, reason, False)
    # Only significant tokens are re-emitted: comments/newlines go, string literals stay verbatim.
    return RewriteResult(_emit(new_sig), reason, True)


_BINDER_RE_CACHE: dict[str, frozenset[str]] = {}

_MACROS = ("all", "exists", "exists_one", "map", "filter")


def macro_binders(src: str) -> frozenset[str]:
    """Names bound by comprehension macros (`x` in `l.all(x, p)`), from the token stream.

    Only the first argument of a macro call is a binder for the macros the library supports;
    the two-variable forms (`l.all(i, v, p)`) are not supported, so their second name stays
    unbound and the static check reports it.
    """
    cached = _BINDER_RE_CACHE.get(src)
    if cached is not None:
        return cached
    try:
        sig = [t for t in tokenize(src) if t.kind not in ("ws", "comment")]
    except RewriteError:
        return frozenset()
    names = set()
    for i in range(1, len(sig) - 3):
        if (
            sig[i].kind == "ident" and sig[i].text in _MACROS
            and sig[i - 1].text == "."
            and sig[i + 1].text == "("
            and sig[i + 2].kind == "ident"
            and sig[i + 3].text == ","
        ):
            names.add(sig[i + 2].text)
    result = frozenset(names)
    _BINDER_RE_CACHE[src] = result
    return result
