"""Unit tests for the Kubernetes CEL extension functions (infra/check/cel_ext.py).

Every function is exercised through the real evaluation path (rule text -> rewrite -> cel-rust
-> registered Python callback), plus direct tests of the helpers with tricky semantics.
"""
from __future__ import annotations

import sys
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infra.check import cel_ext  # noqa: E402
from infra.check.cel import CelEvaluationError, evaluate_expression  # noqa: E402


def ev(expr: str, **variables):
    return evaluate_expression(expr, variables)


def ev_error(expr: str, **variables) -> CelEvaluationError:
    with pytest.raises(CelEvaluationError) as info:
        evaluate_expression(expr, variables)
    return info.value


# --- lists library ----------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("[1, 2, 3].isSorted()", True),
    ("[3, 1].isSorted()", False),
    ("['a', 'b', 'b'].isSorted()", True),
    ("[].isSorted()", True),
    ("[1, 2.5, 3].isSorted()", True),
    ("[duration('1s'), duration('2m')].isSorted()", True),
])
def test_is_sorted(expr, expected):
    assert ev(expr) is expected


def test_is_sorted_mixed_types_is_an_overload_error():
    err = ev_error("[1, 'a'].isSorted()")
    assert err.unsupported and "isSorted" in err.message


@pytest.mark.parametrize("expr, expected", [
    ("[1, 2, 3].sum()", 6),
    ("[1.5, 2.0].sum()", 3.5),
    ("[].sum()", 0),
    ("[duration('1s'), duration('2s')].sum() == duration('3s')", True),
    ("[3, 1, 2].min()", 1),
    ("[3, 1, 2].max()", 3),
    ("['b', 'a'].min()", "a"),
    ("[1, 2, 1].indexOf(1)", 0),
    ("[1, 2, 1].lastIndexOf(1)", 2),
    ("[1, 2].indexOf(3)", -1),
    ("[[1], [2]].indexOf([2])", 1),
    ("[1, 2].indexOf(2.0)", 1),          # CEL numeric equality across int/double
    ("[true, 1].indexOf(1)", 1),         # but bool is never equal to int
])
def test_list_functions(expr, expected):
    assert ev(expr) == expected


def test_min_max_on_empty_list_are_evaluation_errors():
    for fn in ("min", "max"):
        err = ev_error(f"[].{fn}()")
        assert not err.unsupported and "empty list" in err.message


def test_sum_rejects_non_numbers():
    assert ev_error("['a'].sum()").unsupported


# --- strings extension ------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("'hello'.charAt(1)", "e"),
    ("'hello'.charAt(5)", ""),
    ("'héllo'.charAt(1)", "é"),
    ("'hello'.indexOf('l')", 2),
    ("'hello'.indexOf('l', 3)", 3),
    ("'hello'.indexOf('')", 0),
    ("'hello'.indexOf('z')", -1),
    ("'hello'.lastIndexOf('l')", 3),
    ("'hello'.lastIndexOf('l', 2)", 2),
    ("'hello'.lastIndexOf('')", 5),
    ("'HeLLo'.lowerAscii()", "hello"),
    ("'ÀbC'.lowerAscii()", "Àbc"),
    ("'héllo'.upperAscii()", "HéLLO"),
    ("'a-b-c'.replace('-', '+')", "a+b+c"),
    ("'a-b-c'.replace('-', '+', 1)", "a+b-c"),
    ("'a-b-c'.replace('-', '+', 0)", "a-b-c"),
    ("'a@b@c'.split('@')", ["a", "b", "c"]),
    ("'a@b@c'.split('@', 2)", ["a", "b@c"]),
    ("'a@b@c'.split('@', 0)", []),
    ("'abc'.split('')", ["a", "b", "c"]),
    ("'hello'.substring(1)", "ello"),
    ("'hello'.substring(1, 3)", "el"),
    ("'hello'.substring(5)", ""),
    ("' \\t x \\n'.trim()", "x"),
    ("['a', 'b'].join('-')", "a-b"),
    ("['a', 'b'].join()", "ab"),
    ("[].join(',')", ""),
    ("'abc'.reverse()", "cba"),
    ("strings.quote('a\"b\\n')", '"a\\"b\\n"'),
])
def test_string_functions(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr", [
    "'hello'.charAt(6)",
    "'hello'.charAt(-1)",
    "'hello'.indexOf('l', 10)",
    "'hello'.substring(3, 1)",
    "'hello'.substring(0, 9)",
])
def test_string_index_errors_are_evaluation_errors(expr):
    assert not ev_error(expr).unsupported


