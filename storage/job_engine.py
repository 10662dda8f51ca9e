"""What /health and /metrics read from procrastinate's own tables (PostgreSQL only).

procrastinate has no call for "workers seen lately" or a plain depth count; two tiny
queries on its tables answer both, through our engine (raw SQL lives in storage/).
"""

from __future__ import annotations

from sqlalchemy import Engine, text


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
