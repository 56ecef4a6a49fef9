"""Kubernetes CEL extension functions for the `cel` package (cel-rust).

The apiserver evaluates CRD rules with cel-go plus Kubernetes' own libraries. cel-rust natively
supports the core language (macros ``has``/``all``/``exists``/``exists_one``/``map``/``filter``,
conversions, ``size``, ``contains``/``startsWith``/``endsWith``/``matches``, timestamps, durations,
``optional.of``/``none``/``orValue``/``hasValue``/``value``/``or``). Everything else a CRD rule may
call is implemented here as a plain Python function and registered on a ``cel.Context``. Because
CEL treats ``x.f(a)`` as ``f(x, a)``, each function serves both the receiver and the global form.

Libraries covered (names as in the Kubernetes CEL documentation):

* lists:   ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``
* strings: ``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``,
  ``split``, ``substring``, ``trim``, ``join``, ``reverse``, ``strings.quote``, ``format``
* regex:   ``find``, ``findAll``
* URLs:    ``url``, ``isURL``, ``getScheme``, ``getHost``, ``getHostname``, ``getPort``,
  ``getEscapedPath``, ``getQuery``
* quantity: ``quantity``, ``isQuantity``, ``sign``, ``isInteger``, ``asInteger``,
  ``asApproximateFloat``, ``add``, ``sub``, ``isLessThan``, ``isGreaterThan``, ``compareTo``
* IP/CIDR: ``ip``, ``isIP``, ``ip.isCanonical``, ``family``, ``isUnspecified``, ``isLoopback``,
  ``isLinkLocalMulticast``, ``isLinkLocalUnicast``, ``isGlobalUnicast``, ``cidr``, ``isCIDR``,
  ``containsIP``, ``containsCIDR``, ``prefixLength``, ``masked``
* semver:  ``semver``, ``isSemver``, ``major``, ``minor``, ``patch`` (+ the comparisons above)
* sets:    ``sets.contains``, ``sets.equivalent``, ``sets.intersects``
* format:  ``format.dns1123Label()`` (and the other named formats), ``format.named(name)``,
  ``<format>.validate(string)``
* core:    ``bool(string)``, and ``_k8s_size`` (code-point ``size``; see ``cel_rewrite``)

Opaque Kubernetes types (Quantity, URL, IP, CIDR, Semver) cannot cross the Python/Rust boundary
as Python objects, so they are carried as single-entry maps ``{"@k8s.<kind>": <canonical>}``.
The payload is canonical (a reduced fraction for quantities, the normalized address for IPs), so
CEL's native ``==`` on two such values gives the library's semantic equality.

Errors: a Python exception inside a callback makes the library print to stderr, so callbacks
never raise. A failure is recorded in a thread-local slot and the callback returns an
unconvertible marker object; the library then aborts the evaluation (or absorbs the error in
``||``/``&&`` exactly as CEL does) and ``take_error()`` tells the caller what happened.
``ExtError.overload`` distinguishes type errors (no matching overload) from value errors
(invalid quantity, index out of range, ...).

Package layout (importing the package registers every function, in this order):

* ``registry``: ``ExtError``, the error marker, ``FUNCTIONS``, ``_register``, ``reset_error``,
  ``take_error``
* ``values``: value tagging (``_tagged``/``_tag_of``/``_untag``), ``cel_type_name``,
  ``cel_equal``, ``cel_compare`` and the argument checks
* ``core``, ``lists``, ``strings``, ``regex``, ``urls``, ``quantities``, ``semvers``, ``ip_cidr``,
  ``formats``, ``sets``: one module per library above
* ``names``: ``NATIVE_FUNCTIONS``, ``NAMESPACES``, ``TYPE_IDENTIFIERS``, ``known_function_names``
"""
from __future__ import annotations

# Import order is registration order (FUNCTIONS is an insertion-ordered dict): keep it. The names
# below re-export what the former single module `cel_ext.py` defined at top level.
from .registry import ERROR_MARKER_TYPE, FUNCTIONS, ExtError, reset_error, take_error
from .values import cel_compare, cel_equal, cel_type_name  # noqa: F401
from .core import k8s_size, to_bool  # noqa: F401
from .lists import index_of, is_sorted, last_index_of, list_max, list_min, list_sum  # noqa: F401
from .strings import (  # noqa: F401
    char_at, join, lower_ascii, quote, replace, reverse, split, string_format, substring, trim,
    upper_ascii,
)
from .regex import regex_find, regex_find_all  # noqa: F401
from .urls import (  # noqa: F401
    get_escaped_path, get_host, get_hostname, get_port, get_query, get_scheme, is_url, url,
)
from .quantities import (  # noqa: F401
    as_approximate_float, as_integer, compare_to, is_greater_than, is_integer, is_less_than,
    is_quantity, parse_quantity, q_add, q_sub, quantity, sign,
)
from .semvers import is_semver, semver, semver_major, semver_minor, semver_patch  # noqa: F401
from .ip_cidr import (  # noqa: F401
    IPAddr, cidr, cidr_contains_cidr, cidr_contains_ip, cidr_masked, cidr_prefix_length, ip,
    ip_family, ip_is_canonical, ip_is_global_unicast, ip_is_link_local_multicast,
    ip_is_link_local_unicast, ip_is_loopback, ip_is_unspecified, is_cidr, is_ip,
)
from .formats import format_named, format_validate  # noqa: F401
from .sets import sets_contains, sets_equivalent, sets_intersects  # noqa: F401
from .names import NAMESPACES, NATIVE_FUNCTIONS, TYPE_IDENTIFIERS, known_function_names  # noqa: F401

__all__ = [
    "ExtError",
    "ERROR_MARKER_TYPE",
    "FUNCTIONS",
    "NATIVE_FUNCTIONS",
    "NAMESPACES",
    "TYPE_IDENTIFIERS",
    "cel_equal",
    "cel_compare",
    "parse_quantity",
    "reset_error",
    "take_error",
]
