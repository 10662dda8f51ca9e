"""Rendering exports off the event loop: a small thread pool, one export per thread at a time.

The pool is bounded (EXPORT_CONCURRENCY, default 1) because each export holds a full-size page
in memory while it renders. `run_export` takes plain arguments (engine, settings, image store, id), so any
worker process can run it. A queued or running row with no live task here (the process died)
is submitted again at start-up, and the row is only marked done once its files are in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine
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


def _start(engine: Engine, store: FileStore, export_id: int) -> service.Job | None:
    with write_session(engine) as session:
        export = session.get(Export, export_id)
        if export is None or export.status in (ExportStatus.SUCCEEDED, ExportStatus.FAILED):
            return None
        export.status = ExportStatus.RUNNING
        session.add(export)
        return service.build_job(session, store, export)


def _render(job: service.Job, export: Export, scratch: Path) -> tuple[RenderResult, RenderResult | None]:
    name = service.FILE_NAMES[export.format]
    if export.format == "zip":
        return write_zip(job.spec, job.manifest, scratch / name), None
    interior = render_interior(job.spec, scratch / name)
    interior.previews = render_previews(scratch / name, scratch)
    cover = render_cover(job.spec, scratch / service.COVER_NAME) if job.spec.cover is not None else None
    return interior, cover


def run_export(engine: Engine, settings: Settings, store: FileStore, export_id: int) -> None:
    """Render one export into a scratch folder, move the files into place, then record them."""
    try:
        job = _start(engine, store, export_id)
    except NotFound as exc:  # the book went away between the request and the start
        _fail(engine, export_id, exc.message)
        return
    if job is None:
        return
    with Session(engine) as session:
        export = session.get(Export, export_id)
    if export is None:
        return
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=settings.tmp_dir, prefix=f"export-{export_id}-"))
    try:
        interior, cover = _render(job, export, scratch)
        target = service.export_dir(settings, export)
        target.mkdir(parents=True, exist_ok=True)
        for item in scratch.iterdir():
            if item.is_file():
                os.replace(item, target / item.name)
        _finish(engine, export_id, interior, cover, target)
    except Exception as exc:
        log.exception("export %s failed", export_id)
        _fail(engine, export_id, f"rendering failed: {type(exc).__name__}: {exc}"[:2000])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _finish(
    engine: Engine, export_id: int, interior: RenderResult, cover: RenderResult | None, target: Path
) -> None:
    with write_session(engine) as session:
        export = session.get(Export, export_id)
        if export is None:  # deleted while it rendered: nobody will fetch these files
            shutil.rmtree(target, ignore_errors=True)
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
        session.add(export)


def _fail(engine: Engine, export_id: int, message: str) -> None:
    with write_session(engine) as session:
        export = session.get(Export, export_id)
        if export is not None:
            export.status = ExportStatus.FAILED
            export.error = message
            export.finished_at = utcnow()
            session.add(export)


class ExportRunner:
    """The process's export pool; `submit` is idempotent for an export already in flight."""

    def __init__(self, engine: Engine, settings: Settings, store: FileStore) -> None:
        self.engine = engine
        self.settings = settings
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=settings.export_concurrency, thread_name_prefix="export")
        self._lock = threading.Lock()
        self._inflight: dict[int, Future[None]] = {}

    def submit(self, export_id: int) -> Future[None]:
        with self._lock:
            future = self._inflight.get(export_id)
            if future is None or future.done():
                future = self._pool.submit(run_export, self.engine, self.settings, self.store, export_id)
                self._inflight[export_id] = future
                future.add_done_callback(lambda _: self._forget(export_id))
            return future

    def _forget(self, export_id: int) -> None:
        with self._lock:
            future = self._inflight.get(export_id)
            if future is not None and future.done():
                del self._inflight[export_id]

    def resume_unfinished(self) -> int:
        """Queue again what a previous process left queued or running (its scratch files are gone)."""
        with Session(self.engine) as session:
            stmt = select(Export.id).where(
                col(Export.status).in_([ExportStatus.QUEUED, ExportStatus.RUNNING])
            )
            ids = list(session.exec(stmt).all())
        for export_id in ids:
            self.submit(export_id)  # type: ignore[arg-type]
        return len(ids)

    async def wait(self, export_id: int, seconds: float) -> bool:
        """Submit (or join) the export and wait up to `seconds` without blocking the event loop;
        True when it finished in time. The render goes on either way."""
        future = self.submit(export_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), seconds)
        return future.done()

    def shutdown(self) -> None:
        """Stop taking work; an export mid-render finishes (or is resumed by the next start)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
