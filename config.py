"""Storyloom settings: one pydantic-settings object, read from the environment and `.env`.

Every knob lives here and is handed down from `create_app(settings)`; nothing deeper reads
`os.environ`, so tests build a fresh app on a temp directory without patching globals.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Where the library lives.
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<DATA_DIR>/storyloom.db"
    )
    public_base_url: str = Field(default="http://127.0.0.1:8000", description="Absolute base for image URLs")
    secret_key: SecretStr | None = Field(
        default=None, description="Signs image URLs and sessions; generated in DATA_DIR if unset"
    )
    log_level: str = "INFO"

    # Uploads.
    max_upload_bytes: int = Field(default=50 * MB, gt=0, description="Per file; OpenAI's limit")
    max_image_pixels: int = Field(
        default=50_000_000, gt=0, description="Width x height above which an upload is refused"
    )
    max_files_per_upload: int = Field(default=16, gt=0)
    thumbnail_size: int = Field(default=512, ge=16, le=2048)
    near_duplicate_distance: int = Field(default=8, ge=0, le=64)
    signed_url_ttl_seconds: int = Field(default=3600, gt=0)

    # Scene generation (the scene-generation issue builds on these).
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_timeout_seconds: float = Field(default=300.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    image_backend: Literal["auto", "openai", "draft"] = "auto"
    default_image_model: str = "gpt-image-2.5-flare"
    generation_concurrency: int = Field(default=4, ge=1, le=256)
    sync_wait_seconds: float = Field(default=120.0, ge=0)
    max_job_attempts: int = Field(default=3, ge=1)

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("openai_api_key", "secret_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `.env.example` copies leave `OPENAI_API_KEY=` blank: that means "no key", not "".
        return None if value == "" else value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'storyloom.db'}"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.images_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)

    @cached_property
    def signing_key(self) -> bytes:
        """The secret for HMAC-signed URLs and cookies.

        An unset SECRET_KEY is generated once and kept in DATA_DIR, so signed URLs survive
        restarts without the operator having to invent a secret.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        self.ensure_dirs()
        path = self.data_dir / "secret_key"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip().encode()
