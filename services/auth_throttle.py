"""A brake on failed authentication: unknown or revoked keys, per client address and per key prefix.

Without it a client can send hundreds of wrong keys a second and get a 401 for each. Failures
are counted with the same `limits` machinery as the per-key limits (moving window, the same
storage URI, so `redis://` shares them between processes); once an address or a key prefix
(the first 10 characters, what `manage.py list-keys` shows) has failed too often in the last
minute, further failures answer 429 with Retry-After instead of 401.

Only failures are counted and only failures are refused: a valid key is looked up and admitted
exactly as before, even from an address that is being throttled, so a noisy neighbour behind
the same NAT cannot lock real users out. Keys carry 256 random bits, so the throttle is not
what stops guessing; it stops the flood and tells the client to back off.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from config import Settings
from errors import TooManyRequests, Unauthorized

log = logging.getLogger("storyloom.auth")

NAMESPACE = "storyloom-auth-failures"
PREFIX_CHARS = 10


class FailedAuthThrottle:
    def __init__(self, per_address: int, per_prefix: int, storage_uri: str = "memory://") -> None:
        self.items = {
            scope: RateLimitItemPerMinute(n)
            for scope, n in (("address", per_address), ("prefix", per_prefix))
            if n > 0
        }
        self.strategy = MovingWindowRateLimiter(storage_from_string(storage_uri, wrap_exceptions=True))

    @classmethod
    def from_settings(cls, settings: Settings) -> FailedAuthThrottle:
        return cls(
            settings.auth_failures_per_minute,
            settings.auth_failures_per_key_prefix_per_minute,
            settings.rate_limit_storage,
        )

    def refuse(
        self, error: Unauthorized, address: str | None, presented: str
    ) -> TooManyRequests | Unauthorized:
        """Count one failure; the error to answer with: the 401 itself, or 429 once over a limit."""
        subjects = {"address": address or "unknown", "prefix": presented[:PREFIX_CHARS]}
        retry_after = 0
        try:
            for scope, item in self.items.items():
                if not self.strategy.hit(item, NAMESPACE, scope, subjects[scope]):
                    reset_time, _ = self.strategy.get_window_stats(item, NAMESPACE, scope, subjects[scope])
                    retry_after = max(retry_after, 1, math.ceil(reset_time - time.time()))
        except StorageError as exc:
            log.warning("auth-failure storage unavailable (%s); answering 401", type(exc).__name__)
            return error
        if not retry_after:
            return error
        return TooManyRequests(
            f"too many failed authentication attempts; retry in {retry_after} s",
            field=error.field,
            code="too_many_auth_failures",
            headers={"Retry-After": str(retry_after)},
        )
