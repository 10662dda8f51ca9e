"""Illustrate a book: each page is one ordinary generation job, chained for continuity.

Accepting a batch is one write transaction: every page to draw gets its queued job (so quotas,
caps, cost, idempotency and crash-resume work as for single scenes), or nothing is queued.

Continuity (`chain`): with `first` every page but the first gets page 1's chosen picture as an
input image; with `previous` each page gets the one before it. A page whose source page is
being drawn in the same batch (or is still queued from an earlier one) is stored `waiting_on`
that page's job: it stays queued and unclaimed. When the source job finishes, `page_job_finished`
runs inside the same transaction that stores the source's outputs (or its failure): it records
the outputs on the page, composes each waiting job's final prompt with the source's chosen
picture, and clears `waiting_on`. The queue is then handed the released ids; if the process dies
before that, start-up resumes every queued job, so nothing is lost and nothing runs twice.
A failed source does not sink its dependants: they are drawn without the continuity picture
(or with the source page's earlier picture, when it had one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from accounts import quotas
from accounts.service import Caller
from books import service
from books.models import Book, Page
from books.prepare import Continuity, PreparedPage, prepare_page
from books.schemas import IllustrateAccepted, IllustrateDryRun, IllustrateRequest, PageJob, PagePlan
from config import Settings
from errors import Conflict, InvalidInput, NotFound, StoryloomError
from generation import jobs
from generation.models import Generation, JobStatus
from generation.pricing import Price, estimate_before
from generation.service import new_job
from storage.db import write_transaction
from storage.locks import lock_row, lock_workspace


@dataclass
class Planned:
    page: Page
    prepared: PreparedPage
    waits_on: Page | str | None  # a page drawn in this batch, or an earlier batch's active job id
    continuity: Continuity | None
    cost: float


def status_path(book_id: int) -> str:
    return f"/books/{book_id}"


def _targets(
    pages: list[Page], body: IllustrateRequest, active: Mapping[int, Generation]
) -> tuple[list[Page], list[int]]:
    """Pages to draw now and the page numbers skipped (already illustrated, or already queued)."""
    if body.pages is None:
        chosen = pages
    else:
        for index, number in enumerate(body.pages):
            if not 1 <= number <= len(pages):
                raise NotFound(f"the book has no page {number}", field=f"pages.{index}")
        wanted = set(body.pages)
        chosen = [p for p in pages if p.position + 1 in wanted]
    targets, skipped = [], []
    for page in chosen:
        if page.id in active or (page.image is not None and not body.redo):
            skipped.append(page.position + 1)
        else:
            targets.append(page)
    return targets, skipped


def _source(book: Book, pages: list[Page], page: Page) -> Page | None:
    if book.chain == "first":
        return pages[0] if page.position > 0 else None
    if book.chain == "previous":
        return pages[page.position - 1] if page.position > 0 else None
    return None


def _in_page(number: int, exc: StoryloomError) -> StoryloomError:
    """Name the page in an error about one page's scene ("page 3: ...", field pages.3.prompt)."""
    exc.message = f"page {number}: {exc.message}"
    exc.field = f"pages.{number}" + (f".{exc.field}" if exc.field else "")
    return exc


def _plan(
    session: Session,
    settings: Settings,
    book: Book,
    pages: list[Page],
    body: IllustrateRequest,
    backend: str,
    prices: Mapping[str, Price] | None,
) -> tuple[list[Planned], list[int]]:
    job_ids = [p.generation_id for p in pages if p.generation_id]
    found = session.exec(select(Generation).where(col(Generation.id).in_(job_ids))).all() if job_ids else []
    active = {job.page_id: job for job in found if job.status in jobs.ACTIVE and job.page_id is not None}
    targets, skipped = _targets(pages, body, active)
    drawing = {p.id for p in targets}
    model = book.model or settings.default_image_model
    planned: list[Planned] = []
    for page in targets:
        number = page.position + 1
        source = _source(book, pages, page)
        waits_on: Page | str | None = None
        continuity = None
        if source is not None:
            if source.id in drawing:
                waits_on = source
            elif source.id in active:
                waits_on = active[source.id].id
            if waits_on is not None or source.image is not None:
                continuity = Continuity(source.position + 1, None if waits_on is not None else source.image)
        try:
            prepared = prepare_page(session, book, page, model=model, n=body.n, continuity=continuity)
        except StoryloomError as exc:
            raise _in_page(number, exc) from exc
        scene = prepared.scene
        pending_input = 1 if continuity is not None and continuity.number is None else 0
        cost = 0.0
        if backend != "draft":
            cost = estimate_before(
                scene.model,
                scene.params.size,
                scene.params.quality,
                body.n,
                len(scene.references) + pending_input,
                prompt_chars=len(scene.prompt),
                prices=prices,
            )
        planned.append(Planned(page, prepared, waits_on, continuity, cost))
    return planned, skipped


