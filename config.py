"""Storyloom settings: one pydantic-settings object, read from the environment and `.env`.

Every knob lives here and is handed down from `create_app(settings)`; nothing deeper reads
`os.environ`, so tests build a fresh app on a temp directory without patching globals.
"""

from __future__ import annotations

import json
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Where the library lives.
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<DATA_DIR>/storyloom.db"
    )
    public_base_url: str = Field(
        default="", description="Absolute base for image URLs; default http://<HOST>:<PORT>"
    )
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

    # Bounded upload memory (issue 12, hardening).
    max_image_side: int = Field(default=12_000, gt=0, description="Longest side in pixels an upload may have")
    max_image_aspect_ratio: float = Field(
        default=20.0, ge=1, description="Longer side / shorter side above which an upload is refused"
    )
    image_workers: int = Field(
        default=2, ge=1, le=64, description="Images decoded at once per process (~200 MB each at most)"
    )
    storage_degraded_free_bytes: int = Field(
        default=500 * MB, ge=0, description="Free space under which /health says storage is degraded"
    )
    storage_reserve_bytes: int = Field(
        default=16 * MB, ge=0, description="Reserve file in DATA_DIR freed so deletes work on a full disk"
    )
    image_wait_seconds: float = Field(
        default=120.0, ge=0, description="How long an upload waits for a decode slot before 503 busy"
    )

    # Scene generation (the scene-generation issue builds on these).
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_timeout_seconds: float = Field(default=300.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    # Issue 12 (hardening): a timed-out edit may be billed upstream, so timeouts are not retried.
    openai_retry_timeouts: bool = Field(
        default=False, description="Let the SDK retry timed-out calls too (each retry may be billed)"
    )
    image_backend: Literal["auto", "openai", "draft", "replicate", "diffusers"] = "auto"
    default_image_model: str = "gpt-image-2.5-flare"
    generation_concurrency: int = Field(default=4, ge=1, le=256)
    sync_wait_seconds: float = Field(default=120.0, ge=0)
    max_job_attempts: int = Field(default=3, ge=1)
    # Issue 12 (hardening): no job stays `running` forever.
    job_running_deadline_seconds: float = Field(
        default=1800.0, gt=0, description="A job running this long with no worker holding it is failed"
    )
    job_watchdog_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often the watchdog looks for stalled jobs"
    )

    # Fair use and accounting (issue 4). Every limit: 0 = unlimited.
    rate_limit_per_minute: int = Field(
        default=60, ge=0, description="API requests per minute per API key (all routes that need a key)"
    )
    generations_per_minute: int = Field(
        default=10, ge=0, description="Generation requests per minute per API key"
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="`limits` storage URI; memory:// is per process, redis://host:6379 shares limits",
    )
    # Issue 12 (hardening): browser sessions end this long after their last use (sliding).
    session_lifetime_seconds: int = Field(
        default=12 * 3600, gt=0, description="Browser session lifetime after its last use (sliding)"
    )
    # Issue 12 (hardening): failed authentication per client address / key prefix, 0 = off.
    auth_failures_per_minute: int = Field(
        default=20, ge=0, description="Failed authentications per minute per client address before 429"
    )
    auth_failures_per_key_prefix_per_minute: int = Field(
        default=10, ge=0, description="Failed authentications per minute per key prefix before 429"
    )
    max_active_jobs_per_workspace: int = Field(
        default=20, ge=0, description="Queued + running generation jobs a workspace may have at once"
    )
    daily_image_quota: int = Field(
        default=0, ge=0, description="Images a workspace may generate per UTC day (failed jobs excluded)"
    )
    price_overrides: Annotated[dict[str, dict[str, float]], NoDecode] = Field(
        default_factory=dict,
        description='JSON: {"model": {"text_in": .., "image_in": .., "image_out": ..}} in USD per 1M tokens',
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="One JSON object per line, or text"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token for GET /metrics; unset turns /metrics off (404)"
    )

    # Print-ready export (issue 10).
    export_concurrency: int = Field(
        default=1, ge=1, le=16, description="Exports rendered at once per process (each holds one full page)"
    )

    # Scale-out (issue 13): PostgreSQL with the same guarantees as SQLite.
    migrate_on_start: bool = Field(
        default=True,
        description="Migrate the schema at start-up (under a lock); false: refuse to start unless at head",
    )

    # Scale-out (issue 13): blobs. Images and finished exports in the local data directory or in S3.
    storage_url: str | None = Field(
        default=None,
        description="Empty: files in DATA_DIR; s3://bucket/prefix: an S3 bucket (credentials: AWS chain)",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint (MinIO, moto); empty: AWS S3 itself"
    )
    s3_presign: bool = Field(
        default=False, description="With S3, file routes answer 307 to a short-lived presigned URL"
    )

    # Where `make run` (`manage.py serve`) listens (issue 8): links in answers follow it.
    host: str = Field(default="127.0.0.1", description="Address `make run` serves on")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `make run` serves on")

    # Scale-out (issue 13): jobs. With PostgreSQL, generations run on procrastinate workers
    # (`manage.py worker`); every process must share one SECRET_KEY (signed URLs, sessions).
    job_queue: Literal["auto", "local", "procrastinate"] = Field(
        default="auto",
        description="auto: procrastinate on PostgreSQL, the in-process pool on SQLite",
    )
    api_runs_jobs: bool = Field(
        default=False, description="With procrastinate: API processes run a worker too (else only workers)"
    )
    job_stall_seconds: float = Field(
        default=60.0, gt=0, description="A worker silent (no heartbeat) this long: its jobs go to another"
    )

    @model_validator(mode="after")
    def _default_base_url(self) -> Settings:
        # Unset, links point where `make run` listens, so PORT=8001 does not hand out :8000 URLs.
        if not self.public_base_url:
            self.public_base_url = self.served_url
        return self

    @property
    def served_url(self) -> str:
        """The base URL a local browser reaches `host`:`port` on (a wildcard bind means this machine)."""
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host
        host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    # Integrations (issue 14): importing reference images from URLs.
    url_import_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host:port pairs URL imports may reach even on private/loopback addresses (comma list)",
    )
    url_import_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Total time for one URL import: DNS, redirects and the whole body"
    )
    # Integrations (issue 14): the Replicate backend (IMAGE_BACKEND=replicate).
    replicate_api_token: SecretStr | None = None
    replicate_base_url: str | None = Field(default=None, description="Empty: https://api.replicate.com")
    replicate_default_model: str = Field(
        default="black-forest-labs/flux-dev", description="Model used when a request names none"
    )
    replicate_poll_seconds: float = Field(default=1.0, gt=0, description="How often a prediction is polled")
    replicate_timeout_seconds: float = Field(
        default=300.0, gt=0, description="How long a prediction may run before it is cancelled (504)"
    )
    # Issue 15: the local diffusion backend (IMAGE_BACKEND=diffusers; requirements-local.txt).
    diffusers_model: Path | None = Field(
        default=None, description="A local diffusers-format model directory (save_pretrained layout)"
    )
    diffusers_device: str | None = Field(
        default=None, description="torch device, e.g. cuda, cuda:1 or cpu; empty: CUDA when present, else CPU"
    )
    diffusers_timeout_seconds: float = Field(
        default=1800.0, gt=0, description="How long one local inference may run before it stops (504)"
    )

    @field_validator("price_overrides")
    @classmethod
    def _known_price_fields(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        # Fail at startup on a typo ("image_output") rather than silently bill the default.
        allowed = {"text_in", "image_in", "image_out"}
        for model, prices in value.items():
            unknown = set(prices) - allowed
            if unknown:
                raise ValueError(f"PRICE_OVERRIDES[{model!r}]: unknown fields {sorted(unknown)}")
            if any(price < 0 for price in prices.values()):
                raise ValueError(f"PRICE_OVERRIDES[{model!r}]: prices must be >= 0")
        return value

    @field_validator("price_overrides", mode="before")
    @classmethod
    def _price_json(cls, value: object) -> object:
        # Decoded here, not by pydantic-settings, so a blank `PRICE_OVERRIDES=` means "none".
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("url_import_allow_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        # Checked at start-up, so a typo never silently falls back to local files.
        if value is not None:
            from storage.s3 import parse_storage_url

            parse_storage_url(value)
        return value

    @field_validator(
        "openai_api_key", "secret_key", "replicate_api_token", "storage_url", "s3_endpoint_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `.env.example` copies leave `OPENAI_API_KEY=` blank: that means "no key", not "".
        return None if value == "" else value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'storyloom.db'}"

    @property
    def resolved_job_queue(self) -> Literal["local", "procrastinate"]:
        """The job engine: procrastinate needs PostgreSQL; `auto` picks it there and the pool on SQLite."""
        postgres = self.resolved_database_url.startswith("postgresql")
        if self.job_queue == "procrastinate" and not postgres:
            raise ValueError("JOB_QUEUE=procrastinate needs a PostgreSQL DATABASE_URL")
        if self.job_queue == "auto":
            return "procrastinate" if postgres else "local"
        return self.job_queue

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

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
