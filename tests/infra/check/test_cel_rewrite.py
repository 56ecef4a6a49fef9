"""Tests for the token-aware rule rewrite (infra/check/cel_rewrite.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import cel
import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.check.cel_rewrite import SIZE_FUNCTION, macro_binders, rewrite, tokenize  # noqa: E402


def kinds(src: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(src) if t.kind != "ws"]


def test_tokenize_literals_and_operators():
    assert kinds("self.a != 'x' && r\"a\\d\" == b'\\x00' || 1.5e3 >= 0x1Fu // done") == [
        ("ident", "self"), ("punct", "."), ("ident", "a"), ("punct", "!="), ("string", "'x'"),
        ("punct", "&&"), ("string", 'r"a\\d"'), ("punct", "=="), ("string", "b'\\x00'"),
        ("punct", "||"), ("number", "1.5e3"), ("punct", ">="), ("number", "0x1Fu"),
        ("comment", "// done"),
    ]


def test_tokenize_triple_quoted_and_escaped_quotes():
    assert kinds("'''a'b''' + \"say \\\"hi\\\"\"") == [
        ("string", "'''a'b'''"), ("punct", "+"), ("string", '"say \\"hi\\""'),
    ]


@pytest.mark.parametrize("src, expected", [
    ("self.size() > 0", f"self . {SIZE_FUNCTION} ( ) > 0"),
    ("size(self.x) == 1", f"{SIZE_FUNCTION} ( self . x ) == 1"),
    ("size (self)", f"{SIZE_FUNCTION} ( self )"),
])
def test_size_calls_are_renamed(src, expected):
    result = rewrite(src)
    assert result.changed and result.source == expected and result.unsupported is None


@pytest.mark.parametrize("src", [
    "self.size == 2",                       # a field named size, not a call
    "has(self.size)",
    "self.name == 'size()' && self.x.matches(\"size(\")",
    "self.all(x, x != 'a')",
])
def test_text_without_size_calls_is_untouched(src):
    result = rewrite(src)
    assert not result.changed and result.source == src


def test_rewritten_size_counts_code_points():
    source = rewrite("'héllo'.size() == 5 && size('日本') == 2").source
    from infra.check.cel_ext import FUNCTIONS

    assert cel.evaluate(source, cel.Context(functions=FUNCTIONS)) is True
    # ...whereas the library's own size() counts UTF-8 bytes, which is why the rewrite exists.
    assert cel.evaluate("'héllo'.size()") == 6


def test_cel_bind_is_rewritten_to_a_map_comprehension():
    result = rewrite("cel.bind(x, self.a, x + x)")
    assert result.source == "( [ self . a ] . map ( x , x + x ) [ 0 ] )"
    assert cel.evaluate(result.source, {"self": {"a": 2}}) == 4


def test_nested_cel_bind_and_size_inside_bind():
    result = rewrite("cel.bind(a, 'ab', cel.bind(b, a.size(), b * 2))")
    assert "bind" not in result.source and SIZE_FUNCTION in result.source


def test_bind_with_wrong_shape_is_left_for_the_compiler():
    assert "bind" in rewrite("cel.bind(x, 1)").source


@pytest.mark.parametrize("src, fragment", [
    ("self.?a.orValue(1) == 1", "'.?'"),
    ("self.items[?0].hasValue()", "'[?'"),
    ("[?optional.none()] == []", "'[?'"),
    ("{?'a': optional.none()} == {}", "'?key: value'"),
])
def test_optional_syntax_is_reported(src, fragment):
    reason = rewrite(src).unsupported
    assert reason is not None and fragment in reason


def test_ternary_is_not_mistaken_for_optional_syntax():
    assert rewrite("self.a ? [1] : [2]").unsupported is None
    assert rewrite("x == 1 ? {'a': 1} : {'a': 2}").unsupported is None


def test_macro_binders():
    assert macro_binders("self.all(x, x.tags.exists(k, k != ''))") == {"x", "k"}
    assert macro_binders("self.filter(y, has(y.a)).map(z, z.a).exists_one(w, w)") == {"y", "z", "w"}
    # two-variable forms: only the first name counts as bound, so the checker flags the second
    assert macro_binders("self.all(i, v, v > 0)") == {"i"}
    assert macro_binders("self.x == 'all(a, b)'") == frozenset()
