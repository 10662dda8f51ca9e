"""A first-come, first-served lock: each release hands the lock to the longest waiter.

`threading.Lock` lets a thread that releases and loops straight back win again, so under
steady contention some writers starve for a second or more; handing over in order bounds
every wait by the queue ahead of it.
"""

from __future__ import annotations

import threading
from collections import deque


class FairLock:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over between the timeout and now: it is ours
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # still held: ownership passes to the next waiter
            else:
                self._held = False
