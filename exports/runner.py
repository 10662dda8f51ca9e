"""Rendering exports off the event loop: a small thread pool, one export per thread at a time.

The pool is bounded (EXPORT_CONCURRENCY, default 1) because each export holds a full-size page
in memory while it renders. `run_export` takes plain arguments (`ExportWork`), so any worker
process can run it. Rendering happens in this process's scratch folder; the finished PDF/ZIP,
cover and previews go into the export blob store (local folder or S3), and the row is only
marked done once they are all there, so any API process on any host can serve them.

Several processes share the table, so an export is *claimed* before it renders: one UPDATE sets
`running`, `lease_owner` (this process) and `lease_until`, and only where the export is queued or
its lease ran out. The renderer renews the lease every LEASE_SECONDS / 4 while it works; a
start-up (`resume_unfinished`) or a status poll re-submits queued and lease-expired exports only,
so a live process's export is never rendered twice, and a dead one's is taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from config import Settings
from errors import NotFound
from exports import service
from exports.archive import write_zip
from exports.cover import render_cover
from exports.interior import render_interior
from exports.models import Export, ExportStatus
from exports.preview import render_previews
from exports.spec import RenderResult
from storage.db import write_session
from storage.files import FileStore
from storage.timeutil import utcnow

log = logging.getLogger("storyloom.exports")
# How long a claim holds without renewal: a renderer that died is taken over this long after.
LEASE_SECONDS = 60.0


@dataclass
class ExportWork:
    """What rendering needs, as plain parts: a worker process builds the same from its settings."""

    engine: Engine
    settings: Settings
    images: FileStore
    exports: FileStore
    scratch: Path  # this process's own temp folder
    owner: str  # this process's lease owner id
    lease_seconds: float = LEASE_SECONDS
    # Set when the process stops: an export cut off then is left to its lease, not marked failed.
    stopping: threading.Event = field(default_factory=threading.Event)


def _claimable(now: object) -> object:
    expired = or_(col(Export.lease_until).is_(None), col(Export.lease_until) < now)
    return or_(
        col(Export.status) == ExportStatus.QUEUED,
        (col(Export.status) == ExportStatus.RUNNING) & expired,
    )


def claim(work: ExportWork, export_id: int) -> bool:
    """Take the export for this process if it is queued or its renderer's lease ran out."""
    now = utcnow()
    with write_session(work.engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(Export)
            .where(col(Export.id) == export_id, _claimable(now))
            .values(
                status=ExportStatus.RUNNING,
                lease_owner=work.owner,
                lease_until=now + timedelta(seconds=work.lease_seconds),
            )
        )
        return bool(result.rowcount == 1)


def _renew(work: ExportWork, export_id: int) -> bool:
    """Push the lease on; False when another process has taken the export over meanwhile."""
    with write_session(work.engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(Export)
            .where(col(Export.id) == export_id, col(Export.lease_owner) == work.owner)
            .values(lease_until=utcnow() + timedelta(seconds=work.lease_seconds))
        )
        return bool(result.rowcount == 1)


