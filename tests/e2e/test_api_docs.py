"""/docs and /redoc render in a real browser with every request off 127.0.0.1 refused.

FastAPI's default pages fetch Swagger UI and ReDoc from a CDN and are blank offline; ours serve
the bundles themselves. The browser aborts anything not bound for the test server, and the
test fails if a page even tried to reach elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api_server import create_app
from tests.conftest import make_settings
from tests.e2e.test_author_flow import ARGS, CHROMIUM, SHOTS
from tests.servers import serve

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (requirements-dev.txt)")


@pytest.fixture
def offline_page(tmp_path: Path) -> Iterator[tuple[object, str, list[str]]]:
    """A page whose every request to anywhere but 127.0.0.1 is aborted (and recorded)."""
    app = create_app(make_settings(tmp_path / "data"))
    refused: list[str] = []

    def only_local(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(url)
            route.abort()  # type: ignore[attr-defined]

    with serve(app) as base_url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        context.route("**/*", only_local)
        yield context.new_page(), base_url, refused
        context.close()
        browser.close()


def test_swagger_ui_renders_offline_with_an_authorize_button(
    offline_page: tuple[object, str, list[str]],
) -> None:
    page, base, refused = offline_page
    page.goto(f"{base}/docs")  # type: ignore[attr-defined]
    authorize = page.get_by_role("button", name="Authorize")  # type: ignore[attr-defined]
    authorize.wait_for()
    page.get_by_text("POST/generate-image").first.wait_for()  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "api-docs-swagger.png"))  # type: ignore[attr-defined]
    authorize.click()
    scheme = page.locator(".auth-container", has_text="apiKey")  # type: ignore[attr-defined]
    scheme.get_by_text("(http, Bearer)").wait_for()
    scheme.get_by_label("auth-bearer-value").wait_for()
    page.screenshot(path=str(SHOTS / "api-docs-authorize.png"))  # type: ignore[attr-defined]
    assert refused == []


def test_redoc_renders_offline(offline_page: tuple[object, str, list[str]]) -> None:
    page, base, refused = offline_page
    page.goto(f"{base}/redoc")  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Storyloom (0.1.0)").wait_for()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Generate Image").wait_for()  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "api-docs-redoc.png"))  # type: ignore[attr-defined]
    assert refused == []