def test_string_function_on_wrong_type_is_unsupported_overload():
    err = ev_error("x.lowerAscii()", x=5)
    assert err.unsupported and "lowerAscii" in err.message
    assert ev_error("[1, 2].join(',')").unsupported


@pytest.mark.parametrize("expr, expected", [
    ("'%s is %d and %.2f%%'.format(['x', 3, 1.5])", "x is 3 and 1.50%"),
    ("'%f'.format([1.0])", "1.000000"),
    ("'%e'.format([1234.5])", "1.234500e+03"),
    ("'%x %X %o %b'.format([255, 255, 8, 5])", "ff FF 10 101"),
    ("'%x'.format(['hi'])", "6869"),
    ("'%s'.format([[1, 'a']])", "[1, a]"),
    ("'%s %s %s'.format([true, null, 2.5])", "true null 2.5"),
    ("'no verbs'.format([])", "no verbs"),
])
def test_format(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr", ["'%d'.format(['x'])", "'%s %s'.format(['x'])", "'%s'.format(['a', 'b'])"])
def test_format_errors(expr):
    assert not ev_error(expr).unsupported


# --- regex library ----------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("'karpenter.sh/nodepool'.find('^([^/]+)')", "karpenter.sh"),
    ("'no-slash'.find('^([^/]+)')", "no-slash"),
    ("'abc'.find('z')", ""),
    ("'a1b22c333'.findAll('[0-9]+')", ["1", "22", "333"]),
    ("'a1b22c333'.findAll('[0-9]+', 2)", ["1", "22"]),
    ("'a1b22c333'.findAll('[0-9]+', 0)", []),
    ("'abc'.findAll('z')", []),
    ("'abc'.find('[[:alpha:]]+\\\\z')", "abc"),      # RE2 POSIX class and \z
    ("'a.b'.find('\\\\Q.\\\\E')", "."),             # RE2 \Q...\E literal
    ("'ab12'.find('(?<digits>[0-9]+)')", "12"),      # RE2 named group syntax
])
def test_regex(expr, expected):
    assert ev(expr) == expected


def test_regex_syntax_python_lacks_is_unsupported():
    assert ev_error("'abc'.find('\\\\pL')").unsupported


def test_native_matches_still_works():
    assert ev("'al2023@v1'.matches('^[a-zA-Z0-9]+@.+$')") is True


# --- URL library ------------------------------------------------------------------------------

U = "url('https://user@example.com:8443/a%20b/c?x=1&x=2&y=#frag')"


@pytest.mark.parametrize("expr, expected", [
    (f"{U}.getScheme()", "https"),
    (f"{U}.getHost()", "example.com:8443"),
    (f"{U}.getHostname()", "example.com"),
    (f"{U}.getPort()", "8443"),
    (f"{U}.getEscapedPath()", "/a%20b/c"),
    (f"{U}.getQuery()", {"x": ["1", "2"], "y": [""]}),
    ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"),
    ("url('HTTP://example.com').getScheme()", "http"),
    ("url('https://example.com').getPort()", ""),
    ("url('/absolute/path').getEscapedPath()", "/absolute/path"),
    ("url('mailto:someone@example.com').getScheme()", "mailto"),
    ("isURL('https://example.com/x')", True),
    ("isURL('not a url')", False),
    ("isURL('relative/path')", False),
    ("isURL('https://exa mple.com/')", False),
    ("isURL('https://example.com:port/')", False),
    ("url('https://a.com/x') == url('https://a.com/x')", True),
])
def test_url(expr, expected):
    assert ev(expr) == expected


