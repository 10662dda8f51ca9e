"""Removing image files that no row names (after a crash or a failed insert): start-up and `manage.py gc`.

Files are written before their rows (storage/files.py, library/service.py), so a crash or a
failed insert can leave a file behind, and a crash mid-write leaves a local temp file. The sweep
lists the store (local folders or S3 objects alike) and checks each unnamed file again under the
write lock (SQLite) or the file's own lock (PostgreSQL) before removing it: an upload re-checks
its files under that same lock before inserting, so a file the sweep removes is either
re-written or never named.

Only files older than `grace` are candidates: a local store's temp file is unnamed while its
writer is still filling it, and no row will ever name it; anything unnamed for ten minutes is
litter.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from library.models import Image
from storage.db import write_transaction
from storage.files import FileStore
from storage.locks import lock_file_keys
from storage.timeutil import utcnow

KINDS = ("originals", "thumbs")
# Files checked and removed per transaction (each holds one lock per file on PostgreSQL).
SWEEP_BATCH = 256
# An upload writes its files moments before its row; ten minutes is far beyond that.
SWEEP_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class SweepResult:
    files: int
    bytes: int


def sweep_unreferenced(session: Session, store: FileStore, grace: timedelta = SWEEP_GRACE) -> SweepResult:
    """Delete every blob under originals/ and thumbs/ that no image row names and is older than `grace`.

    On PostgreSQL other processes upload meanwhile: each candidate is locked (the upload's
    per-file lock, storage/locks.py) and checked again before it goes, a batch per transaction
    so a large sweep never holds thousands of locks at once.
    """
    cutoff = utcnow() - grace
    with write_transaction(session):
        named = {key for pair in session.exec(select(Image.file_key, Image.thumb_key)).all() for key in pair}
    sizes = {
        stored.key: stored.size
        for kind in KINDS
        for stored in store.scan(f"{kind}/")
        if stored.key not in named and stored.modified <= cutoff
    }
    candidates = sorted(sizes)
    removed = size = 0
    for start in range(0, len(candidates), SWEEP_BATCH):
        batch = candidates[start : start + SWEEP_BATCH]
        with write_transaction(session):
            lock_file_keys(session, batch)
            for key in unnamed(session, batch):
                with contextlib.suppress(OSError):
                    store.delete(key)
                    removed, size = removed + 1, size + sizes[key]
    return SweepResult(removed, size)


def unnamed(session: Session, keys: list[str]) -> list[str]:
    """The keys no image row names now (a statement after the locks: it sees every commit)."""
    named = set(session.exec(select(Image.file_key).where(col(Image.file_key).in_(keys))).all())
    named |= set(session.exec(select(Image.thumb_key).where(col(Image.thumb_key).in_(keys))).all())
    return [key for key in keys if key not in named]
