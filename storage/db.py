"""Database engine, sessions and migrations.

SQLite runs in WAL mode (readers never wait for the writer) with a busy timeout and foreign
keys on. Transactions that write start with `BEGIN IMMEDIATE` (see `write_session`): a deferred
transaction that reads first and writes later can hit SQLITE_BUSY without the busy handler ever
running, which is exactly what racing uploads do when they take the next image number.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 10_000
# pg_advisory_xact_lock(MIGRATION_LOCK, 0): the two-int key space, apart from the one-bigint keys
# storage/locks.py takes for files. Any fixed number works; every Storyloom process uses this one.
MIGRATION_LOCK = 0x53544F52  # "STOR"
# How long a process waits for another one's migrations before it gives up and says so.
MIGRATION_LOCK_TIMEOUT_SECONDS = 600


class SchemaNotReady(RuntimeError):
    """MIGRATE_ON_START=false and the database is not at the newest revision: run the migrate step."""


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    # SQLite connections are cheap; a pool smaller than the thread pool makes requests queue
    # for a connection while the database itself is idle.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=40,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """THE unit of work: every write path runs in this block, and only this block commits.

    The transaction takes SQLite's write lock with its first statement (`BEGIN IMMEDIATE`; a plain
    transaction on other databases), commits on success and rolls back on any exception, so rows
    appear together or not at all. A read snapshot the session still holds is ended first.
    """
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A fresh session inside `write_transaction`: for job code, manage.py and tests."""
    with Session(engine, expire_on_commit=False) as session, write_transaction(session):
        yield session


def end_read(session: Session) -> None:
    """End the session's read snapshot so its pooled connection goes back (before a long wait)."""
    session.rollback()


def ping(engine: Engine) -> None:
    """One round trip to the database; raises whatever the driver raises when it is down."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; run at start-up so no library is ever stranded.

    Two processes starting together must not both run a migration: the second waits for the
    first (a PostgreSQL advisory lock inside the migrating transaction; a lock file next to the
    SQLite file), then finds the schema at head and does nothing.
    """
    with _migration_file_lock(engine):
        _migrate_locked(engine)


def _migration_file_lock(engine: Engine) -> AbstractContextManager[object]:
    """SQLite: a `filelock` beside the database file (an in-memory database needs none)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return nullcontext()
    return FileLock(f"{database}.migrate.lock", timeout=MIGRATION_LOCK_TIMEOUT_SECONDS)


def _migrate_locked(engine: Engine) -> None:
    cfg = alembic_config(str(engine.url))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        # SQLite's way to change a table is to recreate it, and with foreign keys on, dropping the
        # old table would cascade-delete every row that points at it. The switch only works outside
        # a transaction; the check before commit proves the copied rows still line up.
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    # Released with the transaction; READ COMMITTED means alembic's next statement
                    # sees what the process that held it committed.
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key, 0)"), {"key": MIGRATION_LOCK})
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("a migration left rows pointing at rows that do not exist")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def require_schema_at_head(engine: Engine) -> None:
    """For MIGRATE_ON_START=false: refuse to run against a schema the code does not match."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise SchemaNotReady(
            f"the database schema is at revision {current or 'none (empty database)'} but this "
            f"version of Storyloom needs {head}, and MIGRATE_ON_START is false: run "
            "`python manage.py migrate` once (with the same DATABASE_URL), then start again"
        )


def migrate_or_check(engine: Engine, migrate_on_start: bool) -> None:
    """What start-up does to the schema: migrate it (under the lock) or insist it is at head."""
    if migrate_on_start:
        migrate(engine)
    else:
        require_schema_at_head(engine)


def prepare_database_dir(url: str) -> None:
    """A SQLite file's folder must exist before the first connection."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def open_database(url: str, *, migrate_on_start: bool = True) -> Engine:
    """Engine plus an up-to-date schema: what the server and manage.py both start from."""
    prepare_database_dir(url)
    engine = make_engine(url)
    try:
        migrate_or_check(engine, migrate_on_start)
    except BaseException:
        engine.dispose()
        raise
    return engine
