"""Book tests (illustration batches: generation, quota, idempotency) run on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import DB_KINDS, both_databases

db_kind = pytest.fixture(params=DB_KINDS, name="db_kind")(both_databases)