def test_url_parse_error_is_an_evaluation_error():
    err = ev_error("url('relative/path')")
    assert not err.unsupported and "URL parse error" in err.message


# --- quantity library -------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("1Gi", Fraction(2**30)),
    ("500m", Fraction(1, 2)),
    ("1.5", Fraction(3, 2)),
    ("2k", Fraction(2000)),
    ("1e3", Fraction(1000)),
    ("1E-3", Fraction(1, 1000)),
    ("-1Mi", Fraction(-(2**20))),
    ("+.5", Fraction(1, 2)),
    ("100n", Fraction(100, 10**9)),
    ("1.0000000001", Fraction(1_000_000_001, 10**9)),  # rounded up to nano precision
])
def test_parse_quantity(text, value):
    assert cel_ext.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1 Gi", "1Gb", "Gi", "1.2.3", "--1", "1e"])
def test_parse_quantity_rejects(text):
    with pytest.raises(ValueError):
        cel_ext.parse_quantity(text)


@pytest.mark.parametrize("expr, expected", [
    ("quantity('1Gi') == quantity('1024Mi')", True),
    ("quantity('1Gi') == quantity('1G')", False),
    ("quantity('1Gi').isGreaterThan(quantity('500Mi'))", True),
    ("quantity('500m').isLessThan(quantity('1'))", True),
    ("quantity('1').compareTo(quantity('1000m'))", 0),
    ("quantity('2').compareTo(quantity('1'))", 1),
    ("quantity('1.5').isInteger()", False),
    ("quantity('2k').isInteger()", True),
    ("quantity('2k').asInteger()", 2000),
    ("quantity('1.5').asApproximateFloat()", 1.5),
    ("quantity('-1').sign()", -1),
    ("quantity('0').sign()", 0),
    ("quantity('1Gi').add(quantity('1Gi')) == quantity('2Gi')", True),
    ("quantity('1').add(1).asInteger()", 2),
    ("quantity('5').sub(quantity('2')).compareTo(quantity('3'))", 0),
    ("quantity('5').sub(7).sign()", -1),
    ("isQuantity('1Gi')", True),
    ("isQuantity('1 Gi')", False),
])
def test_quantity(expr, expected):
    assert ev(expr) == expected


def test_quantity_errors():
    assert not ev_error("quantity('abc')").unsupported
    assert "cannot convert" in ev_error("quantity('1.5').asInteger()").message
    assert ev_error("quantity('1').isLessThan(semver('1.0.0'))").unsupported


# --- IP and CIDR libraries --------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("ip('192.168.0.1').family()", 4),
    ("ip('::1').family()", 6),
    ("ip('127.0.0.1').isLoopback()", True),
    ("ip('::1').isLoopback()", True),
    ("ip('10.0.0.1').isLoopback()", False),
    ("ip('0.0.0.0').isUnspecified()", True),
    ("ip('::').isUnspecified()", True),
    ("ip('fe80::1').isLinkLocalUnicast()", True),
    ("ip('169.254.1.1').isLinkLocalUnicast()", True),
    ("ip('224.0.0.1').isLinkLocalMulticast()", True),
    ("ip('224.0.1.1').isLinkLocalMulticast()", False),
    ("ip('ff02::1').isLinkLocalMulticast()", True),
    ("ip('10.0.0.1').isGlobalUnicast()", True),          # Go: private addresses are global unicast
    ("ip('2001:db8::1').isGlobalUnicast()", True),
    ("ip('255.255.255.255').isGlobalUnicast()", False),
    ("ip('224.0.0.1').isGlobalUnicast()", False),
    ("ip.isCanonical('2001:db8::1')", True),
    ("ip.isCanonical('2001:DB8::1')", False),
    ("ip.isCanonical('2001:db8:0:0:0:0:0:1')", False),
    ("isIP('1.2.3.4')", True),
    ("isIP('1.2.3')", False),
    ("isIP('01.2.3.4')", False),
    ("isIP('::ffff:1.2.3.4')", False),                  # IPv4-mapped IPv6 is rejected
    ("ip('1.2.3.4') == ip('1.2.3.4')", True),
    ("ip('2001:db8::1') == ip('2001:DB8:0::1')", True),
    ("cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))", True),
    ("cidr('10.0.0.0/8').containsIP('11.1.2.3')", False),
    ("cidr('10.0.0.0/8').containsIP('::1')", False),
    ("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')", True),
    ("cidr('10.0.0.0/16').containsCIDR(cidr('10.0.0.0/8'))", False),
    ("cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8')", True),
    ("cidr('10.1.2.3/8').ip() == ip('10.1.2.3')", True),
    ("cidr('10.1.2.3/8').prefixLength()", 8),
    ("cidr('2001:db8::/32').ip().family()", 6),
    ("isCIDR('10.0.0.0/33')", False),
    ("isCIDR('10.0.0.0/08')", False),
    ("isCIDR('::/0')", True),
    ("isCIDR('10.0.0.0')", False),
])
def test_ip_and_cidr(expr, expected):
    assert ev(expr) == expected


