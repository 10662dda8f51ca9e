"""One job's run: claim it, call the backend, store the outputs in the library, or record why not.

Runs on the event loop but does every database, file and Pillow step in a worker thread.
Outputs and the job's `succeeded` status commit in one transaction, so an author never sees
a finished job without its images or images without their job. That transaction is fenced:
it locks the row and stores only if the row is still `running` with the attempt this run
claimed, so a cancelled job, or a run overtaken by another worker after a stall, keeps nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import anyio
from anyio import from_thread, to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from config import Settings
from errors import StoryloomError, UpstreamError
from generation import jobs
from generation.backends.base import BackendRequest, BackendResult, ImageBackend, ReferenceImage
from generation.models import Generation, JobStatus
from generation.params import SceneParams
from generation.pricing import Price, estimate_cost
from library import service as library
from library.models import Image
from library.similarity import SimilarityCache
from storage.db import write_session
from storage.decode_gate import DecodeGate
from storage.files import FileStore
from storage.imaging import CONTENT_TYPES, EXTENSIONS
from storage.space import is_disk_full
from storage.timeutil import utcnow

log = logging.getLogger("storyloom.jobs")


# Waits before retrying a claim that met a transient database error (then the job fails).
TRANSIENT_BACKOFF_SECONDS = (0.1, 0.5, 2.0)


def is_transient(exc: BaseException) -> bool:
    """SQLite busy beyond its timeout: worth another try a little later."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


def job_error(exc: BaseException) -> tuple[StoryloomError, int | None]:
    """The error a failed job records, with a code an author or operator can act on."""
    if isinstance(exc, StoryloomError):
        return exc, None
    if is_disk_full(exc):
        return StoryloomError("the server's disk is full; the job could not run", code="storage_full"), 507
    if isinstance(exc, FileNotFoundError):
        return (
            StoryloomError(
                "a reference image's file is missing on the server",
                field="reference_images",
                code="reference_missing",
            ),
            500,
        )
    return StoryloomError("the job failed because of an internal error", code="internal_error"), 500


# Told about every job that reaches succeeded or failed, inside the transaction that records it;
# answers the ids of jobs that may run now (a book page waiting for this one's picture).
FinishHook = Callable[[Session, Generation], list[str]]


@dataclass(frozen=True)
class Claimed:
    job_id: str
    workspace_id: int
    request: BackendRequest
    character_ids: tuple[int, ...] = ()  # the scene's cast: its outputs are tagged with them
    attempt: int = 0  # the job's attempt count this run claimed: the fence of its completion


class Superseded(Exception):
    """This run no longer holds its job (cancelled, finished elsewhere, claimed again): discard."""


# Told when a job starts (seconds it waited since accepted) and ends (seconds it ran).
JobObserver = Callable[[str, float], None]


