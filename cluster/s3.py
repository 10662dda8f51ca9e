"""A local S3 for `make cluster`: moto's server mode on 127.0.0.1, one bucket, in memory.

Moto keeps objects in its process's memory: fine for trying the scaled topology, gone when it
stops. Any AWS credentials are accepted; the launcher sets throwaway ones so boto3 never looks
for a real profile.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cluster.postgres import free_port

# moto accepts any credentials; these only keep boto3 from searching for real ones.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "storyloom-local",
    "AWS_SECRET_ACCESS_KEY": "storyloom-local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_available() -> bool:
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


def s3_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass
class S3Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def start_s3(workdir: Path, *, port: int | None = None, detach: bool = False) -> S3Server:
    """`python -m moto.server` on a free loopback port; waits until it answers."""
    if not moto_available():
        raise RuntimeError("moto's server is not installed (make install-dev: moto[server])")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    with open(workdir / "s3.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
    server = S3Server(process, port)
    deadline = time.monotonic() + 30
    while not s3_answers(server.endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"moto's S3 server did not start: see {workdir / 's3.log'}")
        time.sleep(0.05)
    return server


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=bucket)
