"""procrastinate: the job engine's tables and functions on PostgreSQL; nothing on SQLite (issue 13)

Also a trigger that NOTIFYs `storyloom_generation_finished` with the job's id whenever a
generation reaches succeeded, failed or cancelled (delivered at commit, whichever process
wrote it), so an API process waiting for a job another process runs wakes at once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:40:00

The schema SQL is procrastinate's own (`SchemaManager.get_schema()`, the pinned version's),
run in the migration's transaction, so `python manage.py migrate` (or start-up migration) is
the one step that makes a PostgreSQL database ready for `manage.py worker`. A later
procrastinate upgrade ships its own migration files: add a revision that runs them.
"""

from collections.abc import Sequence

from procrastinate.schema import SchemaManager

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED_TRIGGER = """
CREATE FUNCTION storyloom_generation_finished_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('succeeded', 'failed', 'cancelled') AND NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('storyloom_generation_finished', NEW.id);
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER storyloom_generation_finished_v1 AFTER UPDATE OF status ON generation
    FOR EACH ROW EXECUTE PROCEDURE storyloom_generation_finished_v1();
"""

DROP = """
DROP TRIGGER IF EXISTS storyloom_generation_finished_v1 ON generation;
DROP FUNCTION IF EXISTS storyloom_generation_finished_v1();
DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE f record;
BEGIN
    FOR f IN SELECT oid::regprocedure AS sig FROM pg_proc WHERE proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE';
    END LOOP;
END $$;
DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type, procrastinate_job_to_defer_v1 CASCADE;
"""


def _run(sql: str) -> None:
    """Straight to psycopg: the script has many statements, `%` signs and `::` casts."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite keeps the in-process pool: no engine tables
    bind.connection.driver_connection.execute(sql)  # type: ignore[union-attr]


def upgrade() -> None:
    _run(SchemaManager.get_schema())
    _run(FINISHED_TRIGGER)


def downgrade() -> None:
    _run(DROP)
