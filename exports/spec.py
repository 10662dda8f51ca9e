"""What the rendering engine is given and what it answers: plain, frozen data, no ORM rows.

Keeping the engine's input a value (not a Book row) lets it run off the event loop and outside
any database session, and lets tests and the benchmark drive it without the web app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PROFILES = ("print", "screen")
PAPERS = ("white", "cream", "premium-colour")
FORMATS = ("pdf", "zip")
TEXT_POSITIONS = ("bottom", "top", "none")


@dataclass(frozen=True)
class Picture:
    """A library picture on local disk; `size` from the Image row avoids opening the file to plan."""

    path: Path
    size: tuple[int, int]
    number: int | None = None


@dataclass(frozen=True)
class PageSpec:
    number: int
    text: str
    picture: Picture | None = None


@dataclass(frozen=True)
class CoverSpec:
    front: Picture
    back: Picture | None = None


@dataclass(frozen=True)
class BookSpec:
    title: str
    trim: str
    pages: tuple[PageSpec, ...]
    text_position: str = "bottom"
    profile: str = "print"
    paper: str = "white"
    cover: CoverSpec | None = None


@dataclass(frozen=True)
class ExportWarning:
    """One thing a printer or a reader would notice; `page` is None for the book or its cover."""

    page: int | None
    code: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"page": self.page, "code": self.code, "message": self.message}


@dataclass
class RenderResult:
    pages: int
    bytes: int
    warnings: list[ExportWarning] = field(default_factory=list)
    spine_in: float | None = None
    previews: int = 0
