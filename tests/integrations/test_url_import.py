"""URL imports and the SSRF guard, over real HTTP on 127.0.0.1 only.

Every test here runs under `tests.netguard.loopback_only`: an audit hook that refuses any
connect or DNS lookup off loopback, so even a broken guard could not send a packet to
169.254.169.254 or the LAN. Refusals of private/metadata/link-local addresses are checked on
the address itself through a stub resolver that maps test names to those addresses without
connecting anywhere; live refusals use loopback ports that are not on the allow list.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from library.fetcher import FetchPolicy, address_problem, fetch_image
from tests.conftest import make_settings, new_key
from tests.image_host import ImageHost
from tests.imagegen import png
from tests.netguard import NonLoopbackTraffic, loopback_only
from tests.servers import serve

STUB_ADDRESSES: dict[str, list[str]] = {
    "metadata.test": ["169.254.169.254"],
    "intranet.test": ["10.1.2.3"],
    "home.test": ["192.168.1.1"],
    "linklocal.test": ["169.254.10.10"],
    "v6linklocal.test": ["fe80::1"],
    "v6private.test": ["fd12:3456::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "mappedmeta.test": ["::ffff:169.254.169.254"],
    "v6loop.test": ["::1"],
    "multicast.test": ["224.0.0.251"],
    "v6multicast.test": ["ff02::1"],
    "reserved.test": ["240.0.0.1"],
    "unspecified.test": ["0.0.0.0"],
    "shared.test": ["100.64.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "mixed.test": ["93.184.215.14", "10.0.0.1"],
}


class StubResolver:
    """Answers from a table and remembers every question; never touches the network."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"stub resolver: unknown name {host}")
        return self.table[host]


@pytest.fixture(autouse=True)
def no_traffic_off_loopback() -> Iterator[list[str]]:
    with loopback_only() as blocked:
        yield blocked
    assert blocked == [], f"non-loopback traffic was attempted: {blocked}"


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[ImageHost, str, ImageHost, str]]:
    """Two picture sites: `allowed` (on the allow list) and `other` (a loopback port that is not)."""
    allowed, other = ImageHost(), ImageHost(png(8))
    with serve(allowed, lifespan="off") as allowed_url, serve(other, lifespan="off") as other_url:
        yield allowed, allowed_url, other, other_url
        allowed.stopped.set()
        other.stopped.set()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def site(hosts: tuple[ImageHost, str, ImageHost, str]) -> tuple[ImageHost, str, ImageHost, str]:
    for host in (hosts[0], hosts[2]):
        host.hits.clear()
        host.endless_sent = 0
    return hosts


@pytest.fixture
def resolver(site: tuple[ImageHost, str, ImageHost, str]) -> StubResolver:
    return StubResolver({**STUB_ADDRESSES, "pics.test": ["127.0.0.1"]})


@pytest.fixture
def client_factory(
    tmp_path: Path, site: tuple[ImageHost, str, ImageHost, str], resolver: StubResolver
) -> Iterator[Callable[..., tuple[TestClient, dict[str, str]]]]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> tuple[TestClient, dict[str, str]]:
        allowed_port = _port(site[1])
        values: dict[str, Any] = {
            "url_import_allow_hosts": [f"127.0.0.1:{allowed_port}", f"pics.test:{allowed_port}"],
            "url_import_timeout_seconds": 5.0,
        }
        values.update(overrides)
        app = create_app(make_settings(tmp_path / f"data{len(clients)}", **values))
        app.state.runtime.url_resolver = resolver
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client, {"Authorization": f"Bearer {new_key(app)}"}

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def _error(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::", "metadata"),
    ],
)
def test_address_classes_are_refused(address: str, reason: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None and reason in problem


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("name", sorted(STUB_ADDRESSES))
def test_names_resolving_to_forbidden_addresses_are_refused_before_connecting(
    name: str, client_factory: Callable[..., tuple[TestClient, dict[str, str]]], resolver: StubResolver
) -> None:
    client, auth = client_factory()
    error = _error(client.post("/images/import", headers=auth, json={"url": f"http://{name}/cat.png"}))
    assert error["field"] == "url" and error["code"] == "url_forbidden_address"
    assert name in error["message"] and "address" in error["message"]
    assert resolver.calls == [(name, 80)]  # resolved once, then refused: nothing was connected


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1%25eth0]/x.png",
        "https://10.0.0.1/x.png",
        "http://0.0.0.0:8080/x.png",
    ],
)
def test_literal_forbidden_addresses_are_refused_without_dns(
    url: str, client_factory: Callable[..., tuple[TestClient, dict[str, str]]], resolver: StubResolver
) -> None:
    client, auth = client_factory()
    error = _error(client.post("/images/import", headers=auth, json={"url": url}))
    assert (error["field"], error["code"]) == ("url", "url_forbidden_address")
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "url_scheme"),
        ("ftp://example.test/x.png", "url_scheme"),
        ("gopher://example.test/", "url_scheme"),
        ("http://user:pw@example.test/x.png", "url_invalid"),
        ("http:///x.png", "url_invalid"),
        ("http://example.test:99999/x.png", "url_invalid"),
    ],
)
def test_bad_urls_are_refused(
    url: str, code: str, client_factory: Callable[..., tuple[TestClient, dict[str, str]]]
) -> None:
    client, auth = client_factory()
    error = _error(client.post("/images/import", headers=auth, json={"url": url}))
    assert (error["field"], error["code"]) == ("url", code)


