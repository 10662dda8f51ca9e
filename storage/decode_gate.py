"""How many images are decoded at once, and giving their memory back to the OS afterwards.

A decode costs up to MAX_IMAGE_PIXELS × 4 bytes (200 MB at the default), whichever thread asks:
an upload, the HTML upload form or a generation job storing its outputs. One gate, held by the
runtime (memory is per process), lets IMAGE_WORKERS decodes run (a huge one counts as several, see
`DecodeGate`); the others wait, at most
IMAGE_WAIT_SECONDS, then get 503 `busy` with Retry-After rather than queueing without bound.

glibc keeps freed memory in its arenas, so after a burst the process stays at its peak; when
the last decode of a burst finishes, `release_memory` hands free pages back (`malloc_trim`).
Large buffers are also forced onto mmap (`M_MMAP_THRESHOLD`), which returns them on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from errors import StoryloomError

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_BYTES = 1024 * 1024
# One slot: a 50 M-pixel RGBA PNG decodes to 200 MB and peaks at ~230 MB while thumbnailing.
SLOT_BYTES = 256 * 1024 * 1024


class ServiceBusy(StoryloomError):
    status_code = 503
    code = "busy"


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - glibc only; musl and macOS have no malloc_trim
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_allocator() -> None:
    """Serve buffers over 1 MB by mmap, so freeing a decoded image returns it to the OS at once."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def release_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class DecodeGate:
    """A weighted semaphore of `slots` slots; a decode takes one slot per SLOT_BYTES it may need.

    Most decodes take one slot. A 50 M-pixel WebP (Pillow's WebP path holds ~4 copies of the
    pixels) takes them all and runs alone, so the bound holds in bytes, not just in count.
    """

    def __init__(self, slots: int) -> None:
        tune_allocator()
        self._slots = slots
        self._free = slots
        self._cond = threading.Condition()
        self._active = 0

    @property
    def active(self) -> int:
        return self._active

    def weight(self, cost_bytes: int) -> int:
        return min(self._slots, max(1, -(-cost_bytes // SLOT_BYTES)))

    @contextmanager
    def slot(self, wait_seconds: float, cost_bytes: int = 0) -> Iterator[None]:
        need = self.weight(cost_bytes)
        with self._cond:
            if not self._cond.wait_for(lambda: self._free >= need, timeout=wait_seconds):
                raise ServiceBusy(
                    "the server is busy processing other images; try again shortly",
                    headers={"Retry-After": str(max(1, round(wait_seconds)))},
                )
            self._free -= need
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._free += need
                self._active -= 1
                last = self._active == 0
                self._cond.notify_all()
            if last:
                release_memory()
