"""Fetch an image from a URL an author gave us, without letting that URL reach our own network.

A URL from outside is an SSRF risk: `http://169.254.169.254/` reads cloud credentials,
`http://localhost:6379/` talks to a local Redis, and a public name can resolve (or re-resolve
a second later, "DNS rebinding") to a private address. So, for every hop:

- only http and https, only ports given by the URL (no userinfo tricks);
- the name is resolved ONCE by an injectable resolver, every address it gives is checked
  (loopback, private, link-local and metadata, multicast, reserved, unspecified, shared; IPv6
  and IPv4-mapped/NAT64/6to4 forms included), and the connection is made to that checked
  address by a network backend that ignores the name (TLS still verifies the name via SNI);
- redirects are followed by hand (at most `MAX_REDIRECTS`), each target checked the same way;
- one total deadline covers resolving, connecting, every hop and the whole body, so a server
  dripping a byte a second cannot hold a worker; the size cap is counted while streaming;
- the first bytes must sniff as PNG, JPEG or WebP before the rest is read.

`URL_IMPORT_ALLOW_HOSTS` names host:port pairs an operator trusts (an intranet, the tests):
those skip the address check only, nothing else. Every refusal is an `InvalidInput` (422)
naming the caller's field and saying why.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import anyio
import httpcore2

from errors import InvalidInput
from storage.imaging import sniff_format

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SNIFF_BYTES = 12
USER_AGENT = "Storyloom-URL-import/1"
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses to consider, as strings. Called once per hop; never again for it.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Addresses that are "global" by the registry but still reach the provider's own services.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo in a worker thread)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class FetchedImage:
    url: str  # the final URL, after redirects
    data: bytes
    format: str  # as sniffed: png | jpeg | webp


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may do; built from settings, passed down as plain data."""

    max_bytes: int
    timeout_seconds: float
    allow_hosts: frozenset[tuple[str, int]] = frozenset()

    @staticmethod
    def parse_allow_hosts(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
        """ "host:port" strings (IPv6 as "[::1]:8080") to lowercase (host, port) pairs."""
        pairs: set[tuple[str, int]] = set()
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            host, sep, port = entry.rpartition(":")
            if not sep or not port.isdigit() or not host:
                raise ValueError(f"URL_IMPORT_ALLOW_HOSTS entry {entry!r} is not host:port")
            pairs.add((host.strip("[]").lower(), int(port)))
        return frozenset(pairs)


def _refuse(message: str, field: str, code: str) -> InvalidInput:
    return InvalidInput(message, field=field, code=code)


def address_problem(address: IPAddress) -> str | None:
    """Why we must not connect to `address`, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (IPv4 inside an IPv6 address)" if problem else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # lowercase, without IPv6 brackets
    port: int


def _parse(url: str, field: str) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _refuse(f"the URL is malformed: {exc}", field, "url_invalid") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse("only http and https URLs can be imported", field, "url_scheme")
    if parts.username is not None or parts.password is not None:
        raise _refuse("URLs with a user name or password are not imported", field, "url_invalid")
    if not url.isascii():
        raise _refuse(
            "the URL must be ASCII (punycode the host, percent-encode the path)", field, "url_invalid"
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise _refuse("the URL has no host", field, "url_invalid")
    return _Target(url.strip(), scheme, host, port or DEFAULT_PORTS[scheme])


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _pick_address(target: _Target, policy: FetchPolicy, resolver: Resolver, field: str) -> str:
    """Resolve once and check every answer; the connection goes to the first one."""
    literal = _literal(target.host)
    if literal is not None:
        candidates: Sequence[str] = [str(literal)]
    else:
        try:
            candidates = await resolver(target.host, target.port)
        except OSError as exc:
            raise _refuse(
                f"the host {target.host!r} could not be resolved ({exc})", field, "url_dns"
            ) from None
    addresses: list[IPAddress] = []
    for text in candidates:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise _refuse(f"the host {target.host!r} resolved to {text!r}", field, "url_dns") from None
    if not addresses:
        raise _refuse(f"the host {target.host!r} has no address", field, "url_dns")
    if (target.host, target.port) not in policy.allow_hosts:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                raise _refuse(
                    f"the URL's host {target.host!r} is {problem} ({address}); only public addresses "
                    "can be imported from",
                    field,
                    "url_forbidden_address",
                )
    return str(addresses[0])


class _PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Connects to the one address already checked, whatever name the URL carries (no rebinding)."""

    def __init__(self, address: str, port: int) -> None:
        self._address = address
        self._port = port
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            self._address,
            self._port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are never used for URL imports")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


_TLS = ssl.create_default_context()


async def _one_hop(
    target: _Target, address: str, policy: FetchPolicy, field: str
) -> tuple[str | None, bytes | None]:
    """GET one URL from `address`: (redirect location, None) or (None, the checked body)."""
    # httpcore2 adds Host from the URL itself, so the name (not the address) goes out as Host and SNI.
    headers = [
        (b"User-Agent", USER_AGENT.encode()),
        (b"Accept", b"image/png, image/jpeg, image/webp"),
        (b"Accept-Encoding", b"identity"),
    ]
    async with (
        httpcore2.AsyncConnectionPool(
            ssl_context=_TLS,
            network_backend=_PinnedBackend(address, target.port),
            max_connections=1,
            retries=0,
        ) as pool,
        pool.stream("GET", target.url, headers=headers) as response,
    ):
        status = response.status
        if status in REDIRECT_STATUSES:
            location = _header(response.headers, b"location")
            if not location:
                raise _refuse(f"the server answered {status} without a Location", field, "url_http_error")
            return urljoin(target.url, location), None
        if not 200 <= status < 300:
            raise _refuse(f"the server answered HTTP {status}", field, "url_http_error")
        declared = _header(response.headers, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
            raise _too_large(policy, field)
        body = bytearray()
        async for chunk in response.aiter_stream():
            body.extend(chunk)
            if len(body) > policy.max_bytes:
                raise _too_large(policy, field)
            if len(body) >= SNIFF_BYTES and len(body) - len(chunk) < SNIFF_BYTES:
                _check_sniff(bytes(body), field)
        _check_sniff(bytes(body), field)
        return None, bytes(body)


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _too_large(policy: FetchPolicy, field: str) -> InvalidInput:
    return _refuse(
        f"the image at the URL is over the limit of {policy.max_bytes:,} bytes", field, "url_too_large"
    )


def _check_sniff(head: bytes, field: str) -> None:
    if sniff_format(head) is None:
        raise _refuse("the URL does not point to a PNG, JPEG or WebP image", field, "url_not_image")


async def fetch_image(
    url: str, policy: FetchPolicy, resolver: Resolver, *, field: str = "url"
) -> FetchedImage:
    """Download one image from `url` under `policy`; every refusal is a 422 naming `field`."""
    target = _parse(url, field)
    try:
        with anyio.fail_after(policy.timeout_seconds):
            for _ in range(MAX_REDIRECTS + 1):
                address = await _pick_address(target, policy, resolver, field)
                location, body = await _one_hop(target, address, policy, field)
                if body is not None:
                    fmt = sniff_format(body)
                    assert fmt is not None  # _one_hop checked it
                    return FetchedImage(url=target.url, data=body, format=fmt)
                assert location is not None
                target = _parse(location, field)
    except TimeoutError:
        raise _refuse(
            f"the URL did not deliver its image within {policy.timeout_seconds:g} seconds",
            field,
            "url_timeout",
        ) from None
    except httpcore2.TimeoutException:
        raise _refuse("the URL's server timed out", field, "url_timeout") from None
    except (httpcore2.NetworkError, httpcore2.ProtocolError, ssl.SSLError, OSError) as exc:
        raise _refuse(
            f"the URL could not be fetched ({type(exc).__name__})", field, "url_unreachable"
        ) from None
    raise _refuse(f"the URL redirects more than {MAX_REDIRECTS} times", field, "url_too_many_redirects")