class JobRunner:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        store: FileStore,
        backend: ImageBackend,
        similarity: SimilarityCache,
        prices: Mapping[str, Price] | None = None,
        decode_gate: DecodeGate | None = None,
        on_finished: FinishHook | None = None,
        observe: JobObserver | None = None,
    ) -> None:
        self.observe = observe
        self.decode_gate = decode_gate
        self.engine = engine
        self.settings = settings
        self.store = store
        self.backend = backend
        self.similarity = similarity
        self.prices = prices
        self.on_finished = on_finished
        # Set by whoever owns the queue: how released follow-up jobs are handed to it.
        self.enqueue: Callable[[str], Awaitable[None]] | None = None

    def _followups(self, session: Session, job: Generation | None) -> list[str]:
        if job is None or self.on_finished is None or job.status not in jobs.TERMINAL:
            return []
        return self.on_finished(session, job)

    def _submit(self, job_ids: list[str]) -> None:
        """Hand released jobs to the queue (called from a worker thread, after their commit)."""
        if self.enqueue is None:
            return
        for job_id in job_ids:
            from_thread.run(self.enqueue, job_id)

    def _observe(self, stage: str, start: datetime | None, end: datetime | None) -> None:
        if self.observe is not None and start is not None and end is not None:
            self.observe(stage, max(0.0, (end - start).total_seconds()))

    def cost_of(self, model: str, usage: Mapping[str, object] | None) -> float:
        """USD for one finished call (pricing decides which backends are free)."""
        return estimate_cost(model, usage, self.prices, backend=self.backend.name)

    async def __call__(self, job_id: str) -> Awaitable[None] | None:
        """Claim and call the backend; the storing is returned as a tail for the queue to run.

        Every failure path ends the job: a transient database error ("database is locked") is
        retried with backoff; anything else fails the job at once with a clear code.
        """
        try:
            claimed = await self._claim_with_retries(job_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the job; logged by _record_failure
            await self._record_failure(job_id, exc)
            return None
        if claimed is None:
            return None
        try:
            result = await self.backend.generate(claimed.request)
        except Exception as exc:  # noqa: BLE001 - recorded on the job; logged by _record_failure
            await self._record_failure(job_id, exc, claimed.attempt)
            return None
        return self._finish(claimed, result)

    async def _finish(self, claimed: Claimed, result: BackendResult) -> None:
        try:
            await to_thread.run_sync(self._complete, claimed, result)
        except Superseded:
            log.info("job %s: attempt %d no longer holds the job; outputs discarded", *_ids(claimed))
        except Exception as exc:  # noqa: BLE001 - recorded on the job; logged by _record_failure
            await self._record_failure(claimed.job_id, exc, claimed.attempt)

    async def _claim_with_retries(self, job_id: str) -> Claimed | None:
        for delay in (*TRANSIENT_BACKOFF_SECONDS, None):
            try:
                return await to_thread.run_sync(self._claim, job_id)
            except Exception as exc:
                if delay is None or not is_transient(exc):
                    raise
                log.warning("job %s: transient database error (%s); retrying in %.1f s", job_id, exc, delay)
                await anyio.sleep(delay)
        return None  # unreachable: the last round either returns or raises

    async def _record_failure(self, job_id: str, exc: Exception, attempt: int | None = None) -> None:
        error, status = job_error(exc)
        if error.code == "internal_error":
            log.exception("job %s failed unexpectedly", job_id, exc_info=exc)
        else:
            log.warning("job %s failed: %s (%s)", job_id, error.code, type(exc).__name__)
        try:
            await to_thread.run_sync(self._fail, job_id, error, status, attempt)
        except Exception:
            log.exception("job %s: could not record its failure; the watchdog will end it", job_id)

    def _claim(self, job_id: str) -> Claimed | None:
        followups: list[str] = []
        with write_session(self.engine) as session:
            job = jobs.claim(session, job_id, self.settings.max_job_attempts)
            if job is None:
                # Finished already, waiting, or just given up on (abandoned): only the last has news.
                followups = self._followups(session, session.get(Generation, job_id))
            else:
                snapshot = Generation.model_validate(job.model_dump())
                self._observe("queued", job.created_at, job.started_at)
        if job is None:
            self._submit(followups)
            return None
        try:
            request = self._backend_request(snapshot)
        except Exception as exc:
            error, status = job_error(exc)
            if error.code == "internal_error":
                log.exception("job %s: preparing the request failed", job_id, exc_info=exc)
            self._fail(job_id, error, status, snapshot.attempts)
            return None
        cast = tuple(c["id"] for c in snapshot.characters if isinstance(c.get("id"), int))
        return Claimed(job_id, snapshot.workspace_id, request, cast, snapshot.attempts)

    def _backend_request(self, job: Generation) -> BackendRequest:
        """Read the chosen reference files; an image deleted since the job was accepted fails it."""
        upstream = job.params
        mask_number = upstream.get("mask")
        numbers = job.reference_numbers
        wanted = [*numbers, mask_number] if mask_number is not None else numbers
        with Session(self.engine) as session:
            rows = session.exec(
                select(Image).where(Image.workspace_id == job.workspace_id, col(Image.number).in_(wanted))
            ).all()
        by_number = {image.number: image for image in rows}
        missing = [n for n in wanted if n not in by_number]
        if missing:
            what = "the mask" if missing[0] == mask_number else "reference image"
            raise StoryloomError(
                f"{what} {missing[0]} was deleted before the job ran",
                field="mask" if missing[0] == mask_number else "reference_images",
                code="unknown_image",
            )
        names = {
            n: tuple(c["name"] for c in job.characters if n in c.get("reference_images", [])) for n in numbers
        }
        references = [
            ReferenceImage(
                number=n,
                filename=f"image-{n}.{EXTENSIONS[by_number[n].format]}",
                content_type=CONTENT_TYPES[by_number[n].format],
                data=self._read(by_number[n].file_key),
                character_names=names.get(n, ()),
            )
            for n in numbers
        ]
        mask = None
        if mask_number is not None:
            mask = ReferenceImage(
                number=mask_number,
                filename=f"mask-{mask_number}.png",
                content_type="image/png",
                data=self._read(by_number[mask_number].file_key),
            )
        return BackendRequest(
            prompt=job.prompt,
            model=job.model,
            params=SceneParams.model_validate(job.params),
            references=references,
            scene=job.scene,
            mask=mask,
        )

    def _read(self, key: str) -> bytes:
        with self.store.open(key) as handle:
            return handle.read()

    def _complete(self, claimed: Claimed, result: BackendResult) -> None:
        try:
            processed = [
                library.prepare(
                    self.settings, image.data, gate=self.decode_gate, name=f"output {i + 1}", field="images"
                )
                for i, image in enumerate(result.images)
            ]
        except StoryloomError as exc:
            raise UpstreamError(f"the image service returned an unreadable image: {exc.message}") from exc

        def mark_succeeded(session: Session, stored: list[library.StoredImage]) -> None:
            job = jobs.locked(session, claimed.job_id)
            if not jobs.holds(job, claimed.attempt):
                raise Superseded(claimed.job_id)  # rolls back the images with it
            assert job is not None
            job.status = JobStatus.succeeded
            job.image_numbers = [s.image.number for s in stored]
            job.usage = result.usage
            job.estimated_cost_usd = self.cost_of(job.model, result.usage)
            job.revised_prompts = [image.revised_prompt for image in result.images]
            job.finished_at = utcnow()
            session.add(job)
            followups.extend(self._followups(session, job))
            finished.append(job)

        followups: list[str] = []
        finished: list[Generation] = []
        with Session(self.engine, expire_on_commit=False) as session:
            library.store_processed(
                session,
                self.settings,
                self.store,
                self.similarity,
                claimed.workspace_id,
                processed,
                kind="generated",
                generation_id=claimed.job_id,
                prompt=claimed.request.prompt,
                tags=claimed.character_ids,
                before_commit=mark_succeeded,
            )
        for job in finished:
            self._observe("run", job.started_at, job.finished_at)
        self._submit(followups)

    def _fail(
        self, job_id: str, error: StoryloomError, status: int | None = None, attempt: int | None = None
    ) -> None:
        """Record the failure; a run that claimed `attempt` fails the job only while it still holds it."""
        followups: list[str] = []
        with write_session(self.engine) as session:
            job = jobs.locked(session, job_id)
            if job is None or job.status in jobs.TERMINAL:
                return
            if attempt is not None and not jobs.holds(job, attempt):
                log.info("job %s: attempt %d no longer holds the job; failure not recorded", job_id, attempt)
                return
            jobs.mark_failed(job, error, status=status)
            session.add(job)
            followups = self._followups(session, job)
            self._observe("run", job.started_at, job.finished_at)
        self._submit(followups)


def _ids(claimed: Claimed) -> tuple[str, int]:
    return claimed.job_id, claimed.attempt
