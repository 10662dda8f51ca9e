"""Imports every table module so SQLModel.metadata (and so Alembic) sees the whole schema."""

from accounts.models import ApiKey, BrowserSession, Workspace
from books.models import Book, Page
from characters.models import Character, CharacterReference
from exports.models import Export
from generation.models import Generation
from library.models import Image, ImageCharacter

__all__ = [
    "ApiKey",
    "Book",
    "BrowserSession",
    "Character",
    "CharacterReference",
    "Export",
    "Generation",
    "Image",
    "ImageCharacter",
    "Page",
    "Workspace",
]
