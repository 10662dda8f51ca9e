"""Fixtures shared by the API tests."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.cast import make_cast


@pytest.fixture
def cast(client: TestClient, auth: dict[str, str]) -> dict[str, int]:
    """Mia (images 0, 1) and Otto (image 2); ids by lower-case name."""
    return make_cast(client, auth)
