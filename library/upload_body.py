"""Streaming multipart reader for uploads: counts bytes as they arrive and stops at the limit.

Starlette's `request.form()` would spool a 5 GB body before anyone could say no. Here each
`files` part is counted while it streams and the request is refused (413) the moment one part
passes `max_upload_bytes`, or when there are more than `max_files_per_upload` files. Parts are
spooled to temp files in the process's own scratch folder (storage/scratch.py), which are
removed however the request ends.
Parsing and file writes run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request

from api.request_body import capped_stream, check_content_length
from config import Settings
from errors import BadRequest, PayloadTooLarge

FILE_FIELD = "files"
MAX_TEXT_FIELD_BYTES = 1024
# Room for boundaries, part headers and small form fields on top of the files themselves.
ENVELOPE_BYTES = 1024 * 1024


@dataclass
class UploadedFile:
    filename: str
    path: Path
    size: int = 0
    field: str = FILE_FIELD  # the part's name ("files"; "image[]" / "mask" on the OpenAI facade)
    content_type: str | None = None

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class MultipartForm:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def max_body_bytes(settings: Settings) -> int:
    return settings.max_upload_bytes * settings.max_files_per_upload + ENVELOPE_BYTES


def is_multipart(request: Request) -> bool:
    ctype, _ = parse_options_header(request.headers.get("content-type", ""))
    return ctype == b"multipart/form-data"


class _Collector:
    """python-multipart callbacks that route each part to a temp file or a small text buffer."""

    def __init__(
        self,
        settings: Settings,
        tmp_dir: Path,
        form: MultipartForm,
        text_fields: frozenset[str],
        file_fields: frozenset[str] = frozenset({FILE_FIELD}),
        max_text_bytes: int = MAX_TEXT_FIELD_BYTES,
    ) -> None:
        self.settings = settings
        self.tmp_dir = tmp_dir
        self.form = form
        self.text_fields = text_fields
        self.file_fields = file_fields
        self.max_text_bytes = max_text_bytes
        self.headers: dict[str, str] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._sink: BinaryIO | None = None
        self._current: UploadedFile | None = None
        self._text: bytearray | None = None
        self._text_name = ""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self.headers[name] = self._header_value.decode("utf-8", errors="replace").strip()
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        # As bytes: the parser round-trips them through latin-1, so a UTF-8 file name (ミア.png)
        # survives; as str it would try to encode it to latin-1 and fail (a 500).
        disposition, params = parse_options_header(self.headers.get("content-disposition", "").encode())
        if disposition != b"form-data" or b"name" not in params:
            raise BadRequest("each multipart part needs 'Content-Disposition: form-data; name=...'")
        name = params[b"name"].decode("utf-8", errors="replace")
        if name in self.file_fields:
            if len(self.form.files) >= self.settings.max_files_per_upload:
                raise PayloadTooLarge(
                    f"at most {self.settings.max_files_per_upload} files per upload", field=FILE_FIELD
                )
            filename = params.get(b"filename", b"").decode("utf-8", errors="replace")
            fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
            self._current = UploadedFile(
                filename or f"{name}[{len(self.form.files)}]",
                Path(tmp_name),
                field=name,
                content_type=self.headers.get("content-type"),
            )
            self.form.files.append(self._current)
            self._sink = os.fdopen(fd, "wb")
        elif name in self.text_fields:
            self._text, self._text_name = bytearray(), name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._current is not None and self._sink is not None:
            self._current.size += size
            if self._current.size > self.settings.max_upload_bytes:
                limit = self.settings.max_upload_bytes
                raise PayloadTooLarge(
                    f"{self._current.filename!r} is over the limit of {limit:,} bytes", field=FILE_FIELD
                )
            self._sink.write(data[start:end])
        elif self._text is not None:
            self._text.extend(data[start:end])
            if len(self._text) > self.max_text_bytes:
                raise PayloadTooLarge(f"form field {self._text_name} is too long", field=self._text_name)
        # Parts we do not know are read past and dropped.

    def on_part_end(self) -> None:
        if self._sink is not None:
            self._sink.close()
        if self._text is not None:
            self.form.fields[self._text_name] = self._text.decode("utf-8", errors="replace")
        self._sink, self._current, self._text = None, None, None

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def _remove(form: MultipartForm) -> None:
    for part in form.files:
        with contextlib.suppress(FileNotFoundError):
            part.path.unlink()


@asynccontextmanager
async def read_multipart(
    request: Request,
    settings: Settings,
    tmp_dir: Path,
    *,
    text_fields: frozenset[str] = frozenset({"character_id"}),
    file_fields: frozenset[str] = frozenset({FILE_FIELD}),
    max_text_bytes: int = MAX_TEXT_FIELD_BYTES,
) -> AsyncIterator[MultipartForm]:
    """Stream a multipart body into a `MultipartForm`; its temp files are removed on exit."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadRequest("expected a multipart/form-data body with a boundary", code="malformed_multipart")
    limit = max_body_bytes(settings)
    check_content_length(request, limit, FILE_FIELD)  # before any temp file exists
    body = capped_stream(request, limit, FILE_FIELD)
    form = MultipartForm()
    collector = _Collector(settings, tmp_dir, form, text_fields, file_fields, max_text_bytes)
    try:
        try:
            parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        except FormParserError as exc:
            raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from exc
        try:
            async for chunk in body:
                await anyio.to_thread.run_sync(parser.write, chunk)
            parser.finalize()
        except FormParserError as exc:
            raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from exc
        finally:
            collector.close()
        if parser.state != MultipartState.END:
            raise BadRequest("multipart body ends before its closing boundary", code="malformed_multipart")
        yield form
    finally:
        await anyio.to_thread.run_sync(_remove, form)
