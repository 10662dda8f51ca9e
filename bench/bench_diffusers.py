"""Benchmark the local diffusion backend: Storyloom's per-image overhead around the pipeline call.

Run: `.venv/bin/python -m bench.bench_diffusers` (about a minute on 2 busy cores; options
`--samples`, `--steps`, `--size`). Needs requirements-local.txt.

The tiny random Stable Diffusion model of the tests (tests/tiny_diffusion.py), saved and loaded
through the real `DIFFUSERS_MODEL` path on the CPU, 64x64, 4 steps. Alternating, `--samples`
times each:

- the pipeline call alone: the loaded text-to-image pipeline called directly with the same
  arguments the backend sends (prompt, seed's generator, size, steps);
- the backend's `generate` (the pipeline call in a worker thread under the device lock, and
  the PNG encoding);
- one scene end to end: `POST /generate-image` (sync) through the whole app: validation, job
  row, queue, the same pipeline call in a worker thread under the device lock, PNG encoding,
  store, thumbnail, pHash, the job's `succeeded` transaction, the answer.

Overhead = p50(end to end) - p50(pipeline call); reported as a ratio of the pipeline call.
Each request uses a new seed so no picture is deduplicated away.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from api_server import create_app
    from generation.backends.base import BackendRequest
    from generation.params import SceneParams
    from tests.conftest import make_settings, new_key
    from tests.tiny_diffusion import build_tiny_model

    torch.set_num_threads(1)  # one core for the pipeline, as on a busy 2-core machine
    with tempfile.TemporaryDirectory(prefix="bench-diffusers-") as scratch:
        model = build_tiny_model(Path(scratch) / "tiny-sd")
        settings = make_settings(
            Path(scratch) / "data",
            image_backend="diffusers",
            diffusers_model=model,
            diffusers_device="cpu",
            rate_limit_per_minute=0,
            generations_per_minute=0,
            max_active_jobs_per_workspace=0,
            daily_image_quota=0,
            log_level="WARNING",
        )
        app = create_app(settings)
        with TestClient(app) as client:
            auth = {"Authorization": f"Bearer {new_key(app)}"}
            pipeline = app.state.runtime.backend.pipelines.text2image
            side = args.size

            def direct(seed: int) -> float:
                started = time.perf_counter()
                with torch.inference_mode():
                    pipeline(
                        prompt="a fox in the snow",
                        num_images_per_prompt=1,
                        generator=torch.Generator("cpu").manual_seed(seed),
                        width=side,
                        height=side,
                        num_inference_steps=args.steps,
                        output_type="pil",
                    )
                return time.perf_counter() - started

            backend = app.state.runtime.backend

            def generate(seed: int) -> float:
                params = SceneParams(size=f"{side}x{side}", steps=args.steps, seed=seed)
                request = BackendRequest(prompt="a fox in the snow", model="local-diffusion", params=params)
                started = time.perf_counter()
                client.portal.call(backend.generate, request)  # type: ignore[union-attr]
                return time.perf_counter() - started

            def scene(seed: int, local: bool = True) -> float:
                body: dict[str, object] = {"prompt": "a fox in the snow", "size": f"{side}x{side}"}
                if local:
                    body["steps"] = args.steps
                started = time.perf_counter()
                response = client.post("/generate-image", headers=auth, json={**body, "seed": seed})
                elapsed = time.perf_counter() - started
                assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text
                return elapsed

            direct(0), generate(0), scene(0)  # warm-up: first calls allocate
            calls, backend_calls, scenes = [], [], []
            for seed in range(1, args.samples + 1):
                calls.append(direct(seed))
                backend_calls.append(generate(seed))
                scenes.append(scene(seed))
        # The same scene on the offline draft backend: the bookkeeping with a near-free "model".
        draft_app = create_app(settings.model_copy(update={"image_backend": "draft"}))
        with TestClient(draft_app) as client:
            auth = {"Authorization": f"Bearer {new_key(draft_app)}"}
            scene(0, local=False)
            drafts = [scene(seed, local=False) for seed in range(1, args.samples + 1)]
    call, in_backend = statistics.median(calls), statistics.median(backend_calls)
    end_to_end = statistics.median(scenes)
    overhead = end_to_end - call
    print(f"tiny SD, {side}x{side}, {args.steps} steps, CPU, {args.samples} samples each")
    print(f"pipeline call alone   p50 {call * 1000:7.1f} ms  (min {min(calls) * 1000:.1f})")
    print(f"backend.generate      p50 {in_backend * 1000:7.1f} ms  (thread hop, lock, PNG encoding)")
    print(f"POST /generate-image  p50 {end_to_end * 1000:7.1f} ms  (min {min(scenes) * 1000:.1f})")
    print(f"draft backend scene   p50 {statistics.median(drafts) * 1000:7.1f} ms  (same app, no model)")
    print(f"Storyloom overhead        {overhead * 1000:7.1f} ms = {overhead / call:.2f}x the pipeline call")


if __name__ == "__main__":
    main()
