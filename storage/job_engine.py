"""The SQL around procrastinate (PostgreSQL only; raw SQL lives in storage/).

procrastinate has no call for "workers seen lately" or a plain depth count: two tiny queries
on its tables answer /health and /metrics. And waiting for a job that another process runs:
migration 0010's trigger NOTIFYs FINISHED_CHANNEL with the generation id at commit;
`listen_for_finished` hands each id to the waiters of this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine, text

log = logging.getLogger("storyloom.jobs")

FINISHED_CHANNEL = "storyloom_generation_finished"
# After a lost connection, try again this long later (waiters poll meanwhile: nothing is missed).
RECONNECT_SECONDS = 1.0


async def listen_for_finished(conninfo: str, wake: Callable[[str], None]) -> None:
    """Forever: LISTEN on FINISHED_CHANNEL and call `wake(generation_id)` for each notification."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {FINISHED_CHANNEL}")
                async for note in conn.notifies():
                    wake(note.payload)
        except Exception as exc:  # noqa: BLE001 - the database restarted or the network blinked
            log.warning("job-finished listener lost its connection (%s); reconnecting", type(exc).__name__)
            await asyncio.sleep(RECONNECT_SECONDS)


def queue_depth(engine: Engine, queue: str) -> int:
    """Engine jobs waiting for a worker (`todo`) on `queue`."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND queue_name = :queue"),
                {"queue": queue},
            ).scalar_one()
        )


def workers_seen(engine: Engine, within_seconds: float) -> int:
    """procrastinate workers whose last heartbeat is at most `within_seconds` old."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_workers"
                    " WHERE last_heartbeat > now() - make_interval(secs => :seconds)"
                ),
                {"seconds": within_seconds},
            ).scalar_one()
        )
