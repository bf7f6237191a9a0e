"""The one rule for which addresses a node may reach: used by the guarded client on every connection and by
everything that judges a host before fetching (DID resolution, ``peer add``).

Refused: loopback, private, link-local, CGNAT, multicast, reserved and unspecified addresses, also when they hide
inside IPv6 (IPv4-mapped, 6to4, Teredo, NAT64), and the ``localhost`` names.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local, CGNAT, multicast,
    reserved, unspecified, and IPv6 forms that stand for a refused IPv4 address (mapped, NAT64, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
        if ip.teredo is not None and not is_public_address(ip.teredo[1]):
            return False
        if ip in _SITE_LOCAL or ip.scope_id:
            return False
    elif ip in _CGNAT:
        return False
    flags = (ip.is_loopback, ip.is_private, ip.is_link_local, ip.is_multicast, ip.is_unspecified, ip.is_reserved)
    return not any(flags) and ip.is_global


def host_name(host: str) -> str:
    """The name or address of ``host[:port]`` (IPv6 literals in brackets or bare)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_private_host(host: str) -> bool:
    """True when ``host[:port]`` is a ``localhost`` name or a literal address that :func:`is_public_address`
    refuses. A DNS name is judged only when connecting (its addresses may change), so it is not private here."""
    name = host_name(host).lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return not is_public_address(address)