def test_ip_errors():
    assert "zone" in ev_error("ip('fe80::1%eth0')").message
    assert not ev_error("cidr('10.0.0.0/99')").unsupported
    assert ev_error("ip(5)").unsupported


# --- semver library ---------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("semver('1.2.3').major()", 1),
    ("semver('1.2.3').minor()", 2),
    ("semver('1.2.3').patch()", 3),
    ("semver('1.2.3').isLessThan(semver('1.10.0'))", True),
    ("semver('2.0.0').isGreaterThan(semver('1.99.99'))", True),
    ("semver('1.0.0-alpha').isLessThan(semver('1.0.0'))", True),
    ("semver('1.0.0-alpha.1').compareTo(semver('1.0.0-alpha.beta'))", -1),
    ("semver('1.0.0-beta.11').compareTo(semver('1.0.0-beta.2'))", 1),
    ("semver('1.0.0-rc.1').compareTo(semver('1.0.0-rc.1.0'))", -1),
    ("semver('1.0.0+b1') == semver('1.0.0+b2')", True),
    ("isSemver('1.2.3-rc.1+build.5')", True),
    ("isSemver('1.2')", False),
    ("isSemver('01.2.3')", False),
    ("isSemver('v1.2', true)", True),
    ("semver('v01.2', true).major()", 1),
])
def test_semver(expr, expected):
    assert ev(expr) == expected


# --- sets extension ---------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("sets.contains([1, 2, 3], [1, 2])", True),
    ("sets.contains([1, 2], [3])", False),
    ("sets.contains([1], [])", True),
    ("sets.contains([1], [1.0])", True),
    ("sets.contains([true], [1])", False),
    ("sets.equivalent([1, 2], [2, 1, 1])", True),
    ("sets.equivalent([1, 2], [1])", False),
    ("sets.intersects([1, 2], [2, 3])", True),
    ("sets.intersects([1], [])", False),
])
def test_sets(expr, expected):
    assert ev(expr) is expected


# --- core: size (code points), bool(), cel.bind -----------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("'héllo'.size()", 5),           # cel-rust alone says 6 (UTF-8 bytes)
    ("size('日本')", 2),
    ("b'ab'.size()", 2),
    ("[1, 2].size()", 2),
    ("{'a': 1}.size()", 1),
    ("size([]) == 0", True),
    ("bool('true')", True),
    ("bool('0')", False),
    ("cel.bind(x, 'ab', x + x)", "abab"),
    ("cel.bind(a, 2, cel.bind(b, a * 3, a + b))", 8),
])
def test_core(expr, expected):
    assert ev(expr) == expected


def test_size_on_unsized_value_is_unsupported_overload():
    assert ev_error("x.size()", x=3).unsupported


def test_bool_of_bad_string_is_evaluation_error():
    assert not ev_error("bool('maybe')").unsupported


