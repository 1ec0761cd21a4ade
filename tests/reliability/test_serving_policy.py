"""A serving.json that turns invalid (a typo'd key, a file cut off mid-write) keeps the last valid policy
in force on a running server: the pinned default and the labels stay, and GET /models says why. The first
probing round saw a truncated file move the default from v1 to v2 and `?label=stable` answer 404."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.utils.images import encode
from tests.utils.servers import server_process
from training.core import policy

pytestmark = pytest.mark.reliability
POLL = 0.5


def _model_1(client: httpx.Client) -> dict[str, Any]:
    body = client.get("/models").json()
    models = body["models"] if isinstance(body, dict) else body
    return next(model for model in models if model["name"] == "model_1")


def test_an_invalid_policy_file_keeps_the_pin_and_the_labels(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "models"
    shutil.copytree(tiny_store, store)
    shutil.copytree(store / "model_1" / "1", store / "model_1" / "2")
    policy.save_policy(store, "model_1", policy.ServingPolicy(default_version=1, labels={"stable": 1}))
    image = encode(Image.new("RGB", (32, 32), "red"), "PNG")
    with (
        server_process(store, tmp_path / "server.log", POLL_INTERVAL_SECONDS=str(POLL)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):

        def answered_versions() -> tuple[int, int]:
            default = client.post("/predict?model=model_1", files={"file": ("a.png", image)})
            stable = client.post("/predict?model=model_1&label=stable", files={"file": ("a.png", image)})
            assert default.status_code == 200 and stable.status_code == 200, (default.text, stable.text)
            return default.json()["version"], stable.json()["version"]

        assert answered_versions() == (1, 1)
        policy_file = store / "model_1" / policy.POLICY_FILE
        for broken in ('{"default_version": 1, "lables": {"stable": 1}}', '{"default_version": 1, "lab'):
            policy_file.write_text(broken)
            time.sleep(4 * POLL)
            assert answered_versions() == (1, 1), broken
            info = _model_1(client)
            assert info["served_version"] == 1 and info["labels"] == {"stable": 1}
            assert "keeping the last valid policy from" in info["policy_error"], info["policy_error"]
        policy.save_policy(store, "model_1", policy.ServingPolicy(default_version=2))  # Fixed: the file rules.
        time.sleep(4 * POLL)
        assert _model_1(client)["served_version"] == 2 and _model_1(client)["policy_error"] is None
