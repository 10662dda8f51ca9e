"""The browser fixtures (a live server, a Chromium page) for every e2e module; defined once in
test_author_flow.py and shared from here."""

from tests.e2e.test_author_flow import page, server  # noqa: F401
