"""Per-process scratch folders under `settings.tmp_dir`, and removing only those whose owner died.

Several processes (uvicorn workers, a rolling restart, hosts sharing one volume) use one
DATA_DIR. Wiping `tmp_dir` at start-up would delete another process's in-flight upload, so each
runtime owns `tmp_dir/<id>/` and holds an exclusive `flock` on `tmp_dir/<id>.lock` for its whole
life. The kernel drops that lock when the process dies however it dies (kill -9 included), so
a start-up that can take a folder's lock knows its owner is gone and removes it; a lock it
cannot take belongs to a live process (in this process or another) and is left alone.

The lock file is created and locked under a temp name and only then renamed to `<id>.lock`
(the lock follows the inode), and the folder is made after that: a sweeper never sees a folder
without its lock, nor a lock file that is not yet held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LOCK_SUFFIX = ".lock"
# Loose files directly in tmp_dir (an older version's temp files, a health probe, a claim that
# died between mkstemp and rename) are removed once this old: no live writer keeps one that long.
LOOSE_FILE_SECONDS = 3600


@dataclass
class ProcessScratch:
    """This runtime's own temp folder; `release()` removes it and lets go of the lock."""

    owner: str
    path: Path
    _fd: int | None = field(default=None, repr=False)

    @classmethod
    def claim(cls, root: Path) -> ProcessScratch:
        root.mkdir(parents=True, exist_ok=True)
        owner = f"p{os.getpid()}-{uuid.uuid4().hex[:12]}"
        fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".claim-")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.replace(tmp_name, root / f"{owner}{LOCK_SUFFIX}")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        path = root / owner
        path.mkdir()
        return cls(owner=owner, path=path, _fd=fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            shutil.rmtree(self.path, ignore_errors=True)
            with contextlib.suppress(OSError):  # gone, or tmp_dir was replaced under us
                (self.path.parent / f"{self.owner}{LOCK_SUFFIX}").unlink()
        finally:
            os.close(self._fd)
            self._fd = None


def _owner_alive(lock_path: Path) -> bool:
    """True while some process holds the lock; when nobody does, the lock file is removed."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        # Held by us now: the owner is gone. Its folder first, then the lock (see the module doc).
        shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
        return False
    finally:
        os.close(fd)


def remove_abandoned(root: Path, *, now: float | None = None) -> int:
    """Remove the scratch folders of dead processes (and old loose files); answers how many."""
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for entry in sorted(root.iterdir()):
        if entry.name.endswith(LOCK_SUFFIX):
            if not _owner_alive(entry):
                removed += 1
        elif entry.is_dir():
            # A folder whose lock file is gone lost its owner (a folder is made after its lock).
            if not (root / f"{entry.name}{LOCK_SUFFIX}").exists():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        else:
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime > LOOSE_FILE_SECONDS:
                    entry.unlink()
                    removed += 1
    return removed
