"""The app's routes, `/openapi.json` and the route list in docs/API.md name the same API.

A route added without documentation, a route hidden from the schema, or a documented route
that no longer exists each fail here. The HTML pages (`pages/`), their static files and the
docs pages themselves are not part of the JSON API and are left out of all three, and so is the
OpenAI-compatible facade under /v1, which follows OpenAI's published contract (docs/API.md
documents it in its own section).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"
ROUTE_ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`]*)` \|", re.MULTILINE)
# The HTML pages and the docs pages; `/openapi.json` itself is FastAPI's.
NOT_API_MODULES = ("pages", "api.docs", "openai_compat")


def is_api(module: str, path: str, app: FastAPI) -> bool:
    if path == app.openapi_url:
        return False
    return not any(module == name or module.startswith(f"{name}.") for name in NOT_API_MODULES)


def app_routes(app: FastAPI) -> set[str]:
    found = set()
    for context in iter_route_contexts(app.routes):
        endpoint = context.endpoint
        methods = context.methods
        if endpoint is None or not methods or not is_api(endpoint.__module__, str(context.path), app):
            continue  # mounts (static files), the HTML pages, the docs pages
        found |= {f"{method} {context.path}" for method in methods if method != "HEAD"}
    return found


def schema_routes(client: TestClient) -> set[str]:
    spec = client.get("/openapi.json").json()
    return {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops}


def documented_routes() -> set[str]:
    text = API_MD.read_text()
    section = text.split("\n## Route list\n", 1)[1].split("\n## ", 1)[0]
    return {f"{method} {path}" for method, path in ROUTE_ROW.findall(section)}


def test_app_openapi_and_docs_list_the_same_routes(app: FastAPI, client: TestClient) -> None:
    served = app_routes(app)
    assert len(served) >= 20
    assert schema_routes(client) == served
    assert documented_routes() == served


def test_the_html_pages_are_served_but_not_part_of_the_api(app: FastAPI, client: TestClient) -> None:
    # Guards the exclusion above: the pages exist, so leaving them out is a choice, not an accident.
    assert client.get("/ui/login").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    paths = {route.split(" ", 1)[1] for route in app_routes(app)}
    assert not {p for p in paths if p.startswith(("/ui", "/docs", "/redoc", "/openapi"))}
    assert "/" not in paths
