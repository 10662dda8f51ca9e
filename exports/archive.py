"""The ZIP: every chosen picture at full resolution, the words, and a manifest to rebuild the book.

Pictures are copied (PNG) or converted (JPEG/WebP to PNG) one at a time straight into the
archive, stored uncompressed since PNG is compressed already; the archive is written to a path
the caller renames into place, so nobody sees half a ZIP.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from PIL import Image

from exports.spec import BookSpec, RenderResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def picture_name(number: int, pages: int) -> str:
    return f"page-{number:0{max(2, len(str(pages)))}d}.png"


def text_markdown(book: BookSpec) -> str:
    parts = [f"# {book.title}\n"]
    for page in book.pages:
        parts.append(f"## Page {page.number}\n\n{page.text.strip()}\n")
    return "\n".join(parts)


def _add_picture(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    with path.open("rb") as handle:
        is_png = handle.read(len(PNG_MAGIC)) == PNG_MAGIC
    if is_png:
        archive.write(path, name, compress_type=zipfile.ZIP_STORED)
        return
    with Image.open(path) as image, archive.open(name, "w", force_zip64=True) as member:
        image.save(member, format="PNG")


def write_zip(book: BookSpec, manifest: dict[str, object], out: Path) -> RenderResult:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for page in book.pages:
            if page.picture is not None:
                _add_picture(archive, page.picture.path, picture_name(page.number, len(book.pages)))
        archive.writestr("text.md", text_markdown(book))
        archive.writestr("book.json", json.dumps(manifest, indent=2, ensure_ascii=False))
    return RenderResult(pages=len(book.pages), bytes=out.stat().st_size)
