"""The library's file tests run on both blob stores: local files and S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import pytest

from tests.conftest import BLOB_KINDS


@pytest.fixture(params=BLOB_KINDS)
def blob_kind(request: pytest.FixtureRequest) -> str:
    return request.param
