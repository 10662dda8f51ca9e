"""The S3 blob store (`STORAGE_URL=s3://bucket/prefix`): any S3-compatible service through boto3.

Credentials and region come from boto3's own chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, an
instance role, AWS_DEFAULT_REGION...): Storyloom never reads, stores or logs them.
`S3_ENDPOINT_URL` points at MinIO, moto or another S3-compatible service; such services are
addressed path-style (`http://host:port/bucket/key`), which needs no wildcard DNS.

A PUT is atomic (readers see the old object or the whole new one), so no temp objects exist;
reads stream the body instead of loading it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote, urlsplit

from storage.files import StoredObject

MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ("bucket", "some/prefix/"); anything else is a ValueError."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("STORAGE_URL must look like s3://bucket or s3://bucket/prefix")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def make_client(endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in MISSING_CODES


class S3FileStore:
    """Objects under `s3://bucket/<prefix>`; `prefix` is "" or ends with "/"."""

    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"file key escapes the store: {key!r}")
        return self.prefix + key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, path: Path) -> None:
        # upload_file streams from disk (multipart for big exports), never the whole file in memory.
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def read(self, key: str) -> bytes:
        with self.open(key) as handle:
            return handle.read()

    def stream(self, key: str) -> tuple[BinaryIO, int]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        return cast(BinaryIO, answer["Body"]), int(answer["ContentLength"])

    def open(self, key: str) -> BinaryIO:
        return self.stream(key)[0]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:  # callers treat a failed delete like the disk's
            raise OSError(f"could not delete {key}: {type(exc).__name__}") from exc

    def delete_prefix(self, prefix: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            keys = [obj.key for obj in self.scan(prefix.rstrip("/") + "/")]
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
                batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        except (BotoCoreError, ClientError) as exc:
            raise OSError(f"could not delete {prefix}: {type(exc).__name__}") from exc

    def scan(self, prefix: str = "") -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                yield StoredObject(key, int(item["Size"]), item["LastModified"])

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, *, seconds: int, media_type: str, filename: str | None) -> str | None:
        """A GET URL valid for `seconds` that answers with our content type (and download name)."""
        params: dict[str, str] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentType": media_type,
        }
        if filename is not None:
            params["ResponseContentDisposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def check(self) -> str:
        """/health's probe: the bucket answers and these credentials may use it."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; only its kind is reported
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            return f"error: {type(exc).__name__}" + (f" {code}" if code else "")
        return "ok"