# --- format library (named formats) ----------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("format.dns1123Label().validate('my-name').hasValue()", False),
    ("format.dns1123Label().validate('My_Name').hasValue()", True),
    ("format.dns1123Label().validate('a' + 'b'.lowerAscii()).hasValue()", False),
    ("format.dns1123Subdomain().validate('example.com').hasValue()", False),
    ("format.dns1035Label().validate('1abc').hasValue()", True),
    ("format.qualifiedName().validate('app.kubernetes.io/name').hasValue()", False),
    ("format.qualifiedName().validate('/name').hasValue()", True),
    ("format.labelValue().validate('').hasValue()", False),
    ("format.dns1123LabelPrefix().validate('gen-').hasValue()", False),
    ("format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()", False),
    ("format.byte().validate('aGVsbG8=').hasValue()", False),
    ("format.date().validate('2025-02-30').hasValue()", True),
    ("format.datetime().validate('2025-02-03T04:05:06Z').hasValue()", False),
    ("format.uri().validate('nope').value().size()", 1),
    ("format.named('dns1035Label').value().validate('abc').hasValue()", False),
    ("format.named('no-such-format').hasValue()", False),
])
def test_named_formats(expr, expected):
    assert ev(expr) == expected


def test_named_format_error_text():
    (msg,) = ev("format.dns1123Label().validate('My_Name').value()")
    assert "RFC 1123 label" in msg


# --- the library's native macros and string predicates (no extension needed) -----------------

@pytest.mark.parametrize("expr, expected", [
    ("[1, 2, 3].exists_one(x, x == 2)", True),
    ("[1, 2, 2].exists_one(x, x == 2)", False),
    ("[1, 2].all(x, x > 0)", True),
    ("[1, 2].exists(x, x > 1)", True),
    ("[1, 2, 3].filter(x, x > 1)", [2, 3]),
    ("[1, 2].map(x, x * 2)", [2, 4]),
    ("{'a': 1}.all(k, k == 'a')", True),
    ("has({'a': 1}.a)", True),
    ("'abc'.startsWith('ab') && 'abc'.endsWith('bc') && 'abc'.contains('b')", True),
    ("'abc'.matches('^a.c$')", True),
    ("'k' in {'k': 1} && 2 in [1, 2]", True),
    ("int('42') + 1", 43),
    ("duration('1h') > duration('59m')", True),
])
def test_native_functions(expr, expected):
    assert ev(expr) == expected


# --- helpers ----------------------------------------------------------------------------------

def test_cel_equal():
    eq = cel_ext.cel_equal
    assert eq(1, 1.0) and not eq(True, 1) and not eq("1", 1)
    assert eq([1, {"a": [2.0]}], [1.0, {"a": [2]}])
    assert not eq({"a": 1}, {"a": 1, "b": 2})
    assert eq(None, None) and not eq(None, 0)


def test_cel_compare():
    assert cel_ext.cel_compare(1, 2.5) == -1
    assert cel_ext.cel_compare("b", "a") == 1
    assert cel_ext.cel_compare(timedelta(seconds=1), timedelta(seconds=1)) == 0
    with pytest.raises(cel_ext.ExtError):
        cel_ext.cel_compare(1, "a")


def test_callbacks_never_raise_and_record_the_error():
    wrapped = cel_ext.FUNCTIONS["charAt"]
    cel_ext.reset_error()
    result = wrapped("abc", 9)
    assert type(result).__name__ == cel_ext.ERROR_MARKER_TYPE
    err = cel_ext.take_error()
    assert err is not None and not err.overload and "out of range" in err.message
    assert cel_ext.take_error() is None
    wrapped("abc")  # wrong arity -> overload error, still no exception
    assert cel_ext.take_error().overload


def test_errors_inside_or_are_absorbed_like_cel():
    assert ev("quantity('bad') == quantity('1') || true") is True
    assert ev("false && quantity('bad') == quantity('1')") is False


def test_every_registered_function_is_known_to_the_static_check():
    known = cel_ext.known_function_names()
    for name in cel_ext.FUNCTIONS:
        assert name.rsplit(".", 1)[-1] in known
