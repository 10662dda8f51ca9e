"""Which blob stores a running Storyloom uses: local folders in DATA_DIR, or one S3 bucket.

Images and finished exports are two stores with their own key spaces: `DATA_DIR/images` and
`DATA_DIR/exports` locally, `<prefix>images/` and `<prefix>exports/` in the bucket. One S3 client
serves both (boto3 clients are thread-safe and keep a connection pool).
"""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from storage.files import FileStore, LocalFileStore


@dataclass(frozen=True)
class BlobStores:
    images: FileStore
    exports: FileStore


def blob_stores(settings: Settings) -> BlobStores:
    """Built once per runtime; connects to nothing until first used."""
    if settings.storage_url is None:
        return BlobStores(LocalFileStore(settings.images_dir), LocalFileStore(settings.exports_dir))
    from storage.s3 import S3FileStore, make_client, parse_storage_url

    bucket, prefix = parse_storage_url(settings.storage_url)
    client = make_client(settings.s3_endpoint_url)
    return BlobStores(
        S3FileStore(client, bucket, f"{prefix}images/"), S3FileStore(client, bucket, f"{prefix}exports/")
    )
