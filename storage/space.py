"""Running out of disk: recognising it, reporting free space, and keeping room to delete.

A full disk shows up as `OSError(ENOSPC/EDQUOT)` from file writes (uploads spooling, the file
store) or as SQLite's "database or disk is full" (SQLITE_FULL). `is_disk_full` recognises both
so the API answers 507 `insufficient_storage` wherever it happens, never a 500 with a trace.

Deleting needs a little space too: SQLite appends the delete to its WAL. So the data directory
keeps a small reserve file (STORAGE_RESERVE_BYTES); a delete that meets a full disk frees the
reserve and tries again, and the reserve is made again once there is room.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from errors import StoryloomError

log = logging.getLogger("storyloom.storage")

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
RESERVE_NAME = "space-reserve"
T = TypeVar("T")


class InsufficientStorage(StoryloomError):
    status_code = 507
    code = "insufficient_storage"


def is_disk_full(exc: BaseException) -> bool:
    """True for a write refused because the disk (or quota) is full, however it was wrapped."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL_ERRNOS:
            return True
        if "database or disk is full" in str(current):  # sqlite3 / SQLAlchemy OperationalError
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def full_disk_error() -> InsufficientStorage:
    return InsufficientStorage(
        "the server's disk is full; delete images to free space or ask the operator to add some"
    )


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def ensure_reserve(data_dir: Path, size: int) -> bool:
    """Create the reserve file if it is missing (best effort; False when there is no room)."""
    path = data_dir / RESERVE_NAME
    if size <= 0 or (path.exists() and path.stat().st_size >= size):
        return True
    try:
        with path.open("wb") as handle:
            handle.write(b"\0" * size)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return False


def release_reserve(data_dir: Path) -> bool:
    path = data_dir / RESERVE_NAME
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    log.warning("disk full: released the %s reserve so a delete can go through", RESERVE_NAME)
    return True


def with_reserve(data_dir: Path, action: Callable[[], T]) -> T:
    """Run `action`; on a full disk free the reserve once and run it again."""
    try:
        return action()
    except Exception as exc:
        if not is_disk_full(exc) or not release_reserve(data_dir):
            raise
    return action()
