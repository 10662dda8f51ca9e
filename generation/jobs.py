"""Job bookkeeping on the Generation table: create (idempotently), claim, fail, list, resume.

Each function is one short write transaction or a read; the slow part (the upstream call)
happens between them, outside any transaction, so SQLite's write lock is never held for long.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from errors import Conflict, NotFound, StoryloomError
from generation.models import Generation, JobStatus
from storage.json_sql import json_list_has_id
from storage.timeutil import utcnow

TERMINAL = {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled}
ACTIVE = (JobStatus.queued, JobStatus.running)


def new_generation_id() -> str:
    return "gen_" + secrets.token_hex(12)


def request_hash(body: dict[str, Any]) -> str:
    """What "the same body" means for Idempotency-Key: every field but how long to wait."""
    relevant = {k: v for k, v in body.items() if k != "wait"}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


def find_by_idempotency_key(
    session: Session, workspace_id: int, key: str, body_hash: str
) -> Generation | None:
    stmt = select(Generation).where(
        Generation.workspace_id == workspace_id, Generation.idempotency_key == key
    )
    job = session.exec(stmt).first()
    if job is not None and job.request_hash != body_hash:
        raise Conflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
            code="idempotency_conflict",
        )
    return job


def add_job(session: Session, job: Generation) -> None:
    """Insert a new job inside the caller's write transaction (a unique-key race raises IntegrityError)."""
    session.add(job)
    session.flush()


def racing_twin(session: Session, job: Generation) -> Generation | None:
    """After `add_job` lost a race on the Idempotency-Key: the job that won (same body), if any."""
    if job.idempotency_key is None:
        return None
    return find_by_idempotency_key(session, job.workspace_id, job.idempotency_key, job.request_hash or "")


def get_job(session: Session, workspace_id: int, job_id: str) -> Generation:
    job = session.get(Generation, job_id)
    if job is None or job.workspace_id != workspace_id:
        raise NotFound(f"no generation with id {job_id}", field="id")
    return job


def list_jobs(
    session: Session,
    workspace_id: int,
    *,
    status: str | None,
    limit: int,
    offset: int,
    character_id: int | None = None,
    book_id: int | None = None,
) -> tuple[list[Generation], int]:
    where: list[Any] = [Generation.workspace_id == workspace_id]
    if status:
        where.append(Generation.status == status)
    if character_id is not None:
        where.append(json_list_has_id(session, "generation.characters", character_id))
    if book_id is not None:
        where.append(Generation.book_id == book_id)
    total = session.exec(select(func.count()).select_from(Generation).where(*where)).one()
    stmt = (
        select(Generation)
        .where(*where)
        .order_by(col(Generation.created_at).desc(), col(Generation.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(stmt).all()), total


def count_active(session: Session, workspace_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(Generation)
        .where(Generation.workspace_id == workspace_id, col(Generation.status).in_(ACTIVE))
    )
    return session.exec(stmt).one()


def resumable_job_ids(session: Session, *, runnable_only: bool = False) -> list[str]:
    """Jobs a crash left behind, oldest first: they were accepted, so they must still run.

    `runnable_only` leaves out book pages still waiting on another job (their release submits them).
    """
    stmt = select(Generation.id).where(col(Generation.status).in_(ACTIVE))
    if runnable_only:
        stmt = stmt.where(col(Generation.waiting_on).is_(None))
    return list(session.exec(stmt.order_by(Generation.created_at)).all())


def locked(session: Session, job_id: str) -> Generation | None:
    """The job's row, locked until the transaction ends (FOR UPDATE on PostgreSQL; SQLite's write
    transaction already holds the whole database), read fresh from the database."""
    return session.get(Generation, job_id, with_for_update=True, populate_existing=True)


def holds(job: Generation | None, attempt: int) -> bool:
    """The fence: is `attempt` still the live run of this job?

    A run whose job was cancelled, finished by another run, or claimed again after its worker
    stalled (a higher attempt) must store nothing: its outputs would be a second copy.
    """
    return job is not None and job.status == JobStatus.running and job.attempts == attempt


def mark_cancelled(job: Generation) -> None:
    job.status = JobStatus.cancelled
    job.finished_at = utcnow()


def claim(session: Session, job_id: str, max_attempts: int) -> Generation | None:
    """Mark a job running and count the attempt; None when there is nothing (more) to do.

    A job that already used every attempt was interrupted that many times (each crash or
    restart mid-job costs one), so it fails with a clear error instead of looping forever.
    """
    job = locked(session, job_id)
    if job is None or job.status in TERMINAL:
        return None
    if job.waiting_on is not None:
        return None  # released (and submitted again) when the job it waits on finishes
    if job.attempts >= max_attempts:
        mark_failed(
            job,
            StoryloomError(
                f"the job was interrupted {job.attempts} times (server stopped mid-job); giving up",
                code="job_abandoned",
            ),
            status=500,
        )
        session.add(job)
        return None
    job.status = JobStatus.running
    job.attempts += 1
    job.started_at = utcnow()
    session.add(job)
    return job


def mark_failed(job: Generation, error: StoryloomError, *, status: int | None = None) -> None:
    job.status = JobStatus.failed
    job.error_code = error.code
    job.error_message = error.message
    job.error_field = error.field
    job.error_status = status or error.status_code
    retry_after = error.headers.get("Retry-After")
    job.error_retry_after = int(float(retry_after)) if retry_after else None
    job.finished_at = utcnow()


def count_by_status(session: Session) -> dict[str, int]:
    """Jobs by status across all workspaces: one GROUP BY, for the metrics scrape."""
    rows = session.exec(select(Generation.status, func.count()).group_by(Generation.status)).all()
    return {status: count for status, count in rows}


def fail_stalled(
    session: Session, held: set[str], deadline: timedelta, now: datetime | None = None
) -> list[str]:
    """Fail jobs `running` for longer than `deadline` that no worker of this process holds.

    Such a job lost its worker without a trace (a bug, a failed failure write): nothing would
    ever end it, and it would count against the active-job cap and the quota forever.
    """
    cutoff = (now or utcnow()) - deadline
    stalled = session.exec(
        select(Generation).where(
            Generation.status == JobStatus.running,
            col(Generation.started_at) < cutoff,
        )
    ).all()
    ended = []
    for job in stalled:
        if job.id in held:
            continue
        mark_failed(
            job,
            StoryloomError(
                "the job stopped making progress and was ended by the watchdog", code="job_stalled"
            ),
            status=500,
        )
        session.add(job)
        ended.append(job.id)
    return ended
