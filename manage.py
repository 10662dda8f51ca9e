"""Operator commands: `.venv/bin/python manage.py create-key --name N [--workspace W]`, list-keys, …

Accounting: `set-quota --workspace W --images N` (0 = unlimited; `--default` follows
DAILY_IMAGE_QUOTA again), `workspaces` (quotas and today's use), `usage [--workspace W]
[--from D] [--to D] [--group-by day|model|key]` (the table `GET /usage` answers with).

`gc` removes image files no row names (what start-up does too).

`first-key` makes a key only when none is active (what `make run` calls on a fresh machine).
A new key is printed alone on the last line, once: only its hash is kept.

`migrate` brings the database schema to the newest revision and says where it stands: the
explicit step for multi-process deployments (MIGRATE_ON_START=false), safe to run while
other processes start (they wait on the same lock).

`worker [--concurrency N]` runs a procrastinate worker (PostgreSQL; JOB_QUEUE auto or
procrastinate): N generation jobs at once, default GENERATION_CONCURRENCY. Every process,
API or worker, must share one SECRET_KEY.

`serve` runs the app on HOST:PORT (what `make run` calls) and ends its start-up with one plain
line saying where the author's page and the API docs are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlmodel import Session

from accounts import quotas as caps
from accounts import service as auth
from accounts import usage
from config import Settings
from errors import NotFound
from library.sweep import sweep_unreferenced
from storage.db import (
    SchemaNotReady,
    current_revision,
    make_engine,
    migrate,
    open_database,
    prepare_database_dir,
    write_session,
)
from storage.stores import blob_stores
from storage.timeutil import utcnow


def _create(engine, name: str, workspace: str) -> None:  # type: ignore[no-untyped-def]
    with write_session(engine) as session:
        row, key = auth.create_key(session, name=name, workspace=workspace)
        print(f"created key {row.id} ({row.name}) in workspace {workspace!r}; it is shown only once:")
    print(key)


def _migrate(url: str) -> int:
    """Migrate under the start-up lock and report the revision before and after."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            before = current_revision(connection)
        migrate(engine)
        with engine.connect() as connection:
            after = current_revision(connection)
    finally:
        engine.dispose()
    if before == after:
        print(f"database already at the newest revision ({after}); nothing to do")
    else:
        print(f"database migrated from {before or 'empty'} to {after}")
    return 0


def _quota_text(quota: int | None, settings: Settings) -> str:
    if quota is None:
        default = settings.daily_image_quota
        return f"default ({default or 'unlimited'})"
    return str(quota) if quota else "unlimited"


