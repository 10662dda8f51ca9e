"""Fixtures for service tests: anyio on asyncio, and the fake OpenAI upstream on a real port."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
