"""Fixtures shared by the API tests: they run on SQLite and on PostgreSQL (issue 13)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.cast import make_cast
from tests.conftest import DB_KINDS, both_databases

db_kind = pytest.fixture(params=DB_KINDS, name="db_kind")(both_databases)


@pytest.fixture
def cast(client: TestClient, auth: dict[str, str]) -> dict[str, int]:
    """Mia (images 0, 1) and Otto (image 2); ids by lower-case name."""
    return make_cast(client, auth)