def _workspaces(engine, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with Session(engine) as session:
        print(f"{'id':>4}  {'workspace':<20} {'daily quota':<22} used today")
        for ws in caps.list_workspaces(session):
            used = caps.images_used_today(session, ws.id, now)  # type: ignore[arg-type]
            print(f"{ws.id:>4}  {ws.name:<20} {_quota_text(ws.daily_image_quota, settings):<22} {used}")


def _usage(engine, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    start, end = usage.resolve_period(
        usage.parse_day(args.start, "from"), usage.parse_day(args.end, "to"), utcnow().date()
    )
    with Session(engine) as session:
        workspaces = caps.list_workspaces(session)
        if args.workspace is not None:
            workspaces = [ws for ws in workspaces if ws.name == args.workspace]
            if not workspaces:
                raise NotFound(f"no workspace named {args.workspace!r}", field="workspace")
        shown = 0
        for ws in workspaces:
            report = usage.usage_report(session, ws.id, start, end, args.group_by)
            if args.workspace is None and not report.rows:
                continue
            shown += 1
            print(f"workspace {ws.name!r}, {start} to {end} (UTC), by {args.group_by}:")
            for line in usage.format_table(report):
                print(line)
            print()
        if not shown:
            print(f"no succeeded generations from {start} to {end} (UTC)")


def _worker(settings: Settings, concurrency: int | None) -> int:
    import asyncio

    from services.worker import run_worker

    try:
        kind = settings.resolved_job_queue
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if kind != "procrastinate":
        print(
            "error: workers need PostgreSQL (DATABASE_URL=postgresql+psycopg://…);"
            " on SQLite the server runs jobs itself (JOB_QUEUE=local)",
            file=sys.stderr,
        )
        return 2
    if concurrency is not None and concurrency < 1:
        print("error: --concurrency must be 1 or more", file=sys.stderr)
        return 2
    return asyncio.run(run_worker(settings, concurrency or settings.generation_concurrency))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-key", help="create an API key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--workspace", default="default")
    first = sub.add_parser("first-key", help="create a key only if no active key exists")
    first.add_argument("--name", default="first key")
    first.add_argument("--workspace", default="default")
    sub.add_parser("list-keys", help="list keys (never the keys themselves)")
    revoke = sub.add_parser("revoke-key", help="revoke a key by its id")
    revoke.add_argument("id", type=int)
    quota = sub.add_parser("set-quota", help="set a workspace's daily image quota")
    quota.add_argument("--workspace", required=True)
    amount = quota.add_mutually_exclusive_group(required=True)
    amount.add_argument("--images", type=int, help="images per UTC day; 0 = unlimited")
    amount.add_argument("--default", action="store_true", help="follow DAILY_IMAGE_QUOTA again")
    sub.add_parser("workspaces", help="list workspaces with their daily quota and today's use")
    sub.add_parser("gc", help="remove image files that no image row names")
    report = sub.add_parser("usage", help="generations, tokens and estimated cost")
    report.add_argument("--workspace", help="one workspace (default: each workspace in turn)")
    report.add_argument("--from", dest="start", help="YYYY-MM-DD (default: 30 days before --to)")
    report.add_argument("--to", dest="end", help="YYYY-MM-DD (default: today, UTC)")
    report.add_argument("--group-by", choices=["day", "model", "key"], default="day")
    sub.add_parser("migrate", help="bring the database schema to the newest revision (under a lock)")
    sub.add_parser("serve", help="run the app on HOST:PORT (what `make run` does)")
    worker = sub.add_parser("worker", help="run a procrastinate worker (PostgreSQL): generation jobs")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs at once (GENERATION_CONCURRENCY)")
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "serve":
        # The web stack loads only for the one command that serves: the others start fast.
        from api.serving import serve
        from api_server import create_app

        serve(create_app(settings), settings)
        return 0
    if args.command == "migrate":
        prepare_database_dir(settings.resolved_database_url)
        return _migrate(settings.resolved_database_url)
    if args.command == "worker":
        return _worker(settings, args.concurrency)
    try:
        engine = open_database(settings.resolved_database_url, migrate_on_start=settings.migrate_on_start)
    except SchemaNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "create-key":
            _create(engine, args.name, args.workspace)
        elif args.command == "first-key":
            with write_session(engine) as session:
                exists = auth.has_active_key(session)
            if exists:
                print(
                    "an API key already exists (.venv/bin/python manage.py list-keys; make key for another)"
                )
            else:
                _create(engine, args.name, args.workspace)
        elif args.command == "list-keys":
            with write_session(engine) as session:
                rows = auth.list_keys(session)
                print(f"{'id':>4}  {'prefix':<12} {'workspace':<20} {'name':<24} status")
                for key, ws in rows:
                    status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                    print(f"{key.id:>4}  {key.prefix + '…':<12} {ws.name:<20} {key.name:<24} {status}")
        elif args.command == "set-quota":
            if args.images is not None and args.images < 0:
                print("error: --images must be 0 (unlimited) or more", file=sys.stderr)
                return 2
            with write_session(engine) as session:
                ws = caps.set_quota(session, args.workspace, None if args.default else args.images)
                shown = _quota_text(ws.daily_image_quota, settings)
                print(f"workspace {ws.name!r}: daily image quota {shown}")
        elif args.command == "workspaces":
            _workspaces(engine, settings)
        elif args.command == "gc":
            with Session(engine, expire_on_commit=False) as session:
                swept = sweep_unreferenced(session, blob_stores(settings).images)
            print(f"removed {swept.files} unreferenced file(s), {swept.bytes:,} bytes")
        elif args.command == "usage":
            _usage(engine, args)
        elif args.command == "revoke-key":
            with write_session(engine) as session:
                row = auth.revoke_key(session, args.id)
                print(f"revoked key {row.id} ({row.name})")
    except Exception as exc:
        from errors import StoryloomError

        if isinstance(exc, StoryloomError):
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        raise
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