def dry_run(
    session: Session,
    settings: Settings,
    book: Book,
    body: IllustrateRequest,
    backend: str,
    prices: Mapping[str, Price] | None,
) -> IllustrateDryRun:
    planned, skipped = _plan(session, settings, book, _pages_or_422(session, book), body, backend, prices)
    return IllustrateDryRun(
        pages=[
            PagePlan(
                page=p.page.position + 1,
                prompt=p.prepared.scene.prompt,
                reference_images=[r.number for r in p.prepared.scene.references],
                dropped=p.prepared.dropped,
                waits_for=f"page {p.continuity.page}"
                if p.continuity and p.continuity.number is None
                else None,
                parameters={"model": p.prepared.scene.model, **p.prepared.scene.params.upstream()},
                estimated_cost_usd=round(p.cost, 6),
            )
            for p in planned
        ],
        skipped=skipped,
        estimated_cost_usd=round(sum(p.cost for p in planned), 6),
    )


def _pages_or_422(session: Session, book: Book) -> list[Page]:
    pages = service.pages_of(session, book.id)  # type: ignore[arg-type]
    if not pages:
        raise InvalidInput("the book has no pages yet: add pages or paste a manuscript first", field="pages")
    return pages


def _replay(
    session: Session, caller: Caller, key: str, body_hash: str, book: Book, base_url: str
) -> IllustrateAccepted | None:
    prefix = f"{key}/"
    found = session.exec(
        select(Generation).where(
            Generation.workspace_id == caller.workspace_id,
            col(Generation.idempotency_key).startswith(prefix, autoescape=True),
        )
    ).all()
    if not found:
        return None
    if any(job.request_hash != body_hash or job.book_id != book.id for job in found):
        raise Conflict(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
            code="idempotency_conflict",
        )
    positions = {p.id: p.position + 1 for p in service.pages_of(session, book.id)}  # type: ignore[arg-type]
    listed = sorted(found, key=lambda job: positions.get(job.page_id or -1, 0))
    return IllustrateAccepted(
        jobs=[PageJob(page=positions.get(job.page_id or -1, 0), generation_id=job.id) for job in listed],
        skipped=[],
        estimated_cost_usd=0.0,
        status_url=f"{base_url}{status_path(book.id)}",  # type: ignore[arg-type]
    )


