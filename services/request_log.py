"""Log set-up: JSON or plain lines, and a scrubber that keeps secrets out of logs.

The per-request line itself is written by `api.middleware.RequestLogMiddleware`.
`SecretScrubber` is the safety net under every handler `configure_logging` installs (ours and
uvicorn's): whatever some code logs by mistake, an API key (`sl_…`, `sk-…`), a Bearer token or a
long base64 run (an image) is replaced before it is written. The request line is scrubbed at
the source too, so the guarantee holds under any handler (including pytest's).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import IO, Any

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (re.compile(r"\bsl_[A-Za-z0-9_\-]{6,}"), "sl_[redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-[redacted]"),
)
# An image or any other blob: 100+ base64 characters in a row (hex digests are 64), see `_blob`.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{100,}={0,2}")


def _blob(match: re.Match[str]) -> str:
    """Redact a run that looks like encoded bytes, not a long file path or a hex digest.

    Encoded bytes mix upper case, lower case and digits in any 100 characters, and '/' is one
    character in 64; a path has a slash every few characters.
    """
    run = match.group()
    looks_encoded = (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
        and run.count("/") * 16 < len(run)
    )
    return "[base64 redacted]" if looks_encoded else run


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return _BASE64_RUN.sub(_blob, text)


def scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


class SecretScrubber(logging.Filter):
    """Rewrites each record's message, structured fields and traceback without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Scrub the arguments in place and keep them: formatters such as uvicorn's access log
        # read `record.args` (client, method, path, version, status) and break without them.
        if isinstance(record.args, tuple):
            record.args = tuple(scrub_value(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = scrub_value(record.args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:  # a secret split across the arguments: only the flat text is safe
            record.msg, record.args = cleaned, None
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = scrub_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime  # type: ignore[assignment]


def configure_logging(
    level: str = "INFO", fmt: str = "json", stream: IO[str] | None = None
) -> logging.Handler:
    """Install Storyloom's one root handler (replacing a previous one), scrub uvicorn's too.

    Idempotent, so every app start (and every test app) can call it. Returns the handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "storyloom", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.storyloom = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.addFilter(SecretScrubber())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The HTTP clients (the openai SDK's httpx2) log every URL at INFO; the backends write their
    # own line per upstream call, so theirs is only noise and a leak risk.
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for other in logging.getLogger(name).handlers:
            if not any(isinstance(f, SecretScrubber) for f in other.filters):
                other.addFilter(SecretScrubber())
    return handler
