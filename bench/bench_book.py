"""Benchmark illustrating a 32-page book (`chain: first`) against the fake upstream at 1 s latency.

Run: `.venv/bin/python -m bench.bench_book` (about a minute). Three processes, as in
bench_generate: the fake upstream, the Storyloom app (IMAGE_BACKEND=openai pointed at the fake,
GENERATION_CONCURRENCY=`--concurrency`), and this driver.

Page 1 is drawn first; pages 2..32 then get page 1's picture and run `--concurrency` at a time,
so the ideal makespan is (1 + ceil(31 / concurrency)) x latency; target within 15 %, zero
failed pages. Pages are drawn at the book's print size (2592x2624 for 8.5x8.5); the fake
answers each request with its own flat-colour PNG (distinct bytes, so nothing is deduplicated),
encoded before the clock starts so the fake's own CPU is not measured. The fake records each
request's body size, which is reported as the bytes sent upstream per page, with the app's
peak RSS (VmHWM).

The sub-command `fake` is the fake upstream; `app` comes from bench_generate.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.bench_generate import _serve, cpu_seconds, make_key, peak_rss_mb, subprocess_server

MAKESPAN_TOLERANCE = 0.15
PAGE_SIZE = (2592, 2624)


def run_fake(latency: float, pages: int, sizes_log: Path) -> None:
    """The fake upstream with distinct outputs, pre-encoded, logging each request's body size."""
    from tests.fake_openai import COLOURS, FakeOpenAI, fake_image_b64

    fake = FakeOpenAI(latency=latency)
    fake.distinct_outputs = True
    for index in range(pages + 8):  # the variants requests 0..pages+7 will ask for (n=1)
        fake_image_b64(*PAGE_SIZE, "png", len(COLOURS) + index * 16)
    inner = fake.app

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"0").decode()
            with sizes_log.open("a") as log:
                log.write(f"{scope['path']} {length}\n")
        await inner(scope, receive, send)

    _serve(app)


def setup_book(client: httpx.Client, pages: int) -> int:
    from tests.imagegen import png

    files = [("files", (f"ref{i}.png", png(i, (1024, 1024)), "image/png")) for i in (1, 2)]
    numbers = [i["number"] for i in client.post("/images", files=files).raise_for_status().json()["images"]]
    for (name, description), number in zip(
        (
            ("Mia", "a girl with curly red hair and a yellow raincoat"),
            ("Rex", "a scruffy terrier, one black ear"),
        ),
        numbers,
        strict=True,
    ):
        character = client.post(
            "/characters", json={"name": name, "description": description}
        ).raise_for_status()
        client.put(
            f"/characters/{character.json()['id']}/references", json={"numbers": [number]}
        ).raise_for_status()
    book = client.post(
        "/books", json={"title": "Bench", "style": "gouache", "cast": ["Mia", "Rex"], "chain": "first"}
    ).raise_for_status()
    book_id = book.json()["id"]
    who = ["Mia", "Rex", "Mia and Rex", "the river"]
    text = "\n---\n".join(f"Page {i + 1}: {who[i % 4]} goes on." for i in range(pages))
    client.post(f"/books/{book_id}/manuscript", json={"text": text}).raise_for_status()
    return book_id


def illustrate(client: httpx.Client, book_id: int) -> tuple[float, dict[str, Any]]:
    """Makespan from the request to the last job's `finished_at` (same machine, same clock).

    The driver polls only twice a second: reading a 32-page book is not free, and a tight poll
    would take CPU from the run it measures; the jobs' own finish times make the figure exact.
    """
    started = datetime.now(UTC)
    client.post(f"/books/{book_id}/illustrate", json={}).raise_for_status()
    while True:
        time.sleep(0.5)
        book = client.get(f"/books/{book_id}").raise_for_status().json()
        progress = book["progress"]
        if not progress["queued"] and not progress["running"]:
            break
    jobs = client.get("/generations", params={"book_id": book_id, "limit": 200}).raise_for_status().json()
    items = jobs["items"]
    finished = max(datetime.fromisoformat(job["finished_at"]) for job in items)
    first = next(job for job in items if job["page"] == 1)
    spans = sorted(
        (datetime.fromisoformat(j["finished_at"]) - datetime.fromisoformat(j["started_at"])).total_seconds()
        for j in items
    )
    page_one = (datetime.fromisoformat(first["finished_at"]) - started).total_seconds()
    print(
        f"page 1 finished at {page_one:.2f} s; "
        f"claim-to-stored per page: median {statistics.median(spans):.2f} s, max {spans[-1]:.2f} s"
    )
    return (finished - started).total_seconds(), book


def drive(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="storyloom-bench-book-") as tmp:
        data_dir = Path(tmp) / "data"
        logs = Path(args.logs) if args.logs else Path(tmp)
        sizes = Path(tmp) / "upstream-bodies.txt"
        headers = {"Authorization": f"Bearer {make_key(data_dir)}"}
        fake_args = (
            "fake",
            "--latency",
            str(args.latency),
            "--pages",
            str(args.pages),
            "--sizes",
            str(sizes),
        )
        with subprocess_server(logs / "fake.log", *fake_args, module="bench.bench_book") as (
            fake_url,
            _fake_pid,
        ):
            app_args = ("app", "--data-dir", str(data_dir), "--upstream", f"{fake_url}/v1")
            app_args += ("--concurrency", str(args.concurrency))
            with (
                subprocess_server(logs / "app.log", *app_args) as (url, pid),
                httpx.Client(base_url=url, headers=headers, timeout=120) as client,
            ):
                book_id = setup_book(client, args.pages)
                cpu_before = cpu_seconds(pid)
                makespan, book = illustrate(client, book_id)
                app_cpu = cpu_seconds(pid) - cpu_before
                rss = peak_rss_mb(pid)
        bodies = [int(line.split()[1]) for line in sizes.read_text().splitlines() if "/images/" in line]

    ideal = (1 + math.ceil((args.pages - 1) / args.concurrency)) * args.latency
    failed = [p["number"] for p in book["pages"] if p["status"] != "illustrated"]
    ok = makespan <= ideal * (1 + MAKESPAN_TOLERANCE) and not failed and len(bodies) == args.pages
    print(
        f"{args.pages} pages, chain first, upstream latency {args.latency:.2f} s, "
        f"GENERATION_CONCURRENCY={args.concurrency}, pages drawn at {book['generate_size']}"
    )
    print(
        f"makespan {makespan:.2f} s vs ideal {ideal:.2f} s ({(makespan / ideal - 1) * 100:+.1f} %, "
        f"target within {MAKESPAN_TOLERANCE * 100:.0f} %); failed pages {failed or 0}; "
        f"upstream calls {len(bodies)}"
    )
    print(
        f"bytes sent upstream per page: page 1 {bodies[0] / 1024:.0f} KiB (2 references); "
        f"pages 2-{args.pages} median {statistics.median(bodies[1:]) / 1024:.0f} KiB, "
        f"max {max(bodies[1:]) / 1024:.0f} KiB "
        f"(references + page 1's picture + prompt, multipart)"
    )
    print(
        f"app peak RSS (VmHWM) {rss:.0f} MB; app CPU during the run {app_cpu:.1f} s "
        f"({app_cpu / args.pages * 1000:.0f} ms a page) on {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    fake = sub.add_parser("fake")
    fake.add_argument("--latency", type=float, default=1.0)
    fake.add_argument("--pages", type=int, default=32)
    fake.add_argument("--sizes", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--logs", help="keep the two servers' stderr in this folder")
    args = parser.parse_args()
    if args.command == "fake":
        run_fake(args.latency, args.pages, args.sizes)
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
