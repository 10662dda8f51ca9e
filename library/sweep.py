"""Removing image files that no row names (after a crash or a failed insert): start-up and `manage.py gc`.

Files are written before their rows (storage/files.py, library/service.py), so a crash or a
failed insert can leave a file behind. The sweep checks each unnamed file again under the
write lock (SQLite) or the file's own lock (PostgreSQL) before removing it: an upload re-checks
its files under that same lock before inserting, so a file the sweep removes is either
re-written or never named.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from library.models import Image
from storage.db import write_transaction
from storage.files import FileStore
from storage.locks import lock_file_keys

KINDS = ("originals", "thumbs")
# Files checked and removed per transaction (each holds one lock per file on PostgreSQL).
SWEEP_BATCH = 256


@dataclass(frozen=True)
class SweepResult:
    files: int
    bytes: int


def stored_keys(root: Path) -> list[str]:
    keys: list[str] = []
    for kind in KINDS:
        base = root / kind
        if not base.is_dir():
            continue
        for directory, _dirs, files in os.walk(base):
            for name in files:
                keys.append((Path(directory) / name).relative_to(root).as_posix())
    return keys


def sweep_unreferenced(session: Session, store: FileStore, root: Path) -> SweepResult:
    """Delete every file under `root`'s originals/ and thumbs/ that no image row names.

    On PostgreSQL other processes upload meanwhile: each candidate is locked (the upload's
    per-file lock, storage/locks.py) and checked again before it goes, a batch per transaction
    so a large sweep never holds thousands of locks at once.
    """
    with write_transaction(session):
        named = {key for pair in session.exec(select(Image.file_key, Image.thumb_key)).all() for key in pair}
    candidates = [key for key in stored_keys(root) if key not in named]
    removed = size = 0
    for start in range(0, len(candidates), SWEEP_BATCH):
        batch = candidates[start : start + SWEEP_BATCH]
        with write_transaction(session):
            lock_file_keys(session, batch)
            for key in unnamed(session, batch):
                path = root / key
                with contextlib.suppress(OSError):
                    length = path.stat().st_size
                    store.delete(key)
                    removed, size = removed + 1, size + length
    return SweepResult(removed, size)


def unnamed(session: Session, keys: list[str]) -> list[str]:
    """The keys no image row names now (a statement after the locks: it sees every commit)."""
    named = set(session.exec(select(Image.file_key).where(col(Image.file_key).in_(keys))).all())
    named |= set(session.exec(select(Image.thumb_key).where(col(Image.thumb_key).in_(keys))).all())
    return [key for key in keys if key not in named]
