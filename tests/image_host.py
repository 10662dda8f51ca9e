"""A small ASGI web server standing in for "some site with pictures", served on 127.0.0.1.

Paths: `/pic.png` (a real PNG), `/page.html` (not an image), `/redirect?to=URL` (302),
`/drip` (a PNG that arrives one byte every 50 ms, forever), `/endless` (a PNG header then
64 KiB chunks until the client hangs up), `/declared-huge` (Content-Length far over any cap).
It records each request's path and Host header, and how many bytes `/endless` got out.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import anyio

from tests.imagegen import png

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
CHUNK = b"\0" * 65536
ENDLESS_LIMIT = 256 * 1024 * 1024


class ImageHost:
    def __init__(self, picture: bytes | None = None) -> None:
        self.picture = picture or png(7)
        self.hits: list[tuple[str, str]] = []  # (path, Host header)
        self.endless_sent = 0
        self.stopped = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        self.hits.append((path, headers.get("host", "")))
        query = parse_qs(scope.get("query_string", b"").decode())
        if path == "/pic.png":
            await _answer(send, 200, self.picture, "image/png")
        elif path == "/page.html":
            await _answer(send, 200, b"<html><body>not a picture</body></html>", "text/html")
        elif path == "/redirect":
            await send(
                {
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", query["to"][0].encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
        elif path == "/declared-huge":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"image/png"), (b"content-length", b"999999999999")],
                }
            )
            await send({"type": "http.response.body", "body": self.picture[:16], "more_body": True})
        elif path == "/drip":
            await self._stream(receive, send, self._drip())
        elif path == "/endless":
            await self._stream(receive, send, self._endless())
        else:
            await _answer(send, 404, b"no such page", "text/plain")

    async def _drip(self) -> Any:
        for byte in self.picture:
            yield bytes([byte])
            await anyio.sleep(0.05)

    async def _endless(self) -> Any:
        yield self.picture[:64]
        while self.endless_sent < ENDLESS_LIMIT:
            yield CHUNK

    async def _stream(self, receive: Receive, send: Send, chunks: Any) -> None:
        """Send until the client hangs up (uvicorn swallows sends after that, so watch `receive`)."""
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"image/png")]}
        )
        gone = anyio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            async for chunk in chunks:
                if gone.is_set() or self.stopped.is_set():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self.endless_sent += len(chunk)
            group.cancel_scope.cancel()


async def _answer(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
