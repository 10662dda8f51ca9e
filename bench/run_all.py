"""Run every benchmark in turn (`make bench`); each prints its own figures."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    "bench.bench_library",
    "bench.bench_ratelimit",
    "bench.bench_generate",
    "bench.bench_upload_memory",
    "bench.bench_diffusers",
    "bench.bench_book",
    "bench.bench_export",
    "bench.bench_scale",
]


def main() -> int:
    failed = 0
    for module in BENCHES:
        print(f"== {module}", flush=True)
        failed |= subprocess.call([sys.executable, "-m", module])
    return failed


if __name__ == "__main__":
    sys.exit(main())
