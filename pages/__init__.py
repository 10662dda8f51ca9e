"""The author's HTML pages: one router for the pages, their form posts and their fetch() endpoints."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse

from pages import actions, books, exports, fix_area, images, pages, scene
from pages.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(actions.router)
router.include_router(scene.router)
router.include_router(images.router)
router.include_router(fix_area.page_router)
router.include_router(fix_area.api_router)
router.include_router(books.router)
router.include_router(exports.router)


@router.get("/")
def home() -> RedirectResponse:
    """Authors who type the bare address land on their gallery (or the login page)."""
    return RedirectResponse("/ui", status_code=307)


def mount_web(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
