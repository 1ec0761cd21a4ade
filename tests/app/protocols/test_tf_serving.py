"""TensorFlow Serving's REST API (v1), with requests exactly as its documentation shows them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.utils.data import SAMPLES
from tests.utils.servers import threaded_server
from training.core import policy

SAMPLE_FILES = sorted(SAMPLES.glob("*.png"))[:4]


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tiny store with a second version of model_1 labelled canary (version 1 is stable)."""
    import shutil

    store = tmp_path_factory.mktemp("v1-store")
    shutil.copytree(tiny_store, store, dirs_exist_ok=True)
    shutil.copytree(store / "model_1" / "1", store / "model_1" / "2")
    policy.save_policy(store, "model_1", policy.ServingPolicy(labels={"stable": 1, "canary": 2}))
    with threaded_server(store) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def expected(server: str) -> np.ndarray:
    rows = []
    for path in SAMPLE_FILES:
        body = httpx.post(f"{server}/predict", files={"file": ("x.png", path.read_bytes())}, timeout=30).json()
        rows.append(list(body["probabilities"].values()))
    return np.array(rows, np.float32)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_model_status(server: str) -> None:
    status = httpx.get(f"{server}/v1/models/model_1", timeout=10).json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("2", "AVAILABLE"), ("1", "AVAILABLE")]
    assert status[0]["status"] == {"error_code": "OK", "error_message": ""}
    one = httpx.get(f"{server}/v1/models/model_1/versions/1", timeout=10).json()["model_version_status"]
    assert [s["version"] for s in one] == ["1"]
    labelled = httpx.get(f"{server}/v1/models/model_1/labels/canary", timeout=10).json()["model_version_status"]
    assert [s["version"] for s in labelled] == ["2"]


def test_metadata_is_a_signature_def(server: str) -> None:
    body = httpx.get(f"{server}/v1/models/model_1/metadata", timeout=10).json()
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["images"]["dtype"] == "DT_UINT8"
    assert [d["size"] for d in signature["inputs"]["images"]["tensor_shape"]["dim"]] == ["-1", "32", "32", "3"]
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert body["model_spec"]["version"] == "2"


def test_row_format_with_b64_images(server: str, expected: np.ndarray) -> None:
    request = {"instances": [{"b64": _b64(path)} for path in SAMPLE_FILES]}
    response = httpx.post(f"{server}/v1/models/model_1:predict", json=request, timeout=30)
    assert response.status_code == 200
    assert np.array(response.json()["predictions"]) == pytest.approx(expected, abs=1e-5)


def test_columnar_format_with_pixel_lists(server: str, expected: np.ndarray) -> None:
    pixels = [np.asarray(Image.open(path)).tolist() for path in SAMPLE_FILES]
    response = httpx.post(f"{server}/v1/models/model_1/versions/1:predict", json={"inputs": pixels}, timeout=30)
    assert response.status_code == 200
    assert np.array(response.json()["outputs"]) == pytest.approx(expected, abs=1e-5)


def test_named_inputs_and_labels(server: str, expected: np.ndarray) -> None:
    request = {"signature_name": "serving_default", "instances": [{"images": {"b64": _b64(SAMPLE_FILES[0])}}]}
    response = httpx.post(f"{server}/v1/models/model_1/labels/stable:predict", json=request, timeout=30)
    assert response.status_code == 200
    assert np.array(response.json()["predictions"][0]) == pytest.approx(expected[0], abs=1e-5)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/models/model_1:predict", b"{nope", 400),
        ("/v1/models/model_1:predict", b'{"instances": [], "inputs": []}', 400),
        ("/v1/models/model_1:predict", b'{"instances": [[1, 2, 3]]}', 400),
        ("/v1/models/model_1:predict", b'{"instances": [{"b64": "%%%"}]}', 400),
        ("/v1/models/model_1:predict", b'{"instances": [{"b64": "dGV4dA=="}]}', 415),
        ("/v1/models/model_1:predict", b'{"instances": [{"b64": ""}], "signature_name": "other"}', 400),
        ("/v1/models/nope:predict", b'{"instances": []}', 404),
        ("/v1/models/model_1/versions/9:predict", b'{"instances": []}', 404),
        ("/v1/models/model_1/labels/beta:predict", b'{"instances": []}', 404),
    ],
)
def test_errors_use_tf_servings_body_and_statuses(server: str, path: str, body: bytes, status: int) -> None:
    response = httpx.post(f"{server}{path}", content=body, timeout=30)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
