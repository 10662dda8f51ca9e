"""docs/integrations/n8n.md: its curl commands run as written, and its workflows call what works."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from api_server import create_app
from tests.conftest import ROOT, make_settings, new_key
from tests.image_host import ImageHost
from tests.imagegen import encode, picture, png
from tests.netguard import loopback_only
from tests.servers import serve

DOCS = ROOT / "docs" / "integrations"
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A draft-backend Storyloom and a picture site, both on 127.0.0.1; yields (url, key, picture URL)."""
    site = ImageHost(png(11))
    with loopback_only() as blocked, serve(site, lifespan="off") as site_url:
        app = create_app(
            make_settings(
                tmp_path / "data",
                rate_limit_per_minute=0,
                generations_per_minute=0,
                url_import_allow_hosts=[site_url.removeprefix("http://")],
            )
        )
        with serve(app) as url:
            yield url, new_key(app), f"{site_url}/pic.png"
    assert blocked == []


def test_every_curl_command_in_the_guide_works(live: tuple[str, str, str], tmp_path: Path) -> None:
    url, key, picture_url = live
    work = tmp_path / "work"
    work.mkdir()
    (work / "mia.png").write_bytes(png(1, (96, 64)))
    (work / "scene.png").write_bytes(encode(picture(2, (96, 64)), "PNG"))
    mask = Image.new("RGBA", (96, 64), (0, 0, 0, 255))
    mask.paste(Image.new("RGBA", (40, 30), (0, 0, 0, 0)), (20, 10))
    (work / "mask.png").write_bytes(encode(mask, "PNG"))
    blocks = BLOCK.findall((DOCS / "n8n.md").read_text())
    assert len(blocks) == 5
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STORYLOOM_URL": url, "STORYLOOM_KEY": key}
    env["PICTURE_URL"] = picture_url
    done = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    answers = [json.loads(line) for line in done.stdout.replace("}{", "}\n{").splitlines() if line.strip()]
    assert any(a.get("dry_run") and a["reference_images"] == [0, 2, 3] for a in answers)
    masked = [a for a in answers if a.get("mask") == 4]
    assert masked and masked[0]["reference_images"] == [3]
    assert any(a.get("seed") == 42 for a in answers)
    assert any("data" in a and a["data"][0].get("b64_json") for a in answers)  # the /v1 answers
    headers = {"Authorization": f"Bearer {key}"}
    history = httpx.get(f"{url}/generations", headers=headers).json()
    assert history["total"] == 6  # scene, masked edit, seeded, variations, /v1 generate, /v1 edit


def _workflow(name: str) -> dict[str, Any]:
    return json.loads((DOCS / name).read_text())


def test_http_request_workflow_sends_a_working_request(live: tuple[str, str, str]) -> None:
    url, key, _ = live
    flow = _workflow("n8n-generate-image.json")
    [node] = [n for n in flow["nodes"] if n["name"] == "Storyloom generate-image"]
    params = node["parameters"]
    assert node["type"] == "n8n-nodes-base.httpRequest" and params["method"] == "POST"
    assert params["url"] == "={{ $env.STORYLOOM_URL }}/generate-image"
    assert set(flow["connections"]) == {"When clicking 'Test workflow'", "Storyloom generate-image"}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "n8n-execution-1"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        mia = http.post("/characters", json={"name": "Mia", "description": "a girl with a yellow raincoat"})
        assert mia.status_code == 201
        sent = http.post(
            params["url"].removeprefix("={{ $env.STORYLOOM_URL }}"), json=json.loads(params["jsonBody"])
        )
        assert sent.status_code == 200, sent.text
        assert [c["name"] for c in sent.json()["characters"]] == ["Mia"]
        assert httpx.get(sent.json()["images"][0]["url"].replace("http://testserver", url)).status_code == 200


def test_openai_node_workflow_prompt_works_on_the_facade(live: tuple[str, str, str]) -> None:
    url, key, _ = live
    flow = _workflow("n8n-openai-node.json")
    [node] = [n for n in flow["nodes"] if n["type"] == "@n8n/n8n-nodes-langchain.openAi"]
    params = node["parameters"]
    assert (params["resource"], params["operation"]) == ("image", "generate")
    assert "/v1" in node["credentials"]["openAiApi"]["name"]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        for name in ("Mia", "Captain Bo"):
            assert (
                http.post("/characters", json={"name": name, "description": f"{name}, drawn"}).status_code
                == 201
            )
        body = {"model": params["model"], "prompt": params["prompt"], "size": params["options"]["size"]}
        answer = http.post("/v1/images/generations", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"][0]["b64_json"]
        job = http.get("/generations").json()["items"][0]
        assert [c["name"] for c in job["characters"]] == ["Mia", "Captain Bo"]
