"""Scene generation as the routes and the HTML pages use it: submit, wait, read.

`submit` validates and composes (422 before anything is spent), persists the job, and hands
its id to the pool; the same Idempotency-Key with the same body returns the same job and
never calls upstream twice.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from accounts import quotas as caps
from accounts.service import Caller
from books.models import Page
from config import Settings
from errors import Conflict, NotFound
from generation import jobs
from generation.backends import FitsPrompt, default_model
from generation.models import Generation, JobStatus
from generation.pricing import Price, estimate_before
from generation.scene import PreparedScene, added_characters, left_out_references, prepare_scene
from generation.schemas import (
    DryRunRead,
    GenerateRequest,
    GenerationError,
    GenerationImage,
    GenerationRead,
)
from library import service as library
from library.models import Image

if TYPE_CHECKING:
    from services.runtime import Runtime
from storage.db import end_read, write_transaction
from storage.files import FileStore
from storage.locks import lock_workspace
from storage.timeutil import iso_utc


def status_path(job_id: str) -> str:
    return f"/generations/{job_id}"


def dry_run_read(prepared: PreparedScene, backend: str, prices: dict[str, Price] | None = None) -> DryRunRead:
    params = prepared.params
    cost = estimate_before(
        prepared.model,
        params.size,
        params.quality,
        params.n,
        len(prepared.references),
        prompt_chars=len(prepared.prompt),
        prices=prices,
        backend=backend,
    )
    return DryRunRead(
        prompt=prepared.prompt,
        scene=prepared.scene,
        characters=prepared.characters,
        added_characters=prepared.added_characters,
        reference_images=[r.number for r in prepared.references],
        left_out_references=prepared.left_out,
        warnings=prepared.warnings,
        model=prepared.model,
        backend=backend,
        endpoint="edit" if prepared.references else "generate",
        parameters={"model": prepared.model, **prepared.params.upstream()},
        estimated_cost_usd=cost,
    )


def new_job(
    prepared: PreparedScene, caller: Caller, backend: str, now: datetime, **fields: Any
) -> Generation:
    """A queued job for a prepared scene; `fields` adds the rest (idempotency key, book page, ...)."""
    return Generation(
        id=jobs.new_generation_id(),
        workspace_id=caller.workspace_id,
        api_key_id=caller.key_id,
        status=JobStatus.queued,
        scene=prepared.scene,
        prompt=prepared.prompt,
        backend=backend,
        model=prepared.model,
        params=prepared.params.upstream(),
        characters=prepared.characters,
        reference_numbers=[r.number for r in prepared.references],
        created_at=now,
        **fields,
    )


def _accept(
    rt: Runtime,
    caller: Caller,
    body: GenerateRequest,
    idempotency_key: str | None,
    admit: Callable[[], object] | None = None,
    job_fields: dict[str, Any] | None = None,
) -> tuple[Generation | DryRunRead, bool]:
    body_hash = jobs.request_hash(body.model_dump(mode="json"))
    settings = rt.settings
    with rt.session() as session:
        if idempotency_key is not None and not body.dry_run:
            existing = jobs.find_by_idempotency_key(session, caller.workspace_id, idempotency_key, body_hash)
            if existing is not None:
                return existing, False
        now = rt.clock()
        prepared = prepare_scene(
            session,
            caller.workspace_id,
            body,
            default_model(settings, rt.backend.name),
            now.date(),
            backend=rt.backend.name,
            store=rt.store,
            fit=rt.backend if isinstance(rt.backend, FitsPrompt) else None,
        )
        if body.dry_run:
            return dry_run_read(prepared, rt.backend.name, rt.prices), False
        if admit is not None:
            admit()  # the rate limit counts requests that passed validation, not an author's typos
        job = new_job(
            prepared,
            caller,
            rt.backend.name,
            now,
            response_format=body.response_format,
            idempotency_key=idempotency_key,
            request_hash=body_hash,
            **(job_fields or {}),
        )
        end_read(session)  # the insert takes the write lock in a transaction of its own
        try:
            with write_transaction(session):
                lock_workspace(session, caller.workspace_id)  # caps, quota and key: one writer at once
                # Under the write lock: a racing twin with the same key may have committed meanwhile,
                # and is a replay, not a new job to count against the caps.
                if idempotency_key is not None:
                    existing = jobs.find_by_idempotency_key(
                        session, caller.workspace_id, idempotency_key, body_hash
                    )
                    if existing is not None:
                        return existing, False
                caps.check_caps(
                    session,
                    caller.workspace_id,
                    prepared.params.n,
                    now=now,
                    max_active=settings.max_active_jobs_per_workspace,
                    default_quota=settings.daily_image_quota,
                )
                jobs.add_job(session, job)
        except IntegrityError:
            # write_transaction rolled back (PostgreSQL refuses every statement of an aborted
            # transaction), so this read is a fresh one and sees the twin that committed.
            twin = jobs.racing_twin(session, job)
            if twin is None:
                raise
            return twin, False
        return job, True


async def submit(
    rt: Runtime,
    caller: Caller,
    body: GenerateRequest,
    idempotency_key: str | None,
    admit: Callable[[], object] | None = None,
    **job_fields: Any,
) -> Generation | DryRunRead:
    """Accept a scene request: a dry run's preview, or the (new or idempotently same) job.

    `admit` (the generation rate limit) runs once the request is valid and is not a replay,
    before anything is queued: a refused request costs nothing, a 429 creates nothing.
    `job_fields` sets more columns of a new job (a reference sheet's `main_reference_of`).
    """
    result, created = await to_thread.run_sync(_accept, rt, caller, body, idempotency_key, admit, job_fields)
    if created:
        await rt.jobs.submit(result.id)  # type: ignore[union-attr]
    return result


def _status(rt: Runtime, job_id: str) -> str | None:
    with rt.session() as session:
        job = session.get(Generation, job_id)
        return None if job is None else job.status


async def wait_for(rt: Runtime, job_id: str, seconds: float) -> bool:
    """Wait until the job is finished or `seconds` pass; True when it finished (in any process)."""

    async def finished() -> bool:
        return await to_thread.run_sync(_status, rt, job_id) in jobs.TERMINAL

    return await rt.jobs.wait(job_id, seconds, finished)


def _cancel_row(rt: Runtime, workspace_id: int, job_id: str) -> list[str]:
    """Mark the job cancelled under its row lock; the ids its finish hooks release (book pages)."""
    with rt.session() as session, write_transaction(session):
        job = jobs.locked(session, job_id)
        if job is None or job.workspace_id != workspace_id:
            raise NotFound(f"no generation with id {job_id}", field="id")
        if job.status in jobs.TERMINAL:
            raise Conflict(
                f"generation {job_id} is already {job.status}; only queued or running jobs can be cancelled",
                field="id",
                code="generation_finished",
            )
        jobs.mark_cancelled(job)
        session.add(job)
        return rt.finish_hook(session, job)


async def cancel(rt: Runtime, workspace_id: int, job_id: str) -> None:
    """Cancel a queued or running job: the row first (so it is never charged), then the engine.

    The engine stops the run if it can (a queued engine job is dropped, a running one aborted);
    if the run still finishes, the runner's fence finds the row cancelled and keeps nothing.
    Pages of a book that waited on the job are released as after a failed source.
    """
    released = await to_thread.run_sync(_cancel_row, rt, workspace_id, job_id)
    await rt.jobs.cancel(job_id)
    for follow_up in released:
        await rt.jobs.submit(follow_up)


def _page_number(session: Session, job: Generation) -> int | None:
    page = session.get(Page, job.page_id) if job.page_id is not None else None
    return None if page is None else page.position + 1


def generation_read(
    session: Session, settings: Settings, job: Generation, *, b64_from: FileStore | None = None
) -> GenerationRead:
    """The job as the API shows it; with `b64_from`, each image's bytes inline from that store."""
    rows = session.exec(
        select(Image).where(Image.workspace_id == job.workspace_id, col(Image.number).in_(job.image_numbers))
    ).all()
    by_number = {image.number: image for image in rows}
    revised = job.revised_prompts or []
    images: list[GenerationImage] = []
    store = b64_from
    for index, number in enumerate(job.image_numbers):
        image = by_number.get(number)
        if image is None:  # deleted from the library since
            continue
        shown = library.image_to_api(image, settings, characters=[])
        b64 = None
        if store is not None:
            with store.open(image.file_key) as handle:
                b64 = base64.b64encode(handle.read()).decode()
        images.append(
            GenerationImage(
                number=number,
                url=shown["url"],
                thumbnail_url=shown["thumbnail_url"],
                b64_json=b64,
                revised_prompt=revised[index] if index < len(revised) else None,
            )
        )
    error = None
    if job.status == JobStatus.failed:
        error = GenerationError(
            code=job.error_code or "failed", message=job.error_message or "", field=job.error_field
        )
    return GenerationRead(
        id=job.id,
        status=job.status,
        status_url=f"{settings.public_base_url}{status_path(job.id)}",
        prompt=job.prompt,
        scene=job.scene,
        characters=job.characters,
        added_characters=added_characters(job.characters),
        reference_images=job.reference_numbers,
        left_out_references=left_out_references(job.characters),
        model=job.model,
        backend=job.backend,
        parameters={"model": job.model, **job.params},
        seed=job.params.get("seed"),
        mask=job.params.get("mask"),
        images=images,
        image_url=images[0].url if images else None,
        usage=job.usage,
        estimated_cost_usd=job.estimated_cost_usd,
        error=error,
        attempts=job.attempts,
        book_id=job.book_id,
        page=_page_number(session, job),
        created_at=iso_utc(job.created_at) or "",
        started_at=iso_utc(job.started_at),
        finished_at=iso_utc(job.finished_at),
    )


def load_read(
    rt: Runtime, workspace_id: int, job_id: str, *, include_b64: bool
) -> tuple[Generation, GenerationRead]:
    with rt.session() as session:
        job = jobs.get_job(session, workspace_id, job_id)
        store = rt.store if include_b64 else None
        return job, generation_read(session, rt.settings, job, b64_from=store)
