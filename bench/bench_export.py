"""Benchmark the print export: a 32-page 8.5x8.5 book, interior PDF (profile `print`) + cover.

Run: `.venv/bin/python -m bench.bench_export` (about two minutes on 2 cores). Two books: pictures
of 1024² (upscaled to 2588x2625 with Lanczos, a `low_resolution` warning per page) and 2592²
(resampled to 2588x2625: 1.3 % taller, PRINT.md's 8.75 in page needs 2625 px). Each book renders
in its own child process, so its peak RSS is its own (VmHWM of that child; the pictures
are made beforehand by the parent). Pictures are
PNGs like the model's outputs: smooth colour fields plus fine grain, four per book, cycled.
Targets (issue 10): <= 1.5 s per page and peak RSS <= 500 MB on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PAGES = 32
SIZES = (1024, 2592)
TARGET_S_PER_PAGE = 1.5
TARGET_RSS_MB = 500


def make_picture(seed: int, side: int, path: Path) -> None:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((side, side), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.normal(0, 6, size=(side, side, 3)).astype(np.int16)
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(path, format="PNG")


def peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM): unlike ru_maxrss it does not carry the
    parent's peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source_path(work: Path, side: int, seed: int) -> Path:
    return work / f"source-{side}-{seed}.png"


def render_book(side: int, work: Path) -> dict[str, object]:
    """In the child: build the spec, render interior + cover, report time and memory."""
    from exports.cover import render_cover
    from exports.interior import render_interior
    from exports.spec import BookSpec, CoverSpec, PageSpec, Picture

    sources = [
        Picture(path=source_path(work, side, seed), size=(side, side), number=seed) for seed in range(4)
    ]
    text = "Pip the fox ran down to the river, where the water was cold and bright and full of stones."
    pages = tuple(PageSpec(n, text, sources[n % 4]) for n in range(1, PAGES + 1))
    book = BookSpec("Pip and the River", "8.5x8.5", pages, cover=CoverSpec(front=sources[0]))
    base_rss = peak_rss_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    interior = render_interior(book, work / f"interior-{side}.pdf")
    wall_interior = time.perf_counter() - wall0
    cover = render_cover(book, work / f"cover-{side}.pdf")
    return {
        "side": side,
        "pages": PAGES,
        "wall_s": time.perf_counter() - wall0,
        "wall_interior_s": wall_interior,
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": base_rss,
        "interior_mb": interior.bytes / 1e6,
        "cover_mb": cover.bytes / 1e6,
        "warnings": len(interior.warnings) + len(cover.warnings),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(render_book(args.child, args.work)))
        return 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
        for side in SIZES:
            for seed in range(4):  # made here, so the child's peak RSS is the export's alone
                make_picture(seed, side, source_path(Path(work), side, seed))
            load = os.getloadavg()[0]
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_export", "--child", str(side), "--work", work],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            per_page = r["wall_s"] / (PAGES + 1)  # the cover is one more page to render
            ok = per_page <= TARGET_S_PER_PAGE and r["peak_rss_mb"] <= TARGET_RSS_MB
            failed |= not ok
            print(
                f"{side}² pictures, 32 pages + cover: {r['wall_s']:.1f} s wall "
                f"({per_page:.2f} s/page; interior alone {r['wall_interior_s'] / PAGES:.2f} s/page), "
                f"{r['cpu_s'] / (PAGES + 1):.2f} s CPU/page, peak RSS {r['peak_rss_mb']:.0f} MB "
                f"(imports {r['rss_before_mb']:.0f} MB), interior {r['interior_mb']:.1f} MB, "
                f"cover {r['cover_mb']:.1f} MB, {r['warnings']} warnings, load avg at start {load:.1f} "
                f"-> {'ok' if ok else 'OVER TARGET'}",
                flush=True,
            )
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
