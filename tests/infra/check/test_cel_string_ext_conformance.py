"""The CEL strings extension (infra/check/cel_ext/strings.py) against cel-go's semantics, as the API server
evaluates a CRD's ``x-kubernetes-validations``: the expected values are those of the CEL conformance suite's
``string_ext`` cases (cel-spec) and the Kubernetes CEL documentation. A rule that the API server accepts must
not fail in ``check`` and the reverse, so each function is run through the real evaluation path (rewrite ->
cel-rust -> the registered callback), plus the error kinds: a type mismatch is an unsupported overload, a bad
value is an evaluation error."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from infra.check.cel import CelEvaluationError, evaluate_expression
from infra.check.cel_ext import strings
from infra.check.cel_ext.registry import ExtError

pytestmark = pytest.mark.unit


def ev(expr: str, **variables):
    return evaluate_expression(expr, variables)


def ev_error(expr: str, **variables) -> CelEvaluationError:
    """The evaluation error of ``expr`` (a value instead fails the test, naming it)."""
    try:
        value = evaluate_expression(expr, variables)
    except CelEvaluationError as exc:
        return exc
    pytest.fail(f"{expr} evaluated to {value!r}, expected an evaluation error")


@pytest.mark.parametrize("expr, expected", [
    # charAt / substring count code points, not bytes
    ("'©αT'.charAt(0) == '©' && '©αT'.charAt(1) == 'α' && '©αT'.charAt(2) == 'T'", True),
    ("'tacocat'.charAt(7)", ""),
    ("'tacocat'.substring(4)", "cat"),
    ("'tacocat'.substring(7)", ""),
    ("'tacocat'.substring(0, 4)", "taco"),
    ("'tacocat'.substring(4, 4)", ""),
    ("'ta©o©αT'.substring(2, 6)", "©o©α"),
    ("'ta©o©αT'.substring(7, 7)", ""),
    # ASCII-only case mapping: other letters are left alone
    ("'TacoCat'.lowerAscii()", "tacocat"),
    ("'TacoCÆt Xii'.lowerAscii()", "tacocÆt xii"),
    ("'TacoCÆt Xii'.upperAscii()", "TACOCÆT XII"),
    ("'tacoCαt'.upperAscii()", "TACOCαT"),
    # replace with and without a limit
    ("'12 days 12 hours'.replace('{0}', '2')", "12 days 12 hours"),
    ("'{0} days {0} hours'.replace('{0}', '2')", "2 days 2 hours"),
    ("'{0} days {0} hours'.replace('{0}', '2', 1).replace('{0}', '23')", "2 days 23 hours"),
    ("'1 ©αT taco'.replace('αT', 'o©α')", "1 ©o©α taco"),
    ("'aaa'.replace('a', 'b', -1)", "bbb"),
    # split: a limit is the number of parts (Go's strings.SplitN); 0 parts is an empty list
    ("'hello world'.split(' ')", ["hello", "world"]),
    ("'hello world events!'.split(' ', 0)", []),
    ("'hello world events!'.split(' ', 1)", ["hello world events!"]),
    ("'o©o©o©o'.split('©', -1)", ["o", "o", "o", "o"]),
    ("'abc'.split('', 2)", ["a", "bc"]),
    ("'abc'.split('', 1)", ["abc"]),
    ("'abc'.split('', 9)", ["a", "b", "c"]),
    ("'abc'.split('', -1)", ["a", "b", "c"]),
    # trim: Go's unicode.IsSpace, not Python's str.strip()
    ("' \\f\\n\\r\\t\\vtext  '.trim()", "text"),
    ("'\\u0085\\u00a0\\u1680text'.trim()", "text"),
    ("'text\\u2000\\u2001\\u2002\\u2003\\u2004\\u2006\\u2007\\u2008\\u2009'.trim()", "text"),
    ("'\\u200atext\\u2028\\u2029\\u202F\\u205F\\u3000'.trim()", "text"),
    ("'\\u180etext\\u200b\\u200c\\u200d\\u2060\\ufeff'.trim()", "\u180etext\u200b\u200c\u200d\u2060\ufeff"),
    ("'\\x1ctext\\x1f'.trim()", "\x1ctext\x1f"),  # Python would strip these file/unit separators
    # join, reverse
    ("['x', 'y'].join()", "xy"),
    ("['x', 'y'].join('-')", "x-y"),
    ("[].join()", ""),
    ("'gums'.reverse()", "smug"),
    ("'ta©o©αT'.reverse()", "Tα©o©at"),
    # strings.quote: Go-style escapes, printable Unicode kept as is
    ("strings.quote('first\\nsecond')", '"first\\nsecond"'),
    ("strings.quote('bell\\a')", '"bell\\a"'),
    ("strings.quote('\\bbackspace')", '"\\bbackspace"'),
    ("strings.quote('\\fform feed')", '"\\fform feed"'),
    ("strings.quote('carriage \\r return')", '"carriage \\r return"'),
    ("strings.quote('horizontal tab\\t')", '"horizontal tab\\t"'),
    ("strings.quote('vertical \\v tab')", '"vertical \\v tab"'),
    ("strings.quote('ends with \\\\')", '"ends with \\\\"'),
    ("strings.quote('mid string \" quote')", '"mid string \\" quote"'),
    ("strings.quote('printable unicode😀')", '"printable unicode😀"'),
    ("strings.quote('завтра')", '"завтра"'),
    ("strings.quote('')", '""'),
])
def test_string_functions_match_cel_go(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr, expected", [
    ("'no substitution'.format([])", "no substitution"),
    ("'str is %s and some more'.format(['filler'])", "str is filler and some more"),
    ("'%% and also %%'.format([])", "% and also %"),
    ("'%%%s%%'.format(['text'])", "%text%"),
    ("'%d %d %d, %s %s %s'.format([1, 2, 3, 'A', 'B', 'C'])", "1 2 3, A B C"),
    ("'%.3f'.format([1.2345])", "1.234"),
    ("'%.3f'.format([dyn(4.5)])", "4.500"),
    ("'%f'.format([2.71828])", "2.718280"),
    ("'%f'.format([3])", "3.000000"),  # an int is accepted where a double is (cel-go converts it)
    ("'%e'.format([2.71828])", "2.718280e+00"),
    ("'%.6e'.format([1052.032911275])", "1.052033e+03"),
    ("'this is 5 in binary: %b'.format([5])", "this is 5 in binary: 101"),
    ("'%b'.format([uint(64)])", "1000000"),
    ("'bit set from bool: %b'.format([true])", "bit set from bool: 1"),
    ("'%b'.format([false])", "0"),
    ("'%o'.format([11])", "13"),
    ("'%o'.format([uint(65535)])", "177777"),
    ("'%x is 20 in hexadecimal'.format([30])", "1e is 20 in hexadecimal"),
    ("'%X is 20 in hexadecimal'.format([30])", "1E is 20 in hexadecimal"),
    ("'%X'.format([uint(6000)])", "1770"),
    ("'%x'.format([dyn(500u)])", "1f4"),
    ("'%x'.format(['Hello world!'])", "48656c6c6f20776f726c6421"),
    ("'%X'.format(['Hello world!'])", "48656C6C6F20776F726C6421"),
    ("'%x'.format([b'byte string'])", "6279746520737472696e67"),
    ("'%X'.format([b'byte string'])", "6279746520737472696E67"),
    ("'%d'.format([uint(64)])", "64"),
    ("'%d'.format([dyn(256u)])", "256"),
    ("'%s'.format([null])", "null"),
    ("'%s'.format([999999999999])", "999999999999"),
    ("'%s'.format([b'xyz'])", "xyz"),
    ("'%s'.format([type('test string')])", "string"),
    ("'%s, %s'.format([true, false])", "true, false"),
    ("'%s, %s'.format([dyn(32), dyn(56.8)])", "32, 56.8"),
    ("'%s'.format([1.0])", "1"),
    ("'%s'.format([double('NaN')])", "NaN"),
    ("'%s'.format([timestamp('2023-02-03T23:31:20+00:00')])", "2023-02-03T23:31:20Z"),
    ("'%s'.format([timestamp('2023-02-03T23:31:20.120Z')])", "2023-02-03T23:31:20.12Z"),
    ("'%s'.format([duration('1h45m47s')])", "6347s"),
    ("'%s'.format([duration('1.5s')])", "1.5s"),
    ("'%s'.format([['abc', 3.14, null, [9, 8, 7, 6], timestamp('2023-02-03T23:31:20Z')]])",
     "[abc, 3.14, null, [9, 8, 7, 6], 2023-02-03T23:31:20Z]"),
    ("'%s'.format([{'key1': b'xyz', 'key5': null, 'key2': duration('2h'), 'key4': true, 'key3': 2.71828}])",
     "{key1: xyz, key2: 7200s, key3: 2.71828, key4: true, key5: null}"),
    ("'%s'.format([{'strKey': 'x', 6: duration('422s')}])", "{6: 422s, strKey: x}"),
    ("s.format([1])", "1"),  # the template may be a variable
])
def test_format_matches_cel_go(expr, expected):
    assert ev(expr, s="%d") == expected


@pytest.mark.parametrize("expr, message", [
    ("'%d %d %d'.format([0, 1])", "index 2 out of range"),
    ("'%s'.format(['a', 'b'])", "too many arguments supplied to string.format (expected 1, got 2)"),
    ("'string is %b'.format(['abc'])",
     "error during formatting: only integers and bools can be formatted as binary, was given string"),
    ("'%d'.format([duration('30m2s')])", "error during formatting: decimal clause can only be used on integers"),
    ("'%d'.format([2.5])", "error during formatting: decimal clause can only be used on integers, was given double"),
    ("'octal: %o'.format(['a string'])",
     "error during formatting: octal clause can only be used on integers, was given string"),
    ("'double is %x'.format([0.5])", "error during formatting: only integers, byte buffers, and strings can be "
                                     "formatted as hex, was given double"),
    ("'null: %d'.format([null])",
     "error during formatting: decimal clause can only be used on integers, was given null_type"),
    ("'null: %e'.format([null])",
     "error during formatting: scientific clause can only be used on doubles, was given null_type"),
    ("'null: %f'.format([null])",
     "error during formatting: fixed-point clause can only be used on doubles, was given null_type"),
    ("'null: %X'.format([null])", "error during formatting: only integers, byte buffers, and strings can be "
                                  "formatted as hex, was given null_type"),
    ("'null: %b'.format([null])",
     "error during formatting: only integers and bools can be formatted as binary, was given null_type"),
    ("'%a'.format([1])", "could not parse formatting clause: unrecognized formatting clause"),
    ("'double is %E'.format([0.5])", "could not parse formatting clause: unrecognized formatting clause"),
])
def test_format_errors_are_evaluation_errors_with_cel_go_messages(expr, message):
    err = ev_error(expr)
    assert not err.unsupported  # a value error, as cel-go reports it at run time
    assert message in err.message


@pytest.mark.parametrize("expr", [
    "'hello'.substring(-1)",
    "'hello'.substring(0, -1)",
    "'hello'.substring(0, 6)",
    "'hello'.substring(6)",
])
def test_substring_out_of_range_is_an_evaluation_error(expr):
    err = ev_error(expr)
    assert not err.unsupported and "index out of range" in err.message


@pytest.mark.parametrize("expr, name", [
    ("x.charAt(0)", "charAt"),
    ("'x'.charAt(0.5)", "charAt"),
    ("x.upperAscii()", "upperAscii"),
    ("'x'.replace(1, 'a')", "replace"),
    ("'x'.replace('a', 'b', 'c')", "replace"),
    ("x.split(',')", "split"),
    ("x.substring(0)", "substring"),
    ("x.trim()", "trim"),
    ("'x'.join(',')", "join"),
    ("['a', 1].join()", "join"),
    ("['a'].join(1)", "join"),
    ("x.reverse()", "reverse"),
    ("strings.quote(x)", "quote"),
    ("x.format([])", "format"),
    ("'%s'.format(x)", "format"),
])
def test_a_value_of_the_wrong_type_is_an_unsupported_overload(expr, name):
    err = ev_error(expr, x=5)
    assert err.unsupported and name in err.message


# --- the %s rendering of values a rule cannot spell as a literal ---------------------------------------------

def test_format_value_renders_python_side_values_like_cel_go():
    fv = strings._format_value
    assert fv(timedelta(seconds=90)) == "90s"
    assert fv(timedelta(milliseconds=1500)) == "1.5s"
    assert fv(timedelta(microseconds=1)) == "0.000001s"
    assert fv(datetime(2023, 2, 3, 23, 31, 20, tzinfo=timezone.utc)) == "2023-02-03T23:31:20Z"
    assert fv(datetime(2023, 2, 3, 23, 31, 20, 500000, tzinfo=timezone.utc)) == "2023-02-03T23:31:20.5Z"
    # another zone is shown in UTC
    assert fv(datetime(2023, 2, 4, 1, 31, 20, tzinfo=timezone(timedelta(hours=2)))) == "2023-02-03T23:31:20Z"
    assert fv(float("-inf")) == "-Inf"
    assert fv(b"\xff") == "\ufffd"  # invalid UTF-8 is replaced, never an exception
    assert fv({"b": [1, None], "a": {"c": False}}) == "{a: {c: false}, b: [1, null]}"


def test_format_value_of_a_tagged_kubernetes_type_is_its_canonical_text():
    assert strings._format_value({"@k8s.semver": "1.2.3"}) == "1.2.3"


def test_format_value_of_an_unknown_object_is_a_no_overload_error():
    with pytest.raises(ExtError) as info:
        strings._format_value(object())
    assert info.value.overload


def test_char_at_on_the_callback_directly():
    assert strings.char_at("abc", 2) == "c"
    with pytest.raises(ExtError, match="index out of range: 4"):
        strings.char_at("abc", 4)
