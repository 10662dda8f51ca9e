"""The cover PDF's size per paper, its boxes and title, and the ZIP's contents."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from exports.archive import write_zip
from exports.cover import render_cover
from exports.spec import BookSpec, CoverSpec, PageSpec, Picture
from tests.exports import pdfcheck

# PRINT.md: inches of spine per page.
THICKNESS = {"white": 0.002252, "cream": 0.0025, "premium-colour": 0.002347}


def book_of(pages: int, cover: CoverSpec, paper: str = "white", title: str = "Pip and the Wood") -> BookSpec:
    specs = tuple(PageSpec(n, f"Page {n}.", None) for n in range(1, pages + 1))
    return BookSpec(title, "8.5x8.5", specs, paper=paper, cover=cover)


@pytest.mark.parametrize("paper", sorted(THICKNESS))
def test_cover_width_for_32_pages_on_each_paper(
    paper: str, tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    out = tmp_path / f"cover-{paper}.pdf"
    result = render_cover(book_of(32, CoverSpec(make_picture(1, (2700, 2700))), paper), out)
    spine = 32 * THICKNESS[paper]
    assert result.spine_in == pytest.approx(spine, abs=0.0001)
    reader = PdfReader(out)
    assert len(reader.pages) == 1
    got = pdfcheck.boxes(reader, 0)
    width, height = (2 * 8.5 + spine + 0.25) * 72, (8.5 + 0.25) * 72
    assert got["mediabox"] == pytest.approx((0, 0, width, height), abs=0.5)
    assert got["bleedbox"] == pytest.approx((0, 0, width, height), abs=0.5)
    assert got["trimbox"] == pytest.approx((9, 9, width - 9, height - 9), abs=0.5)
    (front,) = pdfcheck.placed_images(reader, 0)
    assert min(front.dpi) >= 300
    # The front picture covers the front panel with its bleed: trim width + 0.125 in.
    assert front.printed_pt == pytest.approx((8.625 * 72, height), abs=0.5)
    text = pdfcheck.pdftotext(out)
    assert " ".join(text.split()) == "Pip and the Wood", "title on the front only; no spine text at 32 pages"
    assert all(font["emb"] == "yes" for font in pdfcheck.pdffonts(out))
    assert result.warnings == []


def test_thick_book_gets_spine_title_and_back_picture(
    tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    out = tmp_path / "thick.pdf"
    cover = CoverSpec(front=make_picture(1, (1024, 1024)), back=make_picture(2, (3000, 3000)))
    result = render_cover(book_of(120, cover, "cream", title="Spine"), out)
    assert result.spine_in == pytest.approx(0.3)
    assert pdfcheck.pdftotext(out).count("Spine") == 2
    reader = PdfReader(out)
    assert len(pdfcheck.placed_images(reader, 0)) == 2
    assert [(w.page, w.code) for w in result.warnings] == [(None, "low_resolution")]
    assert "front cover" in result.warnings[0].message


def test_cover_without_back_picture_is_painted_in_the_fronts_colour(
    tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    out = tmp_path / "plain.pdf"
    render_cover(book_of(32, CoverSpec(make_picture(colour=(200, 60, 40)))), out)
    image = pdfcheck.render(out, 1, 20, tmp_path)
    back = image.getpixel((image.width // 4, image.height // 2))
    assert max(abs(a - b) for a, b in zip(back, (200, 60, 40), strict=True)) < 10  # type: ignore[arg-type]


def test_zip_holds_full_size_pictures_text_and_manifest(
    tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    png = make_picture(1, (2000, 1500))
    jpeg = make_picture(2, (900, 700), fmt="JPEG")
    pages = (PageSpec(1, "One.", png), PageSpec(2, "Two.", None), PageSpec(3, "Three.", jpeg))
    manifest = {"title": "Pip", "pages": [{"number": 1, "image": 1}, {"number": 2, "image": None}]}
    out = tmp_path / "book.zip"
    write_zip(BookSpec("Pip", "8.5x8.5", pages), manifest, out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["book.json", "page-01.png", "page-03.png", "text.md"]
        assert archive.read("page-01.png") == png.path.read_bytes()
        with Image.open(io.BytesIO(archive.read("page-03.png"))) as image:
            assert (image.format, image.size) == ("PNG", (900, 700))
        assert json.loads(archive.read("book.json")) == manifest
        text = archive.read("text.md").decode()
    assert text.startswith("# Pip\n") and "## Page 2\n\nTwo.\n" in text and "Three." in text