def accept(
    session: Session,
    settings: Settings,
    caller: Caller,
    book_id: int,
    body: IllustrateRequest,
    *,
    backend: str,
    prices: Mapping[str, Price] | None,
    now: datetime,
    idempotency_key: str | None,
) -> tuple[IllustrateAccepted, list[str]]:
    """Queue every page to draw in one write transaction; returns the answer and the ids to run now.

    Jobs waiting for an earlier page are queued but not returned for running: the earlier
    page's completion releases them.
    """
    body_hash = jobs.request_hash({"book": book_id, **body.model_dump(mode="json")})
    base = settings.public_base_url
    created: dict[int, Generation] = {}
    try:
        with write_transaction(session):
            lock_workspace(session, caller.workspace_id)  # the quota and the key: one writer at once
            lock_row(session, Book, book_id)  # the page list, as page edits take it (after the workspace)
            book = service.get_book(session, caller.workspace_id, book_id)
            if idempotency_key is not None:
                replay = _replay(session, caller, idempotency_key, body_hash, book, base)
                if replay is not None:
                    return replay, []
            pages = _pages_or_422(session, book)
            planned, skipped = _plan(session, settings, book, pages, body, backend, prices)
            quotas.check_batch(
                session,
                caller.workspace_id,
                body.n * len(planned),
                now=now,
                max_active=settings.max_active_jobs_per_workspace,
                default_quota=settings.daily_image_quota,
            )
            for item in planned:
                page = item.page
                waiting = item.waits_on
                waiting_on = created[waiting.id].id if isinstance(waiting, Page) else waiting  # type: ignore[index]
                job = new_job(
                    item.prepared.scene,
                    caller,
                    backend,
                    now,
                    idempotency_key=f"{idempotency_key}/{page.id}" if idempotency_key else None,
                    request_hash=body_hash,
                    book_id=book.id,
                    page_id=page.id,
                    waiting_on=waiting_on,
                )
                created[page.id] = job  # type: ignore[index]
                page.generation_id = job.id
                session.add(job)
                session.add(page)
    except IntegrityError:
        # A racing request with the same Idempotency-Key committed first: answer with its jobs
        # (write_transaction rolled back, so these reads run in a fresh transaction).
        if idempotency_key is None:
            raise
        book = service.get_book(session, caller.workspace_id, book_id)
        replay = _replay(session, caller, idempotency_key, body_hash, book, base)
        if replay is None:
            raise
        return replay, []
    answer = IllustrateAccepted(
        jobs=[PageJob(page=p.page.position + 1, generation_id=created[p.page.id].id) for p in planned],  # type: ignore[index]
        skipped=skipped,
        estimated_cost_usd=round(sum(p.cost for p in planned), 6),
        status_url=f"{base}{status_path(book.id)}",  # type: ignore[arg-type]
        dropped={p.page.position + 1: p.prepared.dropped for p in planned if p.prepared.dropped},
    )
    return answer, [job.id for job in created.values() if job.waiting_on is None]


# --- when a page's job finishes --------------------------------------------------------------


def _record_outputs(page: Page, job: Generation) -> None:
    """Append the outputs to the page's candidates; the first becomes the picture if none is chosen."""
    new = [n for n in job.image_numbers if n not in page.candidates]
    if new:
        page.candidates = [*page.candidates, *new]
    if page.image is None and job.image_numbers:
        page.image = job.image_numbers[0]


def _finalise(session: Session, waiting: Generation, source: Page | None) -> None:
    """Compose a released job's prompt with its source page's picture (if the source has one)."""
    book = session.get(Book, waiting.book_id) if waiting.book_id is not None else None
    page = session.get(Page, waiting.page_id) if waiting.page_id is not None else None
    if book is None or page is None:
        raise StoryloomError("the page was deleted before it was drawn", code="page_deleted")
    continuity = None
    if source is not None and source.image is not None:
        continuity = Continuity(source.position + 1, source.image)
    prepared = prepare_page(
        session,
        book,
        page,
        model=waiting.model,
        n=int(waiting.params["n"]),
        quality=str(waiting.params["quality"]),
        size=str(waiting.params["size"]),
        continuity=continuity,
    ).scene
    waiting.scene = prepared.scene
    waiting.prompt = prepared.prompt
    waiting.params = prepared.params.upstream()
    waiting.characters = prepared.characters
    waiting.reference_numbers = [r.number for r in prepared.references]


def page_job_finished(session: Session, job: Generation) -> list[str]:
    """The completion hook (runs in the transaction that finishes `job`): ids of jobs now free to run.

    Idempotent: outputs already on the page are not added twice, and only jobs still waiting
    on a finished job are released, so running it again for the same job changes nothing.
    """
    released: list[str] = []
    work = [job]
    while work:
        done = work.pop()
        if done.book_id is None or done.status not in jobs.TERMINAL:
            continue
        page = session.get(Page, done.page_id) if done.page_id is not None else None
        if page is not None and done.status == JobStatus.succeeded:
            _record_outputs(page, done)
            session.add(page)
        waiting = session.exec(select(Generation).where(Generation.waiting_on == done.id)).all()
        for dependant in waiting:
            dependant.waiting_on = None
            if dependant.status == JobStatus.queued:
                try:
                    _finalise(session, dependant, page)
                    released.append(dependant.id)
                except StoryloomError as exc:
                    jobs.mark_failed(dependant, exc)
                    work.append(dependant)
            session.add(dependant)
    return released
