"""The blob store: content-addressed image files and finished exports behind one small interface.

Keys are relative names (`originals/ab/cd/<sha256>.png`, `thumbs/ab/cd/<sha256>.webp`,
`<workspace>/<export folder>/interior.pdf`), never paths, so the rows that name them mean the
same on local disk and in S3 (storage/s3.py). Equal image files share one key and a key never
changes meaning.

`LocalFileStore` writes a hidden temp file in the target's own folder, fsyncs it and renames it
into place: a reader or a crash never sees a half-written file, the rename never crosses
filesystems, and a temp file a crash left behind is an unnamed file that the sweep removes
(library/sweep.py). It needs no shared temp directory, so two processes never trip over each
other's temp files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

TEMP_PREFIX = ".tmp-"
CHUNK = 64 * 1024


def content_key(kind: str, sha256: str, ext: str) -> str:
    """`<kind>/ab/cd/<sha256>.<ext>`: two directory levels keep any one directory small."""
    return f"{kind}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


@dataclass(frozen=True)
class StoredObject:
    """One listed blob: the sweep needs its age (a live upload's file is young) and its size."""

    key: str
    size: int
    modified: datetime


class FileStore(Protocol):
    """What every store offers; `open`/`stream` raise FileNotFoundError for a missing key."""

    kind: str  # "local" | "s3", as /health reports it

    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def read(self, key: str) -> bytes: ...
    def open(self, key: str) -> BinaryIO: ...
    def stream(self, key: str) -> tuple[BinaryIO, int]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def scan(self, prefix: str = "") -> Iterator[StoredObject]: ...
    def local_path(self, key: str) -> Path | None: ...
    def presigned_url(
        self, key: str, *, seconds: int, media_type: str, filename: str | None
    ) -> str | None: ...
    def check(self) -> str: ...


class LocalFileStore:
    """Files under `root` on this machine's disk (or a volume every process mounts)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or ".." in Path(key).parts:
            raise ValueError(f"file key escapes the store: {key!r}")
        return path

    def _write(self, key: str, fill: BinaryIO | bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(fill, bytes):
                    handle.write(fill)
                else:
                    shutil.copyfileobj(fill, handle, CHUNK)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def put(self, key: str, data: bytes) -> None:
        self._write(key, data)

    def put_file(self, key: str, path: Path) -> None:
        with path.open("rb") as source:
            self._write(key, source)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def stream(self, key: str) -> tuple[BinaryIO, int]:
        handle = self.open(key)
        return handle, os.fstat(handle.fileno()).st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def delete_prefix(self, prefix: str) -> None:
        """Everything under the folder `prefix` (an export's files)."""
        shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)

    def scan(self, prefix: str = "") -> Iterator[StoredObject]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root.resolve()
        if not base.is_dir():
            return
        root = self.root.resolve()
        for directory, _dirs, files in os.walk(base):
            for name in files:
                path = Path(directory) / name
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    modified = datetime.fromtimestamp(info.st_mtime, UTC)
                    yield StoredObject(path.relative_to(root).as_posix(), info.st_size, modified)

    def local_path(self, key: str) -> Path | None:
        """A path the web server can stream from directly (None for remote stores)."""
        return self._path(key)

    def presigned_url(self, key: str, *, seconds: int, media_type: str, filename: str | None) -> str | None:
        """Local files have no URL of their own: the API serves them."""
        return None

    def check(self) -> str:
        return "ok"  # the data directory's own check (services/health.py) covers this disk