def test_live_loopback_port_outside_the_allow_list_is_refused(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    _, _, other, other_url = site
    client, auth = client_factory()
    for url in (f"{other_url}/pic.png", f"http://[::ffff:127.0.0.1]:{_port(other_url)}/pic.png"):
        error = _error(client.post("/images/import", headers=auth, json={"url": url}))
        assert error["code"] == "url_forbidden_address" and "loopback" in error["message"]
    assert other.hits == []


def test_allowed_host_imports_like_an_upload_and_deduplicates(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    allowed, allowed_url, _, _ = site
    client, auth = client_factory()
    first = client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/pic.png"})
    assert first.status_code == 201, first.text
    image = first.json()["images"][0]
    assert (image["number"], image["kind"], image["format"], image["duplicate"]) == (
        0,
        "upload",
        "png",
        False,
    )
    again = client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/pic.png"})
    assert again.status_code == 200 and again.json()["images"][0]["number"] == 0
    assert again.json()["images"][0]["duplicate"] is True
    # The same bytes uploaded by hand are that same image too.
    upload = client.post("/images", headers=auth, files=[("files", ("p.png", allowed.picture, "image/png"))])
    assert upload.status_code == 200 and upload.json()["images"][0]["number"] == 0


def test_connection_goes_to_the_address_resolved_once(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
    resolver: StubResolver,
) -> None:
    allowed, allowed_url, _, _ = site
    client, auth = client_factory()
    port = _port(allowed_url)
    response = client.post("/images/import", headers=auth, json={"url": f"http://pics.test:{port}/pic.png"})
    assert response.status_code == 201, response.text
    # The name went out as Host (so virtual hosts and TLS SNI work), the packets to the stub's address.
    assert allowed.hits == [("/pic.png", f"pics.test:{port}")]
    assert resolver.calls == [("pics.test", port)]


def test_redirect_to_loopback_is_refused(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    allowed, allowed_url, other, other_url = site
    client, auth = client_factory()
    for target in (f"{other_url}/pic.png", "http://metadata.test/latest/", "http://127.0.0.1:1/x.png"):
        url = f"{allowed_url}/redirect?to={target}"
        error = _error(client.post("/images/import", headers=auth, json={"url": url}))
        assert error["code"] == "url_forbidden_address" and error["field"] == "url"
    assert [path for path, _ in allowed.hits] == ["/redirect"] * 3
    assert other.hits == []


def test_redirects_are_followed_at_most_three_times(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    _, allowed_url, _, _ = site
    client, auth = client_factory()
    url = f"{allowed_url}/pic.png"
    for _ in range(3):
        url = f"{allowed_url}/redirect?to={url.replace('&', '%26').replace('?', '%3F').replace('=', '%3D')}"
    three = client.post("/images/import", headers=auth, json={"url": url})
    assert three.status_code == 201, three.text
    four = f"{allowed_url}/redirect?to={url.replace('%', '%25').replace('?', '%3F').replace('=', '%3D')}"
    error = _error(client.post("/images/import", headers=auth, json={"url": four}))
    assert error["code"] == "url_too_many_redirects"


def test_slow_drip_hits_the_total_timeout(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    _, allowed_url, _, _ = site
    # Every byte arrives within 50 ms, so only a deadline for the whole fetch can stop it.
    client, auth = client_factory(url_import_timeout_seconds=0.5)
    error = _error(client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/drip"}))
    assert error["code"] == "url_timeout" and "0.5 seconds" in error["message"]


def test_oversize_body_is_stopped_while_streaming(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    allowed, allowed_url, _, _ = site
    client, auth = client_factory(max_upload_bytes=256 * 1024)
    error = _error(client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/endless"}))
    assert error["code"] == "url_too_large" and error["field"] == "url"
    # The server would have sent 256 MiB; the fetcher hung up long before (socket buffers aside).
    assert allowed.endless_sent < 64 * 1024 * 1024
    declared = _error(
        client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/declared-huge"})
    )
    assert declared["code"] == "url_too_large"


def test_content_is_sniffed(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    _, allowed_url, _, _ = site
    client, auth = client_factory()
    error = _error(client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/page.html"}))
    assert error["code"] == "url_not_image"
    missing = _error(client.post("/images/import", headers=auth, json={"url": f"{allowed_url}/nothing.png"}))
    assert missing["code"] == "url_http_error" and "404" in missing["message"]
    assert client.get("/images", headers=auth).json()["total"] == 0


def test_fetcher_alone_with_an_allowed_name(site: tuple[ImageHost, str, ImageHost, str]) -> None:
    allowed, allowed_url, _, _ = site
    port = _port(allowed_url)
    resolver = StubResolver({"pics.test": ["127.0.0.1"]})
    policy = FetchPolicy(max_bytes=1 << 20, timeout_seconds=5, allow_hosts=frozenset({("pics.test", port)}))
    fetched = anyio.run(fetch_image, f"http://pics.test:{port}/pic.png", policy, resolver)
    assert fetched.data == allowed.picture and fetched.format == "png"
    with pytest.raises(Exception) as refused:
        anyio.run(fetch_image, f"http://pics.test:{port + 1}/pic.png", policy, resolver)
    assert getattr(refused.value, "code", None) == "url_forbidden_address"


def test_the_net_guard_itself_stops_non_loopback_traffic(no_traffic_off_loopback: list[str]) -> None:
    """The safety net is real: a connect to a TEST-NET address is stopped before a packet leaves."""
    with pytest.raises(NonLoopbackTraffic):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(NonLoopbackTraffic):
        socket.getaddrinfo("example.com", 80)
    assert len(no_traffic_off_loopback) == 2
    no_traffic_off_loopback.clear()


def test_scene_references_from_url_base64_and_data_uri_become_library_numbers(
    site: tuple[ImageHost, str, ImageHost, str],
    client_factory: Callable[..., tuple[TestClient, dict[str, str]]],
) -> None:
    allowed, allowed_url, _, other_url = site
    client, auth = client_factory(rate_limit_per_minute=0, generations_per_minute=0)
    assert (
        client.post("/images", headers=auth, files=[("files", ("a.png", png(1), "image/png"))]).status_code
        == 201
    )
    inline = base64.b64encode(png(2)).decode()
    body = {
        "prompt": "Mia waves",
        "dry_run": True,
        "reference_images": [
            0,
            {"url": f"{allowed_url}/pic.png"},
            {"b64_json": inline},
            "data:image/png;base64," + base64.b64encode(png(3)).decode(),
        ],
    }
    preview = client.post("/generate-image", headers=auth, json=body)
    assert preview.status_code == 200, preview.text
    assert preview.json()["reference_images"] == [0, 1, 2, 3] and preview.json()["endpoint"] == "edit"
    # The same outside pictures again are the same library images (deduplicated like uploads).
    body["dry_run"] = False
    done = client.post("/generate-image", headers=auth, json=body)
    assert done.status_code == 200, done.text
    assert done.json()["reference_images"] == [0, 1, 2, 3] and done.json()["images"][0]["number"] == 4
    assert client.get("/images/1/file", headers=auth).content == allowed.picture

    refused = client.post(
        "/generate-image",
        headers=auth,
        json={"prompt": "x", "reference_images": [0, {"url": f"{other_url}/pic.png"}]},
    )
    assert _error(refused)["field"] == "reference_images.1.url"
    bad = client.post(
        "/generate-image", headers=auth, json={"prompt": "x", "reference_images": [{"b64_json": "@@"}]}
    )
    assert _error(bad)["field"] == "reference_images.0.b64_json"
    not_image = client.post(
        "/generate-image",
        headers=auth,
        json={
            "prompt": "x",
            "reference_images": ["data:image/png;base64," + base64.b64encode(b"hello").decode()],
        },
    )
    assert _error(not_image, 415)["field"] == "reference_images.0"
    assert client.get("/images", headers=auth).json()["total"] == 5
