"""How the gateway names a peer in logs and replies, and reads its address."""

from __future__ import annotations

import ipaddress
from typing import Any


def peer_host(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer or "unknown")


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def shown(text: str) -> str:
    # Text echoed in a reply or a log must be encodable: aiosmtpd keeps undecodable bytes as
    # lone surrogates, which would make the reply itself fail.
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")
