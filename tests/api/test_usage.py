"""Usage and cost: per-job cost from the price table, `GET /usage` sums, dry-run estimates, manage.py."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from config import Settings
from tests.conftest import make_settings, manage_env, new_key
from tests.fake_openai import FakeOpenAI
from tests.imagegen import png, upload

ROOT = Path(__file__).resolve().parents[2]
SCENE = "Mia opens an umbrella in the rain"
FLARE = "gpt-image-2.5-flare"  # built-in price: text in $5, image in $8, image out $30 per 1M
SUNBURST = "gpt-image-2.6-sunburst"  # overridden below: $2 / $4 / $10 per 1M


def cost(model: str, usage: dict[str, Any]) -> float:
    text_in, image_in, image_out = (5, 8, 30) if model == FLARE else (2, 4, 10)
    details = usage["input_tokens_details"]
    dollars = details["text_tokens"] * text_in + details["image_tokens"] * image_in
    return round((dollars + usage["output_tokens"] * image_out) / 1_000_000, 6)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings(data_dir: Path, fake_upstream: tuple[FakeOpenAI, str]) -> Settings:
    return make_settings(
        data_dir,
        image_backend="openai",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=f"{fake_upstream[1]}/v1",
        openai_max_retries=0,
        price_overrides={SUNBURST: {"text_in": 2, "image_in": 4, "image_out": 10}},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.runtime.clock = clock
    with TestClient(app) as test_client:
        yield test_client


def bearer(client: TestClient, workspace: str, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(client.app, workspace, name)}"}  # type: ignore[arg-type]


def generate(client: TestClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.post("/generate-image", headers=auth, json={"prompt": SCENE, **fields})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def history(client: TestClient, clock: Clock, fake: FakeOpenAI) -> dict[str, Any]:
    """Four succeeded jobs over two days, two models, two keys; one failed job that must not count."""
    laptop, script = bearer(client, "alpha", "laptop"), bearer(client, "alpha", "script")
    assert upload(client, laptop, png(1)).status_code == 201
    day1 = [
        generate(client, laptop, reference_images=[0], quality="low"),
        generate(client, script, model=SUNBURST, n=2, quality="low"),
    ]
    clock.now = datetime(2026, 11, 21, 23, 59, tzinfo=UTC)
    day2 = [generate(client, laptop), generate(client, laptop, model=SUNBURST)]
    fake.fail("server_error")
    failed = client.post("/generate-image", headers=script, json={"prompt": SCENE})
    assert failed.status_code == 503
    clock.now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    return {"laptop": laptop, "script": script, "day1": day1, "day2": day2}


def test_every_answer_carries_usage_and_its_cost_from_the_price_table(
    client: TestClient, history: dict[str, Any]
) -> None:
    with_reference, two_images = history["day1"]
    assert with_reference["usage"]["input_tokens_details"]["image_tokens"] > 0
    assert with_reference["estimated_cost_usd"] == cost(FLARE, with_reference["usage"])
    assert two_images["estimated_cost_usd"] == cost(SUNBURST, two_images["usage"])
    # 2 images x 1056 output tokens at the overridden $10/1M, plus the prompt's text tokens at $2.
    text = two_images["usage"]["input_tokens_details"]["text_tokens"]
    assert two_images["estimated_cost_usd"] == round((2 * 1056 * 10 + text * 2) / 1e6, 6)
    shown = client.get(f"/generations/{two_images['id']}", headers=history["laptop"]).json()
    assert shown["estimated_cost_usd"] == two_images["estimated_cost_usd"]
    assert shown["usage"] == two_images["usage"]


def _sums(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    usage = [job["usage"] for job in jobs]
    return {
        "generations": len(jobs),
        "images": sum(len(job["images"]) for job in jobs),
        "input_tokens": sum(u["input_tokens"] for u in usage),
        "output_tokens": sum(u["output_tokens"] for u in usage),
        "text_tokens": sum(u["input_tokens_details"]["text_tokens"] for u in usage),
        "image_tokens": sum(u["input_tokens_details"]["image_tokens"] for u in usage),
        "estimated_cost_usd": pytest.approx(sum(job["estimated_cost_usd"] for job in jobs), abs=1e-6),
    }


def test_usage_by_day_sums_succeeded_jobs_only(client: TestClient, history: dict[str, Any]) -> None:
    answer = client.get(
        "/usage", params={"from": "2026-11-20", "to": "2026-11-22"}, headers=history["laptop"]
    ).json()
    day1, day2 = history["day1"], history["day2"]
    assert answer["from"] == "2026-11-20"
    assert answer["to"] == "2026-11-22"
    assert answer["group_by"] == "day"
    assert answer["rows"] == [
        {"day": "2026-11-20", **_sums(day1)},
        {"day": "2026-11-21", **_sums(day2)},
    ]
    assert answer["total"] == _sums(day1 + day2)
    assert answer["total"]["generations"] == 4
    assert answer["total"]["images"] == 5


def test_usage_by_model_and_by_key(client: TestClient, history: dict[str, Any]) -> None:
    everything = history["day1"] + history["day2"]
    period = {"from": "2026-11-20", "to": "2026-11-21"}
    by_model = client.get("/usage", params={**period, "group_by": "model"}, headers=history["laptop"]).json()
    assert by_model["rows"] == [
        {"model": FLARE, **_sums([j for j in everything if j["model"] == FLARE])},
        {"model": SUNBURST, **_sums([j for j in everything if j["model"] == SUNBURST])},
    ]
    by_key = client.get("/usage", params={**period, "group_by": "key"}, headers=history["laptop"]).json()
    laptop_jobs = [history["day1"][0], *history["day2"]]
    rows = {row["key_name"]: row for row in by_key["rows"]}
    assert set(rows) == {"laptop", "script"}
    assert {k: v for k, v in rows["laptop"].items() if k not in {"key_id", "key_name"}} == _sums(laptop_jobs)
    assert rows["script"]["generations"] == 1  # its failed job is not there
    assert by_key["total"] == _sums(everything)


def test_usage_period_defaults_and_boundaries(client: TestClient, history: dict[str, Any]) -> None:
    auth = history["laptop"]
    default = client.get("/usage", headers=auth).json()  # the clock says 2026-11-22
    assert (default["from"], default["to"]) == ("2026-10-24", "2026-11-22")
    assert default["total"]["generations"] == 4
    one_day = client.get("/usage", params={"from": "2026-11-21", "to": "2026-11-21"}, headers=auth).json()
    assert one_day["total"]["generations"] == 2  # 23:59 on the 21st is still the 21st
    other = client.get("/usage", headers=bearer(client, "beta", "b")).json()
    assert other["rows"] == []
    assert other["total"]["generations"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-11-22", "to": "2026-11-01"}, "from"),
        ({"group_by": "week"}, "group_by"),
    ],
)
def test_bad_usage_queries_are_422_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/usage", params=params, headers=bearer(client, "alpha", "k"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_dry_run_carries_the_estimate_before_spending(client: TestClient, fake: FakeOpenAI) -> None:
    auth = bearer(client, "alpha", "k")
    response = client.post(
        "/generate-image",
        headers=auth,
        json={
            "prompt": SCENE,
            "model": FLARE,
            "size": "1024x1024",
            "quality": "low",
            "n": 2,
            "dry_run": True,
        },
    )
    assert response.status_code == 200
    preview = response.json()
    text_tokens = math.ceil(len(preview["prompt"]) / 4)
    # 2 images x 272 tokens (low, 1024x1024) at $30/1M, plus the prompt at $5/1M.
    assert preview["estimated_cost_usd"] == round((2 * 272 * 30 + text_tokens * 5) / 1e6, 6)
    assert fake.requests == []


def test_manage_usage_prints_the_same_table_for_an_operator(
    client: TestClient, history: dict[str, Any], data_dir: Path
) -> None:
    bearer(client, "beta", "idle")  # a workspace with no usage is left out of the report
    api = client.get(
        "/usage",
        params={"from": "2026-11-20", "to": "2026-11-22", "group_by": "model"},
        headers=history["laptop"],
    ).json()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "usage",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-22",
            "--group-by",
            "model",
        ],
        capture_output=True,
        text=True,
        env=manage_env(data_dir, {}),
        cwd=data_dir.parent,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "workspace 'alpha', 2026-11-20 to 2026-11-22 (UTC), by model:"
    table = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    for row in api["rows"]:
        gens, images, *_, cost_usd = table[row["model"]]
        assert (int(gens), int(images)) == (row["generations"], row["images"])
        assert float(cost_usd) == pytest.approx(row["estimated_cost_usd"], abs=1e-6)
    assert float(table["total"][-1]) == pytest.approx(api["total"]["estimated_cost_usd"], abs=1e-6)
    assert "beta" not in result.stdout  # a workspace without usage is left out
