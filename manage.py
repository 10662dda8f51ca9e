"""Operator commands: `python manage.py create-key --name N [--workspace W]`, list-keys, revoke-key.

`first-key` makes a key only when none is active (what `make run` calls on a fresh machine).
A new key is printed alone on the last line, once: only its hash is kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config import Settings
from services.auth import service as auth
from storage.db import open_database, write_session


def _create(engine, name: str, workspace: str) -> None:  # type: ignore[no-untyped-def]
    with write_session(engine) as session:
        row, key = auth.create_key(session, name=name, workspace=workspace)
        print(f"created key {row.id} ({row.name}) in workspace {workspace!r}; it is shown only once:")
    print(key)


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
    args = parser.parse_args(argv)

    settings = Settings()
    engine = open_database(settings.resolved_database_url)
    try:
        if args.command == "create-key":
            _create(engine, args.name, args.workspace)
        elif args.command == "first-key":
            with write_session(engine) as session:
                exists = auth.has_active_key(session)
            if exists:
                print("an API key already exists (python manage.py list-keys; create-key for another)")
            else:
                _create(engine, args.name, args.workspace)
        elif args.command == "list-keys":
            with write_session(engine) as session:
                rows = auth.list_keys(session)
                print(f"{'id':>4}  {'prefix':<12} {'workspace':<20} {'name':<24} status")
                for key, ws in rows:
                    status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                    print(f"{key.id:>4}  {key.prefix + '…':<12} {ws.name:<20} {key.name:<24} {status}")
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
