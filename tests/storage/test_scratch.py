"""Per-process temp folders: a start-up removes only the folders of processes that are gone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from api_server import create_app
from services.runtime import build_runtime
from storage.scratch import LOCK_SUFFIX, LOOSE_FILE_SECONDS, ProcessScratch, remove_abandoned
from tests.conftest import ROOT, make_settings, new_key
from tests.imagegen import png
from tests.servers import serve

CHILD = """
import sys
from pathlib import Path
from storage.scratch import ProcessScratch
scratch = ProcessScratch.claim(Path(sys.argv[1]))
(scratch.path / "upload-half-written").write_bytes(b"x" * 1000)
print(scratch.path, flush=True)
sys.stdin.read()  # holds the folder until killed
"""


def _wait_for(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_live_owners_keep_their_folders_and_a_killed_process_loses_its_own(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    mine, neighbour = ProcessScratch.claim(root), ProcessScratch.claim(root)  # two runtimes, one process
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        theirs = Path(child.stdout.readline().decode().strip())
        (mine.path / "upload-1").write_bytes(b"in flight")

        assert remove_abandoned(root) == 0  # every owner is alive
        assert theirs.is_dir() and (mine.path / "upload-1").is_file() and neighbour.path.is_dir()

        os.kill(child.pid, signal.SIGKILL)  # no clean-up code runs: only the kernel drops its lock
        child.wait()
        assert remove_abandoned(root) == 1
        assert not theirs.exists() and not Path(f"{theirs}{LOCK_SUFFIX}").exists()
        assert (mine.path / "upload-1").read_bytes() == b"in flight" and neighbour.path.is_dir()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.stdout.close()
    neighbour.release()
    assert not neighbour.path.exists() and mine.path.is_dir()
    mine.release()
    assert list(root.iterdir()) == []


def test_old_loose_files_and_folders_without_an_owner_go(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    live = ProcessScratch.claim(root)
    (root / "upload-from-an-older-version").write_bytes(b"x")
    (root / "health-probe").write_bytes(b"")
    old = time.time() - LOOSE_FILE_SECONDS - 60
    os.utime(root / "upload-from-an-older-version", (old, old))
    (root / "orphan-folder").mkdir()  # no lock file: its owner is gone
    assert remove_abandoned(root) == 2
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["health-probe", live.owner, f"{live.owner}{LOCK_SUFFIX}"]
    )
    live.release()


def _slow_body(release: threading.Event) -> Iterator[bytes]:
    """A multipart upload whose second half waits until the test lets it go."""
    boundary = "storyloom-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    data = png(1)
    yield head + data[: len(data) // 2]
    release.wait(timeout=60)
    yield data[len(data) // 2 :] + f"\r\n--{boundary}--\r\n".encode()


def test_a_second_runtime_starting_on_the_same_data_dir_leaves_an_in_flight_upload_alone(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)
    with serve(app) as base_url:
        key = new_key(app)
        scratch = app.state.runtime.scratch.path
        release = threading.Event()
        answer: list[httpx.Response] = []
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "multipart/form-data; boundary=storyloom-test",
        }

        def send() -> None:
            answer.append(httpx.post(f"{base_url}/images", headers=headers, content=_slow_body(release)))

        sender = threading.Thread(target=send)
        sender.start()
        try:
            _wait_for(lambda: any(p.name.startswith("upload-") for p in scratch.iterdir()))

            other = build_runtime(make_settings(tmp_path / "data"))  # a second process's start-up

            async def start_and_stop() -> None:
                await other.start()
                await other.stop()

            asyncio.run(start_and_stop())
            assert any(p.name.startswith("upload-") for p in scratch.iterdir())  # still there
        finally:
            release.set()
            sender.join(timeout=60)
        assert answer and answer[0].status_code == 201, answer[0].text if answer else "no answer"
        assert httpx.get(
            f"{base_url}/images/0/file", headers={"Authorization": f"Bearer {key}"}
        ).content == png(1)
