"""A book in a real headless Chromium: paste a manuscript, illustrate all, watch the progress
bar reach the end, redraw a page and pick the other candidate, reorder two pages with the
keyboard. Runs against a live uvicorn with the offline draft backend; screenshots of each step
land in test-artifacts/screenshots/ (book-*).
"""

from __future__ import annotations

import re

from tests.e2e.test_author_flow import page, server, shoot, sync_api  # noqa: F401  (fixtures)

LONG = 120_000  # ms: print-sized drafts on a busy CI machine
STORY = "Mia finds a map.\n---\nRex sniffs the map.\n---\nThey sail at dawn."


def page_texts(tab: object) -> list[str]:
    return tab.locator(".page-card .page-text").all_inner_texts()  # type: ignore[attr-defined]


def test_author_makes_and_illustrates_a_book(page: object, server: tuple[str, str]) -> None:  # noqa: F811
    base, key = server
    expect = sync_api.expect
    page.goto(f"{base}/ui/login")  # type: ignore[attr-defined]
    page.get_by_label("API key").fill(key)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Books").click()  # type: ignore[attr-defined]
    page.get_by_label("Title").fill("The Map")  # type: ignore[attr-defined]
    page.get_by_label("Style for every page").fill("loose gouache, warm palette")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create book").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="The Map", level=1)).to_be_visible()  # type: ignore[attr-defined]

    page.get_by_label("Story text").fill(STORY)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Make pages").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Made pages")  # type: ignore[attr-defined]
    assert page_texts(page) == ["Mia finds a map.", "Rex sniffs the map.", "They sail at dawn."]
    shoot(page, "book-01-pages")

    page.get_by_role("button", name="Illustrate all").click()  # type: ignore[attr-defined]
    expect(page.locator("#progress-text")).to_contain_text("drawing")  # type: ignore[attr-defined]
    shoot(page, "book-02-drawing")
    expect(page.locator("#progress-text")).to_have_text("3 of 3 pages illustrated", timeout=LONG)  # type: ignore[attr-defined]
    expect(page.get_by_role("img", name=re.compile(r"^Page 3 picture"))).to_be_visible()  # type: ignore[attr-defined]
    assert page.locator("#book-progress").evaluate("bar => bar.value") == 3  # type: ignore[attr-defined]
    shoot(page, "book-03-illustrated")

    # Redraw page 1: two new candidates appear next to the first; pick one with the keyboard.
    page.get_by_role("button", name="Redraw page 1").click()  # type: ignore[attr-defined]
    candidates = page.get_by_role("group", name="Candidates for page 1")  # type: ignore[attr-defined]
    expect(candidates.get_by_role("radio")).to_have_count(3, timeout=LONG)  # type: ignore[attr-defined]
    first_picture = page.get_by_role("img", name=re.compile(r"^Page 1 picture")).get_attribute("alt")  # type: ignore[attr-defined]
    other = candidates.get_by_role("radio").nth(2)
    other.focus()
    page.keyboard.press("Space")  # type: ignore[attr-defined]
    chosen = other.get_attribute("value")
    page.get_by_role("button", name="Use this picture").click()  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Chose the picture")  # type: ignore[attr-defined]
    now = page.get_by_role("img", name=re.compile(r"^Page 1 picture")).get_attribute("alt")  # type: ignore[attr-defined]
    assert now != first_picture and now.endswith(f"(image {chosen})")
    shoot(page, "book-04-candidate")

    # Reorder: move page 1 down with the keyboard.
    page.get_by_role("button", name="Move page 1 down").focus()  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    expect(page.locator(".flash").first).to_contain_text("Moved the page")  # type: ignore[attr-defined]
    assert page_texts(page) == ["Rex sniffs the map.", "Mia finds a map.", "They sail at dawn."]
    shoot(page, "book-05-reordered")
