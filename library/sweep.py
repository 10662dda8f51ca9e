"""Removing image files that no row names (after a crash or a failed insert): start-up and `manage.py gc`.

Files are written before their rows (storage/files.py, library/service.py), so a crash or a
failed insert can leave a file behind. The sweep holds SQLite's write lock while it compares
the files with every `file_key`/`thumb_key`: an upload re-checks its files under that same
lock before inserting, so a file the sweep removes is either re-written or never named.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from library.models import Image
from storage.db import write_transaction
from storage.files import FileStore

KINDS = ("originals", "thumbs")


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
    """Delete every file under `root`'s originals/ and thumbs/ that no image row names."""
    removed = size = 0
    with write_transaction(session):
        named = {key for pair in session.exec(select(Image.file_key, Image.thumb_key)).all() for key in pair}
        for key in stored_keys(root):
            if key in named:
                continue
            path = root / key
            with contextlib.suppress(OSError):
                length = path.stat().st_size
                store.delete(key)
                removed, size = removed + 1, size + length
    return SweepResult(removed, size)
