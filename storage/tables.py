"""Imports every table module so SQLModel.metadata (and so Alembic) sees the whole schema."""

from characters.models import Character, CharacterReference, Image
from services.auth.models import ApiKey, Workspace
from services.generation.models import Generation

__all__ = ["ApiKey", "Character", "CharacterReference", "Generation", "Image", "Workspace"]
