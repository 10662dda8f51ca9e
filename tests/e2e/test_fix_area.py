"""Fix an area in a real headless Chromium: paint with the brush, describe the fix, get a masked edit.

Screenshots (desktop and phone) land in test-artifacts/screenshots/ like the author flow's.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.e2e.test_author_flow import ARGS, CHROMIUM, shoot
from tests.imagegen import png
from tests.servers import serve

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (requirements-dev.txt)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    app = create_app(make_settings(tmp_path / "data", rate_limit_per_minute=0))
    with serve(app) as base_url:
        yield base_url, new_key(app)


def test_paint_an_area_and_redraw_it(server: tuple[str, str]) -> None:
    base, key = server
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    mia = api.post("/characters", json={"name": "Mia", "description": "a girl with a yellow raincoat"}).json()
    picture = api.post(
        f"/characters/{mia['id']}/references", files=[("files", ("mia.png", png(5, (320, 240)), "image/png"))]
    )
    assert picture.status_code == 201, picture.text
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{base}/ui/login")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{base}/ui/library")
        page.get_by_role("link", name="Details of image 0").click()
        page.get_by_role("link", name="Fix an area of image 0").click()
        expect(page.get_by_role("heading", name="Fix an area of image 0", level=1)).to_be_visible()
        expect(page.get_by_label("Mia")).to_be_checked()  # the picture's character, preselected

        # Redraw without painting: the page says what is missing, nothing is sent.
        page.get_by_role("button", name="Redraw the painted area").click()
        expect(page.locator("#mask-error")).to_contain_text("Paint the area")

        canvas = page.locator(".paint canvas")
        box = canvas.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=8)
        page.mouse.up()
        page.get_by_label("What should the painted area show?").fill("a red kite in the sky")
        shoot(page, "20-fix-area-painted")
        page.get_by_role("button", name="Redraw the painted area").click()
        expect(page.locator("#fix-output .ok")).to_contain_text("Done: 1 picture")
        shoot(page, "21-fix-area-done")
        context.close()
        browser.close()

    [job] = api.get("/generations").json()["items"]
    assert job["reference_images"] == [0] and job["mask"] == 1
    assert [c["name"] for c in job["characters"]] == ["Mia"]
    mask = Image.open(io.BytesIO(api.get("/images/1/file").content))
    assert mask.size == (320, 240) and mask.mode == "RGBA"
    alpha = mask.getchannel("A")
    assert alpha.getpixel((160, 120)) == 0  # painted: redraw here
    assert alpha.getpixel((10, 10)) == 255 and alpha.getpixel((310, 230)) == 255  # untouched: keep
    api.close()
