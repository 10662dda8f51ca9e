"""Exporting a book from its page in a real headless Chromium: the panel, the warnings in plain words, the
preview drawn from the PDF, and the download, which is read back as a PDF."""

from __future__ import annotations

import re

import httpx
from pypdf import PdfReader

from tests.e2e.test_author_flow import pytestmark, shoot, sync_api  # noqa: F401
from tests.imagegen import png


def four_page_book(base: str, key: str) -> int:
    """Through the API: 4 pages, pictures chosen on pages 1, 2 and 4 (1024 px, so upscaled)."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=60) as api:
        book = api.post("/books", json={"title": "Pip and the River"}).json()
        text = "Pip woke up early.\n\nPip ran to the river.\n\nThe river was wide.\n\nPip went home."
        pages = api.post(f"/books/{book['id']}/manuscript", json={"text": text}).json()["pages"]
        files = [("files", (f"p{i}.png", png(i, (1024, 1024)), "image/png")) for i in range(3)]
        numbers = [item["number"] for item in api.post("/images", files=files).json()["images"]]
        for page_, number in zip([pages[0], pages[1], pages[3]], numbers, strict=True):
            assert (
                api.patch(f"/books/{book['id']}/pages/{page_['id']}", json={"image": number}).status_code
                == 200
            )
    return int(book["id"])


def test_export_a_four_page_book_see_the_warnings_and_download_the_pdf(
    page: object, server: tuple[str, str]
) -> None:
    base, key = server
    expect = sync_api.expect
    book_id = four_page_book(base, key)

    page.goto(f"{base}/ui/login")  # type: ignore[attr-defined]
    page.get_by_label("API key").fill(key)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    page.goto(f"{base}/ui/books/{book_id}")  # the Export panel is on the book page  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Export", exact=True)).to_be_visible()  # type: ignore[attr-defined]

    # A cover number that is not in the library comes back next to its field.
    page.get_by_label("Cover picture (library number, optional)").fill("99")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Export 4 pages").click()  # type: ignore[attr-defined]
    expect(page.locator("#export-cover_image-error")).to_contain_text("Image 99 is not in this workspace")  # type: ignore[attr-defined]

    page.get_by_label("Cover picture (library number, optional)").fill("0")  # type: ignore[attr-defined]
    page.get_by_label("Paper (sets the cover's spine)").select_option("cream")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Export 4 pages").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Export ready")  # type: ignore[attr-defined]
    expect(page).to_have_url(re.compile(rf"/ui/books/{book_id}#export-1$"))

    warnings = page.get_by_role("region", name="Warnings for export 1")  # type: ignore[attr-defined]
    expect(warnings).to_contain_text("Page 3 has no chosen picture; it prints text only.")
    expect(warnings).to_contain_text("Page 1's picture is 117 DPI at print size")
    expect(warnings).to_contain_text("premium-colour print needs 24+")
    previews = page.get_by_role("list", name="First pages as printed").locator("img")  # type: ignore[attr-defined]
    expect(previews).to_have_count(4)
    loaded = (
        "() => [...document.querySelectorAll('.previews img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.wait_for_function(loaded)  # type: ignore[attr-defined]
    shoot(page, "10-book-export")

    with page.expect_download() as download_info:  # type: ignore[attr-defined]
        page.get_by_role("link", name="Download the interior PDF").click()  # type: ignore[attr-defined]
    download = download_info.value
    assert download.suggested_filename == "pip-and-the-river-interior.pdf"
    reader = PdfReader(download.path())
    assert len(reader.pages) == 4
    assert "The river was wide." in reader.pages[2].extract_text()
    with page.expect_download() as cover_info:  # type: ignore[attr-defined]
        page.get_by_role("link", name="Download the cover PDF").click()  # type: ignore[attr-defined]
    assert len(PdfReader(cover_info.value.path()).pages) == 1
