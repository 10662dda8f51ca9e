"""The interior PDF read back as a printer's preflight would (pypdf + poppler-utils)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from exports.interior import render_interior
from exports.spec import BookSpec, PageSpec, Picture
from tests.exports import pdfcheck

TRIMS = {"8.5x8.5": (8.5, 8.5), "8x10": (8.0, 10.0)}


def expected_boxes(trim: tuple[float, float], number: int) -> dict[str, tuple[float, ...]]:
    """PRINT.md: + 0.125 in wide, + 0.25 in tall; odd pages bleed on the right, even on the left."""
    w, h = trim[0] * 72, trim[1] * 72
    media = (0.0, 0.0, w + 9.0, h + 18.0)
    x0 = 0.0 if number % 2 else 9.0
    return {"mediabox": media, "bleedbox": media, "trimbox": (x0, 9.0, x0 + w, 9.0 + h)}


def assert_close(got: tuple[float, ...], want: tuple[float, ...], tolerance: float = 0.5) -> None:
    assert len(got) == len(want) and all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True)), (
        got,
        want,
    )


@pytest.mark.parametrize("trim", sorted(TRIMS))
def test_print_pdf_has_the_printers_boxes_300_dpi_pictures_and_embedded_text(
    trim: str, tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    pages = (
        PageSpec(1, "Pip the fox lived at the edge of the wood.", make_picture(1, (1024, 1024))),
        PageSpec(2, "Every morning Pip ran to the river.", make_picture(2, (2700, 2900), fmt="JPEG")),
        PageSpec(3, "Nobody had drawn this page yet.", None),
        PageSpec(4, "The end, said the owl.", make_picture(4, (1536, 1024))),
    )
    out = tmp_path / "interior.pdf"
    result = render_interior(BookSpec("Pip", trim, pages), out)

    reader = PdfReader(out)
    assert len(reader.pages) == 4 == result.pages
    for index in range(4):
        got = pdfcheck.boxes(reader, index)
        for name, want in expected_boxes(TRIMS[trim], index + 1).items():
            assert_close(got[name], want)
    for index in (0, 1, 3):
        (image,) = pdfcheck.placed_images(reader, index)
        assert image.dpi[0] >= 300 and image.dpi[1] >= 300, image
        assert_close(image.printed_pt, got["mediabox"][2:])  # full bleed: the picture covers the page
        assert image.filters == ("/DCTDecode",)
    assert pdfcheck.placed_images(reader, 2) == []

    fonts = pdfcheck.pdffonts(out)
    assert fonts and all(font["emb"] == "yes" for font in fonts), fonts
    assert all("TrueType" in font["type"] for font in fonts)
    for number, page in enumerate(pages, start=1):
        assert " ".join(pdfcheck.pdftotext(out, number).split()) == page.text


def test_warnings_name_the_page_in_plain_words(tmp_path: Path, make_picture: Callable[..., Picture]) -> None:
    pages = (
        PageSpec(1, "Small picture.", make_picture(1, (1024, 1024))),
        PageSpec(2, "Big picture.", make_picture(2, (2700, 2700))),
        PageSpec(3, "No picture.", None),
    )
    result = render_interior(BookSpec("Pip", "8.5x8.5", pages), tmp_path / "w.pdf")
    found = {(w.page, w.code): w.message for w in result.warnings}
    assert set(found) == {(None, "page_count"), (1, "low_resolution"), (3, "no_picture")}
    # 1024 px across the 8.75 in tall page (cover-fit, the tighter axis) is 117 DPI.
    assert "117 DPI" in found[(1, "low_resolution")]
    assert "3 pages" in found[(None, "page_count")] and "24" in found[(None, "page_count")]


def test_24_pages_is_enough_for_premium_colour(tmp_path: Path) -> None:
    pages = tuple(PageSpec(n, f"Page {n}.", None) for n in range(1, 25))
    result = render_interior(BookSpec("Pip", "8x8", pages), tmp_path / "p.pdf")
    assert {w.code for w in result.warnings} == {"no_picture"}


def test_rendered_page_shows_the_picture_and_keeps_the_panel_in_the_safe_area(
    tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    dark = (30, 40, 110)
    words = "Under a dark blue sky the fox counted the stars one by one until she fell asleep. " * 3
    pages = (
        PageSpec(1, words, make_picture(colour=dark)),
        PageSpec(2, words, make_picture(colour=dark)),
        PageSpec(3, "A busy picture.", make_picture(7, (1024, 1024))),
    )
    out = tmp_path / "look.pdf"
    for position in ("bottom", "top"):
        render_interior(BookSpec("Pip", "8.5x8.5", pages, text_position=position), out)
        reader = PdfReader(out)
        dpi = 50
        for number in (1, 2):
            image = np.asarray(pdfcheck.render(out, number, dpi, tmp_path)).astype(int)
            dark_share = (np.abs(image - np.array(dark)).max(axis=2) < 12).mean()
            assert dark_share > 0.5, "the picture fills the page"
            ys, xs = np.nonzero(image.min(axis=2) > 150)
            assert len(xs), "a light text panel is drawn"
            # Back to points, PDF's bottom-left origin; poppler renders the MediaBox.
            scale = 72 / dpi
            height = float(reader.pages[number - 1].mediabox.height)
            panel = (
                min(xs) * scale,
                height - (max(ys) + 1) * scale,
                (max(xs) + 1) * scale,
                height - min(ys) * scale,
            )
            trim = pdfcheck.boxes(reader, number - 1)["trimbox"]
            safe = (trim[0] + 27, trim[1] + 27, trim[2] - 27, trim[3] - 27)  # 0.375 in
            slack = scale  # one rendered pixel
            assert panel[0] >= safe[0] - slack and panel[1] >= safe[1] - slack, (panel, safe)
            assert panel[2] <= safe[2] + slack and panel[3] <= safe[3] + slack, (panel, safe)
            if position == "bottom":
                assert panel[1] < height / 2
            else:
                assert panel[3] > height / 2
        busy = np.asarray(pdfcheck.render(out, 3, 20, tmp_path).convert("L")).astype(float)
        assert busy.std() > 25 and busy.mean() < 240, "the busy picture is drawn, not a blank page"


def test_long_text_shrinks_then_warns(tmp_path: Path, make_picture: Callable[..., Picture]) -> None:
    long_text = "A very long page of words that goes on. " * 100
    huge_text = "Words. " * 3000
    pages = (
        PageSpec(1, "Short.", make_picture(1, (2700, 2700))),
        PageSpec(2, long_text, make_picture(2, (2700, 2700))),
        PageSpec(3, huge_text, make_picture(3, (2700, 2700))),
    )
    out = tmp_path / "long.pdf"
    result = render_interior(BookSpec("Pip", "8.5x8.5", pages), out)
    codes = {(w.page, w.code) for w in result.warnings}
    assert (2, "small_text") in codes and (3, "text_cut") in codes
    assert not any(w.page == 1 for w in result.warnings)
    assert "pt" in next(w.message for w in result.warnings if w.page == 2)
    assert "A very long page" in pdfcheck.pdftotext(out, 2)


def test_transparent_picture_is_flattened_and_kept_lossless(
    tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    pages = (PageSpec(1, "See-through.", make_picture(1, (1024, 1024), alpha=True)),)
    out = tmp_path / "alpha.pdf"
    render_interior(BookSpec("Pip", "8.5x8.5", pages), out)
    (image,) = pdfcheck.placed_images(PdfReader(out), 0)
    assert "/DCTDecode" not in image.filters and not image.has_smask


def test_text_position_none_prints_no_words(tmp_path: Path, make_picture: Callable[..., Picture]) -> None:
    pages = (PageSpec(1, "Hidden words.", make_picture(1, (1024, 1024))),)
    out = tmp_path / "none.pdf"
    render_interior(BookSpec("Pip", "8.5x8.5", pages, text_position="none"), out)
    assert "Hidden" not in pdfcheck.pdftotext(out)


def test_screen_profile_is_trim_sized_at_150_dpi(
    tmp_path: Path, make_picture: Callable[..., Picture]
) -> None:
    pages = (PageSpec(1, "Share me.", make_picture(1, (2700, 2700))), PageSpec(2, "Two.", make_picture(2)))
    out = tmp_path / "screen.pdf"
    result = render_interior(BookSpec("Pip", "8x10", pages, profile="screen"), out)
    reader = PdfReader(out)
    for index in range(2):
        got = pdfcheck.boxes(reader, index)
        for name in ("mediabox", "trimbox", "bleedbox"):
            assert_close(got[name], (0.0, 0.0, 576.0, 720.0))
        (image,) = pdfcheck.placed_images(reader, index)
        assert 150 <= min(image.dpi) < 152
    assert "page_count" not in {w.code for w in result.warnings}
