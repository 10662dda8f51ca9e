"""HMAC-signed, expiring URLs, so `<img src>` and OpenAI-style clients can fetch images headerless.

A signed URL carries `w` (workspace id), `exp` (unix time) and `sig` (hex HMAC-SHA256 of
`<w>:<path>:<exp>` under `settings.signing_key`). `exp` is rounded up to a bucket of a tenth
of the TTL, so the same image yields the same URL for that long (browsers and proxies can cache
it) while no URL lives longer than TTL + 10 %. TTLs under 10 s are not bucketed: `exp` is then
rounded down, so such a URL lives at most its TTL.

Refusals, both in the API's error shape:
- a signature that does not match (tampered path, workspace, expiry or sig) → 403 `invalid_signature`;
- a genuine signature past its expiry → 403 `signature_expired`.
403, not 401: the client did authenticate (with a signature); it is that proof that is refused.
A request with neither a Bearer key nor a signature stays a plain 401.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import TypeGuard
from urllib.parse import urlencode

from errors import Forbidden

# `exp` and `w` are plain ASCII decimal numbers of sane length; `str.isdigit` alone would let
# Unicode digits such as "²" through to `int()`, which then raises.
MAX_NUMBER_DIGITS = 18


def bucket_seconds(ttl: int) -> int:
    """A tenth of the lifetime (0 for TTLs under 10 s): the longest a URL may outlive its TTL."""
    return ttl // 10


def expiry(ttl: int, now: float | None = None) -> int:
    """The expiry to sign: within [now + ttl - 1, now + 1.1 × ttl], stable for a bucket."""
    now = time.time() if now is None else now
    bucket = bucket_seconds(ttl)
    if bucket == 0:
        return math.floor(now + ttl)
    return math.ceil((now + ttl) / bucket) * bucket


def _is_number(value: str | None) -> TypeGuard[str]:
    return value is not None and value.isascii() and value.isdigit() and len(value) <= MAX_NUMBER_DIGITS


def _signature(key: bytes, workspace_id: int, path: str, exp: int) -> str:
    message = f"{workspace_id}:{path}:{exp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_query(key: bytes, workspace_id: int, path: str, ttl: int, now: float | None = None) -> str:
    """The query string (without '?') that makes `path` fetchable without a header until expiry."""
    exp = expiry(ttl, now)
    return urlencode({"w": workspace_id, "exp": exp, "sig": _signature(key, workspace_id, path, exp)})


def signed_url(
    base_url: str, key: bytes, workspace_id: int, path: str, ttl: int, now: float | None = None
) -> str:
    return f"{base_url}{path}?{sign_query(key, workspace_id, path, ttl, now)}"


def verify(
    key: bytes, path: str, workspace: str | None, exp: str | None, sig: str | None, now: float | None = None
) -> int:
    """The workspace id a valid signature grants; raises Forbidden otherwise."""
    if not (sig and _is_number(workspace) and _is_number(exp)):
        raise Forbidden("signed URL is incomplete or malformed", field="sig", code="invalid_signature")
    expected = _signature(key, int(workspace), path, int(exp))
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise Forbidden("signed URL does not match", field="sig", code="invalid_signature")
    if int(exp) < (time.time() if now is None else now):
        raise Forbidden("signed URL has expired", field="exp", code="signature_expired")
    return int(workspace)
