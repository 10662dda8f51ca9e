"""Settings a newcomer meets first: where `make run` serves, and the links answers carry."""

from __future__ import annotations

import pytest

from config import Settings


def test_links_follow_the_port_and_host_make_run_serves_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert Settings(_env_file=None).public_base_url == "http://127.0.0.1:8123"  # type: ignore[call-arg]
    monkeypatch.setenv("HOST", "192.168.1.20")
    assert Settings(_env_file=None).public_base_url == "http://192.168.1.20:8123"  # type: ignore[call-arg]
    # A wildcard bind is reached from this machine at the loopback address.
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert Settings(_env_file=None).public_base_url == "http://127.0.0.1:8123"  # type: ignore[call-arg]


def test_a_set_public_base_url_wins_over_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://books.example/")
    assert Settings(_env_file=None).public_base_url == "https://books.example"  # type: ignore[call-arg]


def test_defaults_serve_and_link_on_loopback_8000(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "HOST", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.host, settings.port, settings.public_base_url) == (
        "127.0.0.1",
        8000,
        "http://127.0.0.1:8000",
    )
