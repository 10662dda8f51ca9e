"""Split a pasted manuscript into pages and find who is on each page.

Authors paste the whole story. A line of `---` is an explicit page break; without any, blank
lines separate pages (the way picture-book manuscripts are usually typed). Characters are found
by their names as whole words in any case, so "Mia" matches "MIA ran" but not "Miami".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from errors import InvalidInput

MAX_PAGES = 200
BREAK_LINE = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.MULTILINE)
BLANK_LINES = re.compile(r"\n[ \t]*\n")


def split_pages(text: str) -> list[str]:
    """The page texts in order; empty blocks are skipped. 422 when empty or over MAX_PAGES."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    separator = BREAK_LINE if BREAK_LINE.search(normalised) else BLANK_LINES
    blocks = [block.strip() for block in separator.split(normalised)]
    pages = [block for block in blocks if block]
    if not pages:
        raise InvalidInput("the manuscript is empty: paste the story's text", field="text")
    if len(pages) > MAX_PAGES:
        raise InvalidInput(
            f"the manuscript has {len(pages)} pages; a book takes at most {MAX_PAGES}", field="text"
        )
    return pages


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(name.strip())}(?!\w)", re.IGNORECASE)


def names_in(text: str, names: Sequence[tuple[int, str]]) -> list[int]:
    """Ids of the (id, name) pairs whose name appears in `text` as a whole word, in cast order."""
    return [character_id for character_id, name in names if name.strip() and _pattern(name).search(text)]
