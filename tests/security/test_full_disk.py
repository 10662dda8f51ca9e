"""A full disk (issue 12, defect 3): 507 not 500, nothing left half-written, deletes still work,
/health reports free space, and unreferenced files are swept at start-up and by `manage.py gc`.

The full disk is real: a small tmpfs mounted for the test (root only; skipped with the reason
where mounting is not allowed), filled with a plain file until the kernel says ENOSPC.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from config import Settings
from library.sweep import SWEEP_GRACE
from storage.space import RESERVE_NAME
from tests.conftest import make_settings, new_key, run_manage, temp_files
from tests.imagegen import noise_png, png, upload

DISK_BYTES = 24 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write one file until the disk is full; returns it (remove it to get the space back)."""
    filler = disk / "filler"
    chunk = b"\xff" * 65536
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError), filler.open("ab") as handle:  # the last partial pages
        for _ in range(64):
            handle.write(b"\xff" * 512)
            handle.flush()
    return filler


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def disk_settings(disk: Path) -> Settings:
    return make_settings(
        disk / "data",
        storage_reserve_bytes=512 * 1024,
        storage_degraded_free_bytes=4 * 1024 * 1024,
        rate_limit_per_minute=0,
    )


def test_a_full_disk_answers_507_keeps_nothing_and_deletes_still_work(small_disk: Path) -> None:
    settings = disk_settings(small_disk)
    app = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        assert upload(client, auth, png(1), png(2)).status_code == 201
        assert (settings.data_dir / RESERVE_NAME).stat().st_size == 512 * 1024
        healthy = client.get("/health").json()
        assert healthy["storage"] == "ok" and healthy["storage_free_bytes"] > 4 * 1024 * 1024
        images_before = files_under(settings.images_dir)

        filler = fill(small_disk)
        health = client.get("/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["status"] == "degraded" and body["storage"] == "degraded"
        assert body["storage_free_bytes"] < 4 * 1024 * 1024

        for blob in (noise_png((300, 300)), png(3)):
            refused = upload(client, auth, blob)
            assert refused.status_code == 507, refused.text
            assert refused.json()["error"]["code"] == "insufficient_storage"
            assert "Traceback" not in refused.text
        assert files_under(settings.images_dir) == images_before  # nothing half-written
        assert temp_files(settings) == []
        assert client.get("/images", headers=auth).json()["total"] == 2

        # Deletes work on the full disk, and free the space they should.
        assert client.delete("/images/0", headers=auth).status_code == 204
        assert client.get("/images", headers=auth).json()["total"] == 1
        assert len(files_under(settings.images_dir)) == len(images_before) - 2

        filler.unlink()
        assert upload(client, auth, png(3)).status_code == 201
        client.get("/health")  # with room again the reserve is made again
        assert (settings.data_dir / RESERVE_NAME).exists()


def test_files_of_a_failed_insert_are_removed(small_disk: Path) -> None:
    """The files are written, then the database refuses the rows: no orphan stays behind."""
    settings = disk_settings(small_disk)
    app = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        assert upload(client, auth, png(1)).status_code == 201
        before = files_under(settings.images_dir)
        # Leave room for the image files but not for the database to grow: SQLite's WAL is
        # checkpointed and truncated here, so the insert needs fresh pages.
        with app.state.runtime.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill(small_disk)
        blob = png(7, (40, 30))
        filler_size = filler.stat().st_size
        os.truncate(filler, filler_size - 40 * 1024)  # ~40 kB free: the files fit, barely
        response = upload(client, auth, blob)
        filler.unlink()
        if response.status_code == 201:
            pytest.skip("the database found room for the insert on this filesystem")
        assert response.status_code == 507, response.text
        assert files_under(settings.images_dir) == before


def _age(*paths: Path) -> None:
    """Make files look older than the sweep's grace period (library/sweep.py)."""
    old = time.time() - SWEEP_GRACE.total_seconds() - 60
    for path in paths:
        os.utime(path, (old, old))


def test_start_up_and_manage_gc_sweep_files_no_row_names(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        upload(client, auth, png(1))
        kept = files_under(settings.images_dir)
    orphan = settings.images_dir / "originals" / "ab" / "cd" / ("ab" * 32 + ".png")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(png(9))
    thumb = settings.images_dir / "thumbs" / "ab" / "cd" / ("ab" * 32 + ".webp")
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(b"x")
    # Another process may have just written a file whose row it is inserting: young files stay.
    fresh = settings.images_dir / "originals" / "cd" / "ef" / ("cd" * 32 + ".png")
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(png(8))
    _age(orphan, thumb)

    done = run_manage(settings.data_dir, "gc", SECRET_KEY="test-secret-key")
    assert done.returncode == 0, done.stderr
    assert "removed 2 unreferenced file(s)" in done.stdout
    assert files_under(settings.images_dir) == kept | {str(fresh.relative_to(settings.images_dir))}

    fresh.unlink()
    orphan.write_bytes(png(9))
    _age(orphan)
    with TestClient(create_app(settings)) as client:
        assert files_under(settings.images_dir) == kept
        assert client.get("/images/0/file", headers=auth).status_code == 200
