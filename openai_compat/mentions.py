"""`@Mia` and `@"Captain Bo"` in a prompt: the characters an OpenAI-style caller brings in.

An OpenAI client has no `characters` field, so the prompt names them. A mention must start
the prompt or follow a space or punctuation (an e-mail address is not a mention); names are
matched without case, like everywhere else. The scene text keeps the name without the `@`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MENTION = re.compile(r'(?<![\w@])@(?:"([^"\n]{1,100})"|([^\W\d][\w\'-]{0,99}))')


@dataclass(frozen=True)
class Mentions:
    names: list[str]  # in order of first mention, without repeats (case-insensitive)
    scene: str  # the prompt with each `@name` written as plain `name`


def parse_mentions(prompt: str) -> Mentions:
    names: list[str] = []
    seen: set[str] = set()

    def plain(match: re.Match[str]) -> str:
        name = (match.group(1) or match.group(2)).strip()
        # A trailing apostrophe or hyphen belongs to the sentence ("@Mia's"), not the name.
        core = re.sub(r"['-]s?$", "", name) if match.group(2) else name
        key = core.casefold()
        if core and key not in seen:
            seen.add(key)
            names.append(core)
        return name

    scene = MENTION.sub(plain, prompt)
    return Mentions(names, scene)
