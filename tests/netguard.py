"""A hard stop for tests that exercise the SSRF guard: no packet may leave loopback, whatever our code does.

A process-wide audit hook (PEP 578) sees every `socket.connect`, `connect_ex` and
`getaddrinfo` before it happens. While `loopback_only()` is active it raises for a TCP/UDP
connect to any non-loopback address and for a DNS lookup of any name but `localhost` or an
IP literal (a lookup sends a packet to the resolver). So a broken fetcher fails its test with
`NonLoopbackTraffic` instead of reaching 169.254.169.254 or the LAN.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class NonLoopbackTraffic(RuntimeError):
    pass


_active = [0]
_blocked: list[str] = []
_installed = [False]


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active[0]:
        return
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[-1]
        inet = getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6)
        if inet and isinstance(address, tuple) and not _is_loopback(address[0]):
            _blocked.append(f"{event} {address[0]}")
            raise NonLoopbackTraffic(f"test tried to reach {address[0]}")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is not None and not _is_loopback(host):
            _blocked.append(f"getaddrinfo {host}")
            raise NonLoopbackTraffic(f"test tried to resolve {host!r}")


@contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuse all non-loopback traffic inside the block; yields the list of refused attempts."""
    if not _installed[0]:
        sys.addaudithook(_hook)
        _installed[0] = True
    _blocked.clear()
    _active[0] += 1
    try:
        yield _blocked
    finally:
        _active[0] -= 1
