"""Similar-image lookups by perceptual hash: an in-process index per workspace, checked by version.

Hamming distance over 100k 64-bit hashes is one numpy XOR + popcount (well under a
millisecond), but loading them from SQLite takes far longer, so each process keeps the hashes
of a workspace in memory. `Workspace.library_version` is bumped in the same transaction as
every insert or delete, so comparing it (one indexed lookup) tells any process — including a
second server on the same database — whether its copy is stale. Inserts made by this process
are appended in place instead of forcing a reload.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, col, select

from library.models import Image
from storage.counters import library_version


@dataclass(frozen=True)
class LibraryIndex:
    version: int
    numbers: np.ndarray  # int64, ascending
    hashes: np.ndarray  # uint64, same order

    def neighbours(
        self, phash_int: int, max_distance: int, *, exclude: int | None = None
    ) -> list[tuple[int, int]]:
        """(number, distance) pairs within `max_distance`, nearest first, then by number."""
        if self.numbers.size == 0:
            return []
        target = np.array([phash_int], dtype=np.int64).view(np.uint64)[0]
        distances = np.bitwise_count(self.hashes ^ target)
        hits = np.flatnonzero(distances <= max_distance)
        pairs = [(int(self.numbers[i]), int(distances[i])) for i in hits]
        pairs = [pair for pair in pairs if pair[0] != exclude]
        pairs.sort(key=lambda pair: (pair[1], pair[0]))
        return pairs


def _key(session: Session, workspace_id: int) -> tuple[str, int]:
    return (str(session.get_bind().url), workspace_id)


class SimilarityCache:
    """The per-workspace hash indexes of one runtime (one per process), keyed by database and workspace.

    An object owned by the runtime rather than module state, so two runtimes in one process (two
    test apps, a worker beside a server) never see each other's copies.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], LibraryIndex] = {}

    def get_index(self, session: Session, workspace_id: int) -> LibraryIndex:
        """The workspace's hashes as of now: the cached copy when its version is current."""
        key = _key(session, workspace_id)
        version = library_version(session, workspace_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached.version == version:
            return cached
        # Read the version again inside the same snapshot as the rows (the session's transaction).
        rows = session.exec(
            select(Image.number, Image.phash_int)
            .where(Image.workspace_id == workspace_id)
            .order_by(col(Image.number))
        ).all()
        data = np.array(rows, dtype=np.int64).reshape(-1, 2)
        index = LibraryIndex(version, data[:, 0].copy(), data[:, 1].copy().view(np.uint64))
        with self._lock:
            self._cache[key] = index
        return index

    def cached_size(self, session: Session, workspace_id: int) -> int | None:
        """How many images the workspace has, if a current index already knows (saves a COUNT(*))."""
        with self._lock:
            cached = self._cache.get(_key(session, workspace_id))
        if cached is None or cached.version != library_version(session, workspace_id):
            return None
        return int(cached.numbers.size)

    def note_added(
        self,
        session: Session,
        workspace_id: int,
        old_version: int,
        new_version: int,
        added: list[tuple[int, int]],
    ) -> None:
        """After a commit: extend a cached index that was current right before it, else leave it stale."""
        key = _key(session, workspace_id)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None or cached.version != old_version:
                return
            numbers = np.array([n for n, _ in added], dtype=np.int64)
            hashes = np.array([h for _, h in added], dtype=np.int64).view(np.uint64)
            self._cache[key] = LibraryIndex(
                new_version,
                np.concatenate([cached.numbers, numbers]),
                np.concatenate([cached.hashes, hashes]),
            )
