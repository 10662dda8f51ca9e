"""Reading export PDFs back as a printer's preflight would: boxes, placed images, fonts, text, pixels.

pypdf reads the structure; Debian's poppler-utils (`pdffonts`, `pdftotext`, `pdftoppm`) give the
view an independent PDF reader has of the same file.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ContentStream

POINTS = 72.0


@dataclass(frozen=True)
class PlacedImage:
    name: str
    pixels: tuple[int, int]
    printed_pt: tuple[float, float]
    filters: tuple[str, ...]
    has_smask: bool

    @property
    def dpi(self) -> tuple[float, float]:
        return (
            self.pixels[0] / (self.printed_pt[0] / POINTS),
            self.pixels[1] / (self.printed_pt[1] / POINTS),
        )


def boxes(reader: PdfReader, index: int) -> dict[str, tuple[float, ...]]:
    page = reader.pages[index]
    return {
        name: tuple(float(v) for v in getattr(page, name)) for name in ("mediabox", "trimbox", "bleedbox")
    }


def _multiply(a: list[float], b: list[float]) -> list[float]:
    """PDF matrices [a b c d e f]; the result applies `a` then `b`."""
    return [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]


def placed_images(reader: PdfReader, index: int) -> list[PlacedImage]:
    """Every image XObject drawn on the page with the size the content stream prints it at."""
    page = reader.pages[index]
    xobjects = page["/Resources"].get_object().get("/XObject", {})
    content = ContentStream(page.get_contents(), reader)
    ctm, stack, found = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [], []
    for operands, operator in content.operations:
        if operator == b"q":
            stack.append(ctm)
        elif operator == b"Q":
            ctm = stack.pop()
        elif operator == b"cm":
            ctm = _multiply([float(v) for v in operands], ctm)
        elif operator == b"Do":
            xobject = xobjects[operands[0]].get_object()
            if xobject["/Subtype"] != "/Image":
                continue
            filters = xobject.get("/Filter", [])
            filters = [filters] if isinstance(filters, str) else list(filters)
            printed = (abs(ctm[0]) + abs(ctm[2]), abs(ctm[1]) + abs(ctm[3]))
            found.append(
                PlacedImage(
                    name=str(operands[0]),
                    pixels=(int(xobject["/Width"]), int(xobject["/Height"])),
                    printed_pt=printed,
                    filters=tuple(str(f) for f in filters),
                    has_smask="/SMask" in xobject,
                )
            )
    return found


def pdffonts(path: Path) -> list[dict[str, str]]:
    """`pdffonts` rows as dicts (name, type, emb); the header is two lines."""
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        parts = line.split()
        # name, type words..., encoding, emb, sub, uni, object, id
        rows.append({"name": parts[0], "emb": parts[-5], "type": " ".join(parts[1:-6])})
    return rows


def pdftotext(path: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-layout"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run([*args, str(path), "-"], capture_output=True, text=True, check=True).stdout


def render(path: Path, page: int, dpi: int, out_dir: Path) -> Image.Image:
    """Page `page` (1-based) as poppler draws it, the whole MediaBox, at `dpi`."""
    stem = out_dir / f"render-{path.stem}-{page}"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-png",
            "-singlefile",
            str(path),
            str(stem),
        ],
        check=True,
    )
    with Image.open(stem.with_suffix(".png")) as image:
        return image.convert("RGB")
