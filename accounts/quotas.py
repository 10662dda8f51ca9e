"""Workspace caps on spending: at most N active jobs, and an optional daily image quota.

Both are checked inside the job-insert write transaction, after the caller took the workspace
row lock (`storage.locks.lock_workspace`: SQLite's `BEGIN IMMEDIATE` already serialises writers,
PostgreSQL needs the row lock), so two racing requests cannot both slip under a cap.

The day is the UTC day of `clock()` (the app's injectable clock), and a job belongs to the day
it was accepted. Its requested `n` counts while it is queued, running or succeeded; a failed
job spent nothing upstream worth charging the author for, so it gives its images back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from accounts.models import Workspace
from errors import NotFound, TooManyRequests
from generation import jobs
from generation.models import Generation, JobStatus

Clock = Callable[[], datetime]
# Nobody knows when a running job ends; a short wait is the honest hint.
ACTIVE_RETRY_AFTER_SECONDS = 10
CHARGED = (JobStatus.queued, JobStatus.running, JobStatus.succeeded)


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of `now`'s UTC day."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min"
    return f"{max(minutes, 1)} min" if seconds >= 60 else f"{seconds} s"


def effective_quota(workspace: Workspace, default: int) -> int:
    """The workspace's own quota if set, else the setting; 0 = unlimited."""
    return default if workspace.daily_image_quota is None else workspace.daily_image_quota


def images_used_today(session: Session, workspace_id: int, now: datetime) -> int:
    start, end = day_bounds(now)
    stmt = select(Generation.params).where(
        Generation.workspace_id == workspace_id,
        col(Generation.created_at) >= start,
        col(Generation.created_at) < end,
        col(Generation.status).in_(CHARGED),
    )
    return sum(int(params.get("n", 1)) for params in session.exec(stmt).all())


def _check_active(session: Session, workspace_id: int, max_active: int) -> None:
    """429 when the workspace already has `max_active` jobs queued or running (0 = no cap)."""
    if max_active and jobs.count_active(session, workspace_id) >= max_active:
        raise TooManyRequests(
            f"this workspace already has {max_active} generation jobs queued or running "
            f"(the most allowed at once); wait for one to finish",
            code="too_many_active_jobs",
            headers={"Retry-After": str(ACTIVE_RETRY_AFTER_SECONDS)},
        )


def check_caps(
    session: Session,
    workspace_id: int,
    n: int,
    *,
    now: datetime,
    max_active: int,
    default_quota: int,
) -> None:
    """Raise 429 if one more job of `n` images would break a cap; call inside the insert's transaction."""
    _check_active(session, workspace_id, max_active)
    quota, used = _quota_and_use(session, workspace_id, now, default_quota)
    if quota and used + n > quota:
        seconds = _seconds_to_reset(now)
        raise TooManyRequests(
            f"daily image quota reached: {used} of {quota} images used today and this request asks "
            f"for {n}; the quota resets at 00:00 UTC, in {_duration(seconds)}",
            field="n",
            code="quota_exceeded",
            headers={"Retry-After": str(seconds)},
        )


def check_batch(
    session: Session,
    workspace_id: int,
    images: int,
    *,
    now: datetime,
    max_active: int,
    default_quota: int,
    field: str = "pages",
) -> None:
    """Admit a batch (a book's pages) whole or refuse it whole; call inside the insert's transaction.

    The quota must cover every image of the batch: half a book is worse than none, so the 429
    says how many images remain. The active-jobs cap admits the batch when the workspace is
    under it: a batch is one request whose jobs the queue paces, and a 32-page book must fit
    under the default cap of 20.
    """
    _check_active(session, workspace_id, max_active)
    quota, used = _quota_and_use(session, workspace_id, now, default_quota)
    if quota and used + images > quota:
        seconds = _seconds_to_reset(now)
        remaining = max(0, quota - used)
        raise TooManyRequests(
            f"the daily image quota has {remaining} image(s) left today ({used} of {quota} used) and "
            f"this batch needs {images}; nothing was queued. The quota resets at 00:00 UTC, in "
            f"{_duration(seconds)}",
            field=field,
            code="quota_exceeded",
            headers={"Retry-After": str(seconds)},
        )


def _quota_and_use(session: Session, workspace_id: int, now: datetime, default_quota: int) -> tuple[int, int]:
    """(the workspace's quota, images used today); (0, 0) when unlimited (nothing to count)."""
    workspace = session.get(Workspace, workspace_id)
    quota = effective_quota(workspace, default_quota) if workspace is not None else default_quota
    return (quota, images_used_today(session, workspace_id, now)) if quota else (0, 0)


def _seconds_to_reset(now: datetime) -> int:
    _, end = day_bounds(now)
    return max(1, int((end - now).total_seconds() + 0.999))


def set_quota(session: Session, workspace_name: str, images: int | None) -> Workspace:
    """Set a workspace's daily image quota (None: follow the setting; 0: unlimited)."""
    if images is not None and images < 0:
        raise ValueError("the quota must be 0 (unlimited) or more")
    workspace = session.exec(select(Workspace).where(Workspace.name == workspace_name)).first()
    if workspace is None:
        raise NotFound(f"no workspace named {workspace_name!r}", field="workspace")
    workspace.daily_image_quota = images
    session.add(workspace)
    return workspace


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.exec(select(Workspace).order_by(col(Workspace.name))).all())
