"""Fit the composed prompt into a text encoder's token limit, out loud (issue 15).

GPT Image reads 32,000 characters; a Stable Diffusion CLIP text encoder reads 77 tokens and
silently ignores the rest. A consistency prompt with two characters is far longer than that,
so for a token-limited backend the prompt is fitted here, and the dry run and the job say what
was sent:

1. the composed prompt as it is, when it fits;
2. else the **short form**: each character as `Name: description, style.` (descriptions first,
   because they are what keeps a character the same from page to page), then the scene, then
   the book style: `Mia: a girl with a red raincoat. Rex: a small grey dog. Mia walks Rex in
   the rain. Style: watercolour.`;
3. else the short form cut after the last whole word that fits, and the note quotes the words
   that were dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from generation.composer import CharacterBrief

# Tokens in a text as the text encoder counts them (special tokens included).
CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class FittedPrompt:
    prompt: str  # what the model is sent
    note: str | None = None  # None: the composed prompt went out unchanged


def short_form(characters: Sequence[CharacterBrief], scene: str, book_style: str | None) -> str:
    """The documented shortened prompt: character descriptions first, then the scene, then the style."""
    parts = []
    for character in characters:
        line = f"{character.name}: {character.description.strip().rstrip('.')}"
        if character.style:
            line += f", {character.style.strip().rstrip('.')}"
        parts.append(line + ".")
    parts.append(scene.strip())
    if book_style:
        parts.append(f"Style: {book_style.strip()}")
    return " ".join(parts)


def fit_prompt(
    composed: str,
    characters: Sequence[CharacterBrief],
    scene: str,
    book_style: str | None,
    *,
    limit: int,
    count: CountTokens,
) -> FittedPrompt:
    """The prompt to send within `limit` tokens, with a note whenever it is not `composed`."""
    composed_tokens = count(composed)
    if composed_tokens <= limit:
        return FittedPrompt(composed)
    short = short_form(characters, scene, book_style)
    short_tokens = count(short)
    head = f"the composed prompt is {composed_tokens} tokens; the text encoder reads {limit}"
    if short_tokens <= limit:
        return FittedPrompt(
            short, f"{head}: sent the short form (character descriptions, then the scene, then the style)"
        )
    words = short.split()
    low, high = 0, len(words)  # the longest run of whole words that fits: words[:low]
    while low < high:
        middle = (low + high + 1) // 2
        if count(" ".join(words[:middle])) <= limit:
            low = middle
        else:
            high = middle - 1
    kept, dropped = " ".join(words[:low]), " ".join(words[low:])
    return FittedPrompt(
        kept,
        f"{head}, and the short form (character descriptions, then the scene) is still {short_tokens}: "
        f"sent the words that fit; dropped: {dropped!r}. Shorten the descriptions or the scene.",
    )
