"""The image file store: content-addressed files on local disk behind a small interface.

Keys are relative paths derived from the content hash (`originals/ab/cd/<sha256>.png`,
`thumbs/ab/cd/<sha256>.webp`, both under `settings.images_dir`), so equal
files share one key and a key never changes meaning. Writes go to a temp file in
`settings.tmp_dir`, are fsynced and then renamed into place: a reader or a crash never sees a
half-written file. An S3-compatible store can replace `LocalFileStore` by implementing the same
`FileStore` protocol.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol


def content_key(kind: str, sha256: str, ext: str) -> str:
    """`<kind>/ab/cd/<sha256>.<ext>`: two directory levels keep any one directory small."""
    return f"{kind}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


class FileStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def read(self, key: str) -> bytes: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def local_path(self, key: str) -> Path | None: ...


class LocalFileStore:
    """Files under `root`; temp files under `tmp_dir`, which must be on the same filesystem."""

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or ".." in Path(key).parts:
            raise ValueError(f"file key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def local_path(self, key: str) -> Path | None:
        """A path the web server can stream from directly (None for remote stores)."""
        return self._path(key)