@contextlib.contextmanager
def _heartbeat(work: ExportWork, export_id: int) -> Iterator[None]:
    done = threading.Event()

    def beat() -> None:
        while not done.wait(work.lease_seconds / 4):
            try:
                if not _renew(work, export_id):
                    return
            except Exception:
                log.exception("export %s: lease renewal failed", export_id)

    thread = threading.Thread(target=beat, name=f"export-{export_id}-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _job(work: ExportWork, export_id: int, pictures: Path) -> tuple[Export, service.Job] | None:
    with Session(work.engine, expire_on_commit=False) as session:
        export = session.get(Export, export_id)
        if export is None or export.lease_owner != work.owner:
            return None
        return export, service.build_job(session, work.images, export, pictures)


def _render(job: service.Job, export: Export, out: Path) -> tuple[RenderResult, RenderResult | None]:
    name = service.FILE_NAMES[export.format]
    if export.format == "zip":
        return write_zip(job.spec, job.manifest, out / name), None
    interior = render_interior(job.spec, out / name)
    interior.previews = render_previews(out / name, out)
    cover = render_cover(job.spec, out / service.COVER_NAME) if job.spec.cover is not None else None
    return interior, cover


def run_export(work: ExportWork, export_id: int) -> None:
    """Claim, render into a scratch folder, put the files into the store, then record them."""
    if not claim(work, export_id):
        return  # done, gone, or another live process holds it
    work.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=work.scratch, prefix=f"export-{export_id}-"))
    try:
        with _heartbeat(work, export_id):
            try:
                found = _job(work, export_id, scratch / "in")
            except NotFound as exc:  # the book went away between the request and the start
                _fail(work, export_id, exc.message)
                return
            if found is None:
                return
            export, job = found
            out = scratch / "out"
            out.mkdir()
            interior, cover = _render(job, export, out)
            folder = service.folder_of(export).as_posix()
            for item in sorted(out.iterdir()):
                if item.is_file():
                    work.exports.put_file(f"{folder}/{item.name}", item)
            _finish(work, export, interior, cover)
    except Exception as exc:
        if work.stopping.is_set():
            log.warning("export %s cut off by shutdown; its lease lets another process resume it", export_id)
            return
        log.exception("export %s failed", export_id)
        _fail(work, export_id, f"rendering failed: {type(exc).__name__}: {exc}"[:2000])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _finish(work: ExportWork, rendered: Export, interior: RenderResult, cover: RenderResult | None) -> None:
    with write_session(work.engine) as session:
        export = session.get(Export, rendered.id)
        if export is None:  # deleted while it rendered: nobody will fetch these files
            service.remove_dirs(work.exports, [service.folder_of(rendered)])
            return
        if export.lease_owner != work.owner:  # taken over (we stalled): the new owner records it
            return
        relative = service.folder_of(export).as_posix()
        export.file_key = f"{relative}/{service.FILE_NAMES[export.format]}"
        export.bytes = interior.bytes
        export.previews = interior.previews
        warnings = list(interior.warnings)
        if cover is not None:
            export.cover_key = f"{relative}/{service.COVER_NAME}"
            export.cover_bytes = cover.bytes
            export.spine_in = cover.spine_in
            warnings += cover.warnings
        export.warnings = [w.as_dict() for w in warnings]
        export.status = ExportStatus.SUCCEEDED
        export.finished_at = utcnow()
        export.lease_owner, export.lease_until = None, None
        session.add(export)


def _fail(work: ExportWork, export_id: int, message: str) -> None:
    with write_session(work.engine) as session:
        export = session.get(Export, export_id)
        if export is not None and export.lease_owner == work.owner:
            export.status = ExportStatus.FAILED
            export.error = message
            export.finished_at = utcnow()
            export.lease_owner, export.lease_until = None, None
            session.add(export)


def unattended(export: Export) -> bool:
    """Queued, or running under a lease that ran out: no live process is rendering it."""
    if export.status == ExportStatus.QUEUED:
        return True
    return export.status == ExportStatus.RUNNING and (
        export.lease_until is None or export.lease_until < utcnow()
    )


def resumable_ids(engine: Engine) -> list[int]:
    """Exports queued, or running under a lease that ran out (their renderer died)."""
    with Session(engine) as session:
        stmt = select(Export.id).where(_claimable(utcnow())).order_by(col(Export.id))
        return [int(export_id) for export_id in session.exec(stmt).all() if export_id is not None]


class ExportRunner:
    """The process's export pool; `submit` is idempotent for an export already in flight."""

    def __init__(self, work: ExportWork) -> None:
        self.work = work
        self._pool = ThreadPoolExecutor(
            max_workers=work.settings.export_concurrency, thread_name_prefix="export"
        )
        self._lock = threading.Lock()
        self._inflight: dict[int, Future[None]] = {}

    def submit(self, export_id: int) -> Future[None]:
        with self._lock:
            future = self._inflight.get(export_id)
            if future is None or future.done():
                future = self._pool.submit(run_export, self.work, export_id)
                self._inflight[export_id] = future
                future.add_done_callback(lambda _: self._forget(export_id))
            return future

    def _forget(self, export_id: int) -> None:
        with self._lock:
            future = self._inflight.get(export_id)
            if future is not None and future.done():
                del self._inflight[export_id]

    def resume_unfinished(self) -> int:
        """Queue again what no live process holds: queued exports and those whose lease expired."""
        ids = resumable_ids(self.work.engine)
        for export_id in ids:
            self.submit(export_id)
        return len(ids)

    async def wait(self, export_id: int, seconds: float) -> bool:
        """Submit (or join) the export and wait up to `seconds` without blocking the event loop;
        True when it finished in time. The render goes on either way."""
        future = self.submit(export_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), seconds)
        return future.done()

    def shutdown(self) -> None:
        """Stop taking work; an export mid-render finishes, or its lease lets the next start resume it."""
        self.work.stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
