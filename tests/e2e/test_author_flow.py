"""The whole author loop in a real headless Chromium (Playwright), against a real uvicorn server.

Log in, create a character, upload two references, reorder them, pick references in the
library, preview the prompt, generate with the offline draft backend (progress, then the
result), promote the result to a reference, log out and find the pages closed. Screenshots of
every page, at desktop and phone widths, land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.service import create_key
from api_server import create_app
from storage.db import write_session
from tests.conftest import make_settings
from tests.imagegen import png
from tests.servers import serve

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (requirements-dev.txt)")

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A live app on 127.0.0.1 with the draft backend, and an API key for workspace `alpha`."""
    app = create_app(make_settings(tmp_path / "data", rate_limit_per_minute=0))
    with serve(app) as base_url:
        with write_session(app.state.runtime.engine) as session:
            _, key = create_key(session, name="author", workspace="alpha")
        yield base_url, key


@pytest.fixture
def page(server: tuple[str, str]) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        new_page = context.new_page()
        # The pages' CSP allows only our own script and stylesheet: anything it blocks is a bug.
        blocked: list[str] = []
        new_page.on(
            "console",
            lambda message: (
                blocked.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield new_page
        context.close()
        browser.close()
        assert blocked == [], blocked


def shoot(page: object, name: str) -> None:
    """Save the page at desktop (1280 px) and at phone (390 px) width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]


def nav(page: object, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()  # type: ignore[attr-defined]


def ref_alts(page: object) -> list[str]:
    return page.locator("ol.refs img").evaluate_all("els => els.map(e => e.alt)")  # type: ignore[attr-defined]


def test_author_flow_from_login_to_promoted_scene(page: object, server: tuple[str, str]) -> None:
    base, key = server
    expect = sync_api.expect

    # Closed until logged in: the gallery redirects to the login page.
    page.goto(f"{base}/ui")  # type: ignore[attr-defined]
    expect(page).to_have_url(re.compile(r"/ui/login"))
    shoot(page, "01-login")
    page.get_by_label("API key").fill(key)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Characters", level=1)).to_be_visible()  # type: ignore[attr-defined]

    # Create a character; an empty description first shows the message next to the field.
    page.get_by_label("Name").fill("Mia")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create character").click()  # type: ignore[attr-defined]
    expect(page.locator("#description-error")).to_contain_text("required")  # type: ignore[attr-defined]
    shoot(page, "02-gallery-validation")
    page.get_by_label("Description").fill("A girl of eight with a yellow raincoat and red boots")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create character").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Mia", level=1)).to_be_visible()  # type: ignore[attr-defined]

    # Upload two references at once.
    page.locator("#files").set_input_files(  # type: ignore[attr-defined]
        [
            {"name": "mia-front.png", "mimeType": "image/png", "buffer": png(11, (256, 256))},
            {"name": "mia-side.png", "mimeType": "image/png", "buffer": png(12, (256, 256))},
        ]
    )
    page.get_by_role("button", name="Upload").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Added images 0, 1.")  # type: ignore[attr-defined]
    assert ref_alts(page) == ["Image 0 — Mia", "Image 1 — Mia"]

    # Reorder with the keyboard-reachable buttons.
    page.get_by_role("button", name="Move image 1 up").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Moved image 1 up.")  # type: ignore[attr-defined]
    assert ref_alts(page) == ["Image 1 — Mia", "Image 0 — Mia"]
    shoot(page, "03-character")

    # The gallery shows the (new) first reference as the thumbnail.
    nav(page, "Characters")  # type: ignore[attr-defined]
    expect(page.get_by_role("img", name="Image 1 — Mia")).to_be_visible()  # type: ignore[attr-defined]
    shoot(page, "04-gallery")

    # Pick references in the library: click order is the picked order.
    nav(page, "Library")  # type: ignore[attr-defined]
    page.locator('button.pick[data-number="0"]').click()  # type: ignore[attr-defined]
    page.locator('button.pick[data-number="1"]').click()  # type: ignore[attr-defined]
    expect(page.get_by_label("Picked for the scene (in order)")).to_have_value("0 1")  # type: ignore[attr-defined]
    expect(page.locator('button.pick[data-number="0"]')).to_have_attribute("aria-pressed", "true")  # type: ignore[attr-defined]
    expect(page.locator('button.pick[data-number="1"] .order')).to_have_text("2nd")  # type: ignore[attr-defined]
    shoot(page, "05-library")
    page.get_by_role("button", name="Use in a scene").click()  # type: ignore[attr-defined]
    expect(page.get_by_label("Image numbers")).to_have_value("0, 1")  # type: ignore[attr-defined]
    # The pictures brought Mia along: her card is ticked.
    expect(page.get_by_role("checkbox", name=re.compile("Mia"))).to_be_checked()  # type: ignore[attr-defined]

    # Preview the exact prompt (dry run).
    page.get_by_label("What happens").fill("Mia jumps into a puddle")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Preview prompt").click()  # type: ignore[attr-defined]
    prompt = page.locator(".preview pre.prompt")  # type: ignore[attr-defined]
    expect(prompt).to_contain_text("Mia jumps into a puddle")
    expect(prompt).to_contain_text("yellow raincoat")
    expect(page.locator(".preview")).to_contain_text("Estimated cost")  # type: ignore[attr-defined]
    shoot(page, "06-scene-preview")

    # Generate: the page shows progress, polls the job, then the result.
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/ui/api/generations/" in r.url else None)  # type: ignore[attr-defined]
    page.evaluate(  # type: ignore[attr-defined]
        """() => { window.seen = []; const out = document.getElementById('scene-output');
        new MutationObserver(() => window.seen.push(out.innerText))
          .observe(out, {childList: true, subtree: true}); }"""
    )
    page.get_by_role("button", name="Generate").click()  # type: ignore[attr-defined]
    result = page.get_by_role("img", name=re.compile(r"Image 2 — generated scene"))  # type: ignore[attr-defined]
    expect(result).to_be_visible()
    seen = page.evaluate("() => window.seen")  # type: ignore[attr-defined]
    assert any("Sending" in text or "Drawing" in text or "Waiting" in text for text in seen)
    assert polls, "the page never polled the job"
    expect(page.get_by_role("link", name="Download image 2")).to_have_attribute("download", "storyloom-2")  # type: ignore[attr-defined]
    shoot(page, "07-scene-result")

    # Promote the result to a reference of Mia.
    page.get_by_role("button", name="Use as reference for Mia").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Image 2 is now a reference for Mia.")  # type: ignore[attr-defined]
    assert ref_alts(page) == ["Image 1 — Mia", "Image 0 — Mia", "Image 2 — Mia"]

    # History lists the generation with its prompt and references.
    nav(page, "History")  # type: ignore[attr-defined]
    expect(page.locator(".history .scene").first).to_have_text("Mia jumps into a puddle")  # type: ignore[attr-defined]
    expect(page.locator(".history").first).to_contain_text("References used: image 0, image 1")  # type: ignore[attr-defined]
    shoot(page, "08-history")

    # Log out: every page is closed again.
    page.get_by_role("button", name="Log out").click()  # type: ignore[attr-defined]
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    for path in ("/ui", "/ui/characters/1", "/ui/library", "/ui/scene", "/ui/history"):
        page.goto(f"{base}{path}")  # type: ignore[attr-defined]
        expect(page).to_have_url(re.compile(r"/ui/login\?next="))
        expect(page.get_by_label("API key")).to_be_visible()  # type: ignore[attr-defined]


def test_draw_a_scene_with_her_references_enlarge_the_result_and_delete_an_image(
    page: object, server: tuple[str, str]
) -> None:
    """Issue 11's walk: her page, her scene (ticked, her pictures as thumbnails), the result
    enlarged, its detail view, and a delete behind a confirm that names who uses the picture."""
    base, key = server
    expect = sync_api.expect
    page.goto(f"{base}/ui/login")  # type: ignore[attr-defined]
    page.get_by_label("API key").fill(key)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    for name, seeds in (("Otto", (31,)), ("Mia", (21, 22))):
        page.get_by_label("Name").fill(name)  # type: ignore[attr-defined]
        page.get_by_label("Description").fill(f"{name}, always in the same yellow coat")  # type: ignore[attr-defined]
        page.get_by_role("button", name="Create character").click()  # type: ignore[attr-defined]
        page.locator("#files").set_input_files(  # type: ignore[attr-defined]
            [
                {"name": f"{name}-{s}.png", "mimeType": "image/png", "buffer": png(s, (192 + 64 * i, 256))}
                for i, s in enumerate(seeds)
            ]
        )
        page.get_by_role("button", name="Upload").click()  # type: ignore[attr-defined]
        expect(page.locator(".flash").first).to_contain_text("Added image")  # type: ignore[attr-defined]
        if name == "Otto":
            nav(page, "Characters")
    # On Mia's page (images 1 and 2): draw a scene with her references.
    shoot(page, "11-character-mia")
    page.get_by_role("link", name="Draw a scene with Mia’s references").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("checkbox", name=re.compile("Mia"))).to_be_checked()  # type: ignore[attr-defined]
    expect(page.get_by_role("checkbox", name=re.compile("Otto"))).not_to_be_checked()  # type: ignore[attr-defined]
    strip = page.locator(".ref-strip img")  # type: ignore[attr-defined]
    expect(strip).to_have_count(2)
    assert strip.evaluate_all("els => els.map(e => e.alt)") == ["Image 1 — Mia", "Image 2 — Mia"]
    # Reorder with the keyboard-reachable buttons, then remove and type one back.
    page.get_by_role("button", name="Move image 2 earlier").click()  # type: ignore[attr-defined]
    expect(page.get_by_label("Image numbers")).to_have_value("2, 1")  # type: ignore[attr-defined]
    expect(strip.first).to_have_attribute("alt", "Image 2 — Mia")
    expect(page.locator(".ref-chip").first).to_contain_text("1. image 2")  # type: ignore[attr-defined]
    # Adding Otto's picture by number brings Otto along.
    page.get_by_label("Image numbers").fill("2, 1, 0")  # type: ignore[attr-defined]
    expect(strip).to_have_count(3)
    expect(page.get_by_role("checkbox", name=re.compile("Otto"))).to_be_checked()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Remove image 0 from the scene").click()  # type: ignore[attr-defined]
    expect(strip).to_have_count(2)
    page.get_by_role("checkbox", name=re.compile("Otto")).uncheck()  # type: ignore[attr-defined]
    page.get_by_label("What happens").fill("Mia waves from a tall lighthouse window")  # type: ignore[attr-defined]
    shoot(page, "12-scene-form")
    page.get_by_role("button", name="Generate").click()  # type: ignore[attr-defined]
    result = page.get_by_role("button", name="Enlarge image 3")  # type: ignore[attr-defined]
    expect(result).to_be_visible()
    expect(page.locator(".sent")).to_contain_text("1. image 2 · Mia")  # type: ignore[attr-defined]
    shoot(page, "13-scene-result")
    result.click()
    lightbox = page.locator("#lightbox")  # type: ignore[attr-defined]
    expect(lightbox).to_be_visible()
    expect(lightbox.locator("img")).to_have_attribute("alt", re.compile("Image 3"))
    page.screenshot(path=str(SHOTS / "14-enlarged-desktop.png"))  # type: ignore[attr-defined]
    page.keyboard.press("Escape")  # type: ignore[attr-defined]
    expect(lightbox).to_be_hidden()
    # Its detail: number, kind, whom it shows, the job that made it.
    page.get_by_role("link", name="Details of image 3").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Image 3", level=1)).to_be_visible()  # type: ignore[attr-defined]
    facts = page.locator(".detail-facts")  # type: ignore[attr-defined]
    expect(facts).to_contain_text("generated")
    expect(facts).to_contain_text("Mia")
    expect(facts).to_contain_text("Mia waves from a tall lighthouse window")
    shoot(page, "15-image-detail")
    # Delete Mia's main picture: the confirm names her first.
    page.goto(f"{base}/ui/images/1")  # type: ignore[attr-defined]
    page.get_by_role("link", name="Delete image 1…").click()  # type: ignore[attr-defined]
    expect(page.locator("#delete")).to_contain_text("It is a reference of Mia")  # type: ignore[attr-defined]
    shoot(page, "16-delete-confirm")
    page.get_by_role("button", name="Yes, delete image 1").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Deleted image 1.")  # type: ignore[attr-defined]
    expect(page.locator('button.pick[data-number="1"]')).to_have_count(0)  # type: ignore[attr-defined]
    shoot(page, "17-library-after-delete")
