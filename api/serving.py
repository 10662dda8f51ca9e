"""`make run`'s server: uvicorn on HOST:PORT, ending its start-up with one plain line for people.

The JSON request lines that follow bury uvicorn's own "running on" line, and a newcomer needs
to know where to click, so the last line of start-up says where the page and the docs are.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from config import Settings


class _Server(uvicorn.Server):
    """uvicorn's server, plus the plain line once it listens."""

    def __init__(self, config: uvicorn.Config, base_url: str) -> None:
        super().__init__(config)
        self.base_url = base_url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            base = self.base_url
            print(
                f"Storyloom is ready: the author's page is {base}/ and the API docs are {base}/docs",
                flush=True,
            )


def serve(app: Any, settings: Settings) -> None:
    """Serve `app` (built from `settings`) until interrupted."""
    # No uvicorn access log: the request log middleware writes one structured line per request.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, access_log=False)
    _Server(config, settings.public_base_url).run()
