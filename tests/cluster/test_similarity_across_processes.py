"""Each process's similarity index notices the other processes' writes (issue 13).

`SimilarityCache` keeps a copy of a workspace's hashes per process and compares the
workspace's `library_version` (bumped in the transaction of every insert and delete) before
using it. Two real API processes on one database: B's `/similar` answers and near-duplicate
detection must include what A just stored and drop what A just deleted, with B's copy warm.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.conftest import Proc, base_settings, make_key, prepare_database
from tests.conftest import DB_KINDS, postgres_database
from tests.imagegen import near_copy, png, upload

pytestmark = pytest.mark.multiprocess


def similar(client: object, number: int) -> list[int]:
    response = client.get(f"/images/{number}/similar")  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return [item["number"] for item in response.json()["items"]]


@pytest.mark.parametrize("db_kind", DB_KINDS)
def test_process_b_sees_what_process_a_stored_and_deleted(
    tmp_path: Path,
    db_kind: str,
    request: pytest.FixtureRequest,
    processes: tuple[Callable[..., Proc], Callable[..., Proc]],
) -> None:
    start_api, _ = processes
    database_url = None if db_kind == "sqlite" else postgres_database(request.getfixturevalue("postgres"))
    data_dir = tmp_path / "data"
    prepare_database(data_dir, database_url)
    settings = base_settings(data_dir, database_url, RATE_LIMIT_PER_MINUTE="0")
    a_proc, b_proc = start_api(settings), start_api(settings)
    key = make_key(database_url, data_dir)
    with a_proc.client(key) as a, b_proc.client(key) as b:
        assert upload(a, {}, png(1)).json()["images"][0]["number"] == 0
        assert similar(b, 0) == []  # B's index is now loaded and warm
        assert similar(a, 0) == []

        stored = upload(a, {}, near_copy(1)).json()["images"][0]
        assert (stored["number"], stored["similar_to"]) == (1, [0])
        assert similar(b, 0) == [1]  # B noticed A's insert

        # B's own near-duplicate detection sees A's image too; A then sees B's.
        third = upload(b, {}, png(1, size=(128, 96))).json()["images"][0]
        assert third["number"] == 2 and sorted(third["similar_to"]) == [0, 1]
        assert sorted(similar(a, 0)) == [1, 2]

        assert a.delete("/images/1").status_code == 204
        assert sorted(similar(b, 0)) == [2]  # and B stopped seeing the one A deleted
        fourth = upload(b, {}, near_copy(1)).json()["images"][0]
        assert fourth["number"] == 3 and sorted(fourth["similar_to"]) == [0, 2]
