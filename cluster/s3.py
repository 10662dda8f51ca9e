"""A local S3 (moto's server mode on 127.0.0.1) for `make cluster`, the tests and the benchmarks.

moto runs as its own process (`python -m moto.server`), so it is a real HTTP endpoint that
any number of API processes and workers share, exactly like MinIO or AWS would be, and its
request handling never competes with the test process's GIL. It keeps everything in memory
and accepts any credentials; `env()` gives the variables a Storyloom process needs to use it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster.postgres import free_port

# moto accepts any key; these never leave the machine.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "storyloom-local",
    "AWS_SECRET_ACCESS_KEY": "storyloom-local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# `make cluster`'s name for the same throwaway credentials.
LOCAL_CREDENTIALS = CREDENTIALS
START_SECONDS = 30.0


def moto_available() -> bool:
    """moto's server mode needs its `server` extra (Flask): installed by requirements-dev.txt."""
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


@dataclass
class S3Server:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def pid(self) -> int:
        return self.process.pid

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The settings (and AWS variables) that point a Storyloom process at `bucket`."""
        storage = f"s3://{bucket}/{prefix}".rstrip("/")
        return {**CREDENTIALS, "STORAGE_URL": storage, "S3_ENDPOINT_URL": self.url}

    def client(self) -> object:
        return s3_client(self.url)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, whatever it said
    except OSError:
        return False


def start_s3(workdir: Path | None = None, *, port: int | None = None, detach: bool = False) -> S3Server:
    """Start moto's server on 127.0.0.1 (a free port unless given) and wait until it answers.

    With `workdir` its log goes to `workdir/s3.log`; `detach` puts it in its own session so it
    outlives the command that started it (`make cluster`)."""
    if not moto_available():
        raise RuntimeError("moto's server is not installed (make install-dev: moto[server])")
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = subprocess.DEVNULL
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        log = open(workdir / "s3.log", "ab")  # noqa: SIM115 - the child keeps it open
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=detach,
    )
    if workdir is not None:
        log.close()  # type: ignore[union-attr]
    server = S3Server(url=url, process=process)
    deadline = time.monotonic() + START_SECONDS
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"moto's S3 server did not start on {url}")
        time.sleep(0.05)  # polling a condition with a deadline, not waiting for a guess
    return server


def s3_client(endpoint: str) -> object:
    """A boto3 client for the local server, with the throwaway credentials."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
    ).client("s3", endpoint_url=endpoint)


def create_bucket(endpoint: str, bucket: str) -> None:
    """A bucket on the server at `endpoint` (what `make cluster` holds the library in)."""
    s3_client(endpoint).create_bucket(Bucket=bucket)  # type: ignore[attr-defined]


@contextlib.contextmanager
def running_s3() -> Iterator[S3Server]:
    server = start_s3()
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":  # a quick manual check: python -m cluster.s3
    with running_s3() as s3:
        s3.create_bucket("check")
        print(s3.url, s3.client().list_buckets()["Buckets"])  # type: ignore[attr-defined]
