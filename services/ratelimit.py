"""Per-API-key rate limits, on the `limits` library, with the headers clients need to back off.

Strategy: **moving window**. "60 per minute" then means at most 60 requests in *any* 60-second
span, which is what the setting says and what a budget needs: a fixed window lets a script send
60 at 0:59 and 60 more at 1:00 (twice the limit in two seconds), and the sliding-window counter
is an approximation that can refuse or admit a request or two around the boundary, which would
make "the limit is hit exactly at N" untestable. The price of the moving window is one stored
timestamp per request in the window, i.e. O(limit) memory per key: trivial for per-minute
limits in the tens. `memory://` (the default) keeps counters in this process; `redis://…` shares
them between server processes (the `limits` storage URI, `RATE_LIMIT_STORAGE`).

Scopes: `api` (every request that presents a key, `RATE_LIMIT_PER_MINUTE`) and `generations`
(`GENERATIONS_PER_MINUTE`, checked by the generation route on top of `api`). A limit of 0 is
unlimited and touches no storage.

If the storage is unreachable (Redis down) the check fails open with a warning: the database
caps (active jobs, daily quota) still bound spending, and an outage of a shared counter should
not take the whole API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from config import Settings
from errors import TooManyRequests

log = logging.getLogger("storyloom.ratelimit")

LimitScope = Literal["api", "generations"]
NAMESPACE = "storyloom"
REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


def storage_kind(storage_uri: str) -> str:
    """ "memory", "redis" (redis://, rediss://, redis+unix://, redis+sentinel://…) or the scheme."""
    scheme = storage_uri.split("://", 1)[0].lower()
    return "redis" if scheme.startswith("redis") else scheme


@dataclass(frozen=True)
class LimitStatus:
    """Where one key stands in one scope after a request was admitted (or refused)."""

    scope: str
    limit: int  # 0 = unlimited
    remaining: int
    reset_after: int  # seconds until a slot frees up again

    @property
    def unlimited(self) -> bool:
        return self.limit == 0

    def headers(self) -> dict[str, str]:
        """The RateLimit-* headers (IETF httpapi draft: Reset is delta-seconds); none if unlimited."""
        if self.unlimited:
            return {}
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }

    def tighter(self, other: LimitStatus | None) -> LimitStatus:
        """Of two statuses for one request, the one a client should obey (fewest left)."""
        if other is None or other.unlimited:
            return self
        if self.unlimited:
            return other
        return self if (self.remaining, -self.reset_after) <= (other.remaining, -other.reset_after) else other


class KeyRateLimiter:
    """Per-key limits for each scope, over one `limits` storage; built once per app."""

    def __init__(
        self,
        per_minute: dict[str, int],
        storage_uri: str = "memory://",
    ) -> None:
        self.per_minute = dict(per_minute)
        self.items = {scope: RateLimitItemPerMinute(n) for scope, n in per_minute.items() if n > 0}
        self.kind = storage_kind(storage_uri)
        # A hung Redis must not hang every request: bounded waits, then the fail-open path below.
        options = REDIS_TIMEOUTS if self.kind == "redis" else {}
        self.storage = storage_from_string(storage_uri, wrap_exceptions=True, **options)
        self.strategy = MovingWindowRateLimiter(self.storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRateLimiter:
        return cls(
            {"api": settings.rate_limit_per_minute, "generations": settings.generations_per_minute},
            settings.rate_limit_storage,
        )

    def storage_health(self) -> str:
        """For /health: the storage kind ("memory", "redis") when it answers, else "error: …"."""
        if self.kind == "memory":
            return "memory"
        try:
            answered = self.storage.check()
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; the kind is reported
            return f"error: {type(exc).__name__}"
        return self.kind if answered else f"error: {self.kind} did not answer"

    def check(self, key_id: int, scope: LimitScope = "api") -> LimitStatus:
        """Count one request by `key_id` in `scope`; raise 429 `rate_limited` when over the limit.

        Call it before doing (or queueing) anything, so a refused request costs nothing.
        """
        item = self.items.get(scope)
        if item is None:
            return LimitStatus(scope, 0, 0, 0)
        ids = (NAMESPACE, scope, str(key_id))
        try:
            admitted = self.strategy.hit(item, *ids)
            reset_time, remaining = self.strategy.get_window_stats(item, *ids)
        except StorageError as exc:
            log.warning("rate-limit storage unavailable (%s); admitting the request", type(exc).__name__)
            return LimitStatus(scope, 0, 0, 0)
        reset_after = max(0, math.ceil(reset_time - time.time()))
        status = LimitStatus(scope, item.amount, max(0, remaining), reset_after)
        if not admitted:
            retry_after = max(1, reset_after)
            noun = "generation requests" if scope == "generations" else "requests"
            raise TooManyRequests(
                f"rate limit exceeded: {item.amount} {noun} per minute for this API key; "
                f"retry in {retry_after} s",
                code="rate_limited",
                headers={"Retry-After": str(retry_after), **status.headers()},
            )
        return status
