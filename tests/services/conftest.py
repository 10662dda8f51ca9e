"""Fixtures for service tests: anyio on asyncio, and the fake OpenAI upstream on a real port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_openai import FakeOpenAI
from tests.servers import serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    """One fake per test module (starting uvicorn is the slow part); `fake` resets it per test."""
    fake = FakeOpenAI()
    with serve(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(fake_upstream: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    fake_upstream[0].reset()
    return fake_upstream[0]


@pytest.fixture
def openai_base_url(fake_upstream: tuple[FakeOpenAI, str]) -> str:
    return f"{fake_upstream[1]}/v1"
