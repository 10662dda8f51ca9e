"""The server as an operator starts it: `uvicorn api_server:app` with uvicorn's defaults, and `make run`.

Real subprocesses on 127.0.0.1: what is checked is what a person sees in their terminal.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def started(
    args: list[str], tmp_path: Path, ready: str, **env: str
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Start `args`, read its output up to the line containing `ready`; stop it on exit.

    Yields the process and the lines so far; after the block the list holds everything it printed.
    """
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "x",
        **env,
    }
    process = subprocess.Popen(
        args, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # blocks until the server writes; ends if it dies
            lines.append(line.rstrip("\n"))
            if ready in line:
                break
        else:
            raise AssertionError("server exited during start-up:\n" + "\n".join(lines))
        yield process, lines
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=30)
        lines.extend(rest.splitlines())


def test_uvicorn_defaults_log_each_request_without_a_logging_error(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "api_server:app", "--host", "127.0.0.1", "--port", str(port)]
    with started(args, tmp_path, "Uvicorn running on") as (_, lines):
        for _ in range(3):
            assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    output = "\n".join(lines)
    assert "Logging error" not in output and "Traceback" not in output
    # uvicorn's own access line, as its default format writes it, once per request.
    assert output.count('"GET /health HTTP/1.1" 200') == 3


def test_make_run_ends_start_up_with_one_plain_line_naming_the_page_and_the_docs(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, str(ROOT / "manage.py"), "serve"]
    with started(args, tmp_path, "/docs", PORT=str(port), HOST="127.0.0.1") as (_, lines):
        base = f"http://127.0.0.1:{port}"
        assert (
            lines[-1] == f"Storyloom is ready: the author's page is {base}/ and the API docs are {base}/docs"
        )
        before = "\n".join(lines[:-1])
        assert "Uvicorn running on" in before and "Application startup complete" in before
        assert httpx.get(f"{base}/health").status_code == 200
    assert sum("Storyloom is ready" in line for line in lines) == 1
