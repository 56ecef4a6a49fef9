"""IP and CIDR libraries: ``ip``, ``isIP``, ``ip.isCanonical``, ``family``, ``isUnspecified``,
``isLoopback``, ``isLinkLocalMulticast``, ``isLinkLocalUnicast``, ``isGlobalUnicast``, ``cidr``,
``isCIDR``, ``containsIP``, ``containsCIDR``, ``prefixLength``, ``masked``.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from .registry import _register
from .values import _accepts, _need, _tagged, _untag


IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(s: str) -> IPAddr:
    if "%" in s:
        raise ValueError(f"IP address with zone value is not allowed: {s!r}")
    try:
        addr = ipaddress.ip_address(s)
    except ValueError as exc:
        raise ValueError(f"IP Address {s!r} parse error during conversion from string: {exc}") from None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address is not allowed: {s!r}")
    return addr


def _parse_cidr(s: str) -> tuple[IPAddr, int]:
    addr_text, slash, bits_text = s.partition("/")
    if not slash or not re.fullmatch(r"0|[1-9]\d{0,2}", bits_text):
        raise ValueError(f"network address parse error during conversion from string: invalid CIDR {s!r}")
    addr = _parse_ip(addr_text)
    bits = int(bits_text)
    if bits > addr.max_prefixlen:
        raise ValueError(f"network address parse error during conversion from string: prefix length {bits} too large for IPv{addr.version}")
    return addr, bits


def _ip_of(v: Any, fn: str) -> IPAddr:
    return ipaddress.ip_address(_untag(v, "ip", fn))


def _cidr_of(v: Any, fn: str) -> tuple[IPAddr, int]:
    addr_text, _, bits = _untag(v, "cidr", fn).partition("/")
    return ipaddress.ip_address(addr_text), int(bits)


@_register("ip")
def ip(value: Any) -> dict[str, Any]:
    """`ip(string)` parses an address; `cidr.ip()` returns a prefix's address."""
    if isinstance(value, str):
        return _tagged("ip", str(_parse_ip(value)))
    addr, _ = _cidr_of(value, "ip")
    return _tagged("ip", str(addr))


is_ip = _register("isIP")(_accepts("isIP", _parse_ip))


@_register("ip.isCanonical")
def ip_is_canonical(s: Any) -> bool:
    _need(s, str, "ip.isCanonical")
    return str(_parse_ip(s)) == s


@_register("family")
def ip_family(v: Any) -> int:
    return _ip_of(v, "family").version


@_register("isUnspecified")
def ip_is_unspecified(v: Any) -> bool:
    return _ip_of(v, "isUnspecified").is_unspecified


@_register("isLoopback")
def ip_is_loopback(v: Any) -> bool:
    addr = _ip_of(v, "isLoopback")
    return addr in _V4_LOOPBACK if addr.version == 4 else addr == ipaddress.IPv6Address("::1")


_V4_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_V4_LINK_LOCAL = ipaddress.ip_network("169.254.0.0/16")
_V6_LINK_LOCAL = ipaddress.ip_network("fe80::/10")
_V4_LL_MULTICAST = ipaddress.ip_network("224.0.0.0/24")
_V4_MULTICAST = ipaddress.ip_network("224.0.0.0/4")
_V6_MULTICAST = ipaddress.ip_network("ff00::/8")


@_register("isLinkLocalMulticast")
def ip_is_link_local_multicast(v: Any) -> bool:
    addr = _ip_of(v, "isLinkLocalMulticast")
    if addr.version == 4:
        return addr in _V4_LL_MULTICAST
    return (int(addr) >> 112) & 0xFF0F == 0xFF02


@_register("isLinkLocalUnicast")
def ip_is_link_local_unicast(v: Any) -> bool:
    addr = _ip_of(v, "isLinkLocalUnicast")
    return addr in (_V4_LINK_LOCAL if addr.version == 4 else _V6_LINK_LOCAL)


@_register("isGlobalUnicast")
def ip_is_global_unicast(v: Any) -> bool:
    """Go's netip definition: not unspecified/loopback/multicast/link-local (private is global)."""
    addr = _ip_of(v, "isGlobalUnicast")
    if addr.is_unspecified or ip_is_loopback(v):
        return False
    if addr.version == 4:
        return (addr != ipaddress.IPv4Address("255.255.255.255") and addr not in _V4_MULTICAST
                and addr not in _V4_LINK_LOCAL)
    return addr not in _V6_MULTICAST and addr not in _V6_LINK_LOCAL


@_register("cidr")
def cidr(s: Any) -> dict[str, Any]:
    _need(s, str, "cidr")
    addr, bits = _parse_cidr(s)
    return _tagged("cidr", f"{addr}/{bits}")


is_cidr = _register("isCIDR")(_accepts("isCIDR", _parse_cidr))


def _network(v: Any, fn: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    addr, bits = _cidr_of(v, fn)
    return ipaddress.ip_network(f"{addr}/{bits}", strict=False)


@_register("containsIP")
def cidr_contains_ip(c: Any, other: Any) -> bool:
    net = _network(c, "containsIP")
    addr = _parse_ip(other) if isinstance(other, str) else _ip_of(other, "containsIP")
    return addr.version == net.version and addr in net


@_register("containsCIDR")
def cidr_contains_cidr(c: Any, other: Any) -> bool:
    net = _network(c, "containsCIDR")
    if isinstance(other, str):
        addr, bits = _parse_cidr(other)
        sub = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    else:
        sub = _network(other, "containsCIDR")
    return sub.version == net.version and sub.prefixlen >= net.prefixlen and sub.network_address in net


@_register("prefixLength")
def cidr_prefix_length(c: Any) -> int:
    return _cidr_of(c, "prefixLength")[1]


@_register("masked")
def cidr_masked(c: Any) -> dict[str, Any]:
    net = _network(c, "masked")
    return _tagged("cidr", f"{net.network_address}/{net.prefixlen}")
