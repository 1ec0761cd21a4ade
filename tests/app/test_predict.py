"""POST /predict and /predict/batch: answers, defaults, and train/serve parity."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.utils.data import COMMITTED_MODELS, SAMPLES, real_archive_or_skip
from tests.utils.reference import numpy_calibrated_tta
from training.core import artifacts, openvino_runtime
from training.core.forward import logits_model
from training.core.novelty import split_rows
from training.core.preprocessing import scale_images


def test_predict_returns_class_probabilities_and_top_k(client: TestClient, png_bytes: bytes) -> None:
    response = client.post("/predict", files={"file": ("cat.png", png_bytes, "image/png")}, params={"top_k": 5})
    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["version"]) == ("model_1", 1)
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert [entry["probability"] for entry in body["top_k"]] == sorted(body["probabilities"].values(), reverse=True)[:5]
    assert body["class_name"] == body["top_k"][0]["name"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["class_index"] == list(body["probabilities"]).index(body["class_name"])


def test_top_k_defaults_to_three(client: TestClient, png_bytes: bytes) -> None:
    assert len(client.post("/predict", files={"file": ("a.png", png_bytes)}).json()["top_k"]) == 3


def test_model_and_version_can_be_chosen(client: TestClient, png_bytes: bytes) -> None:
    response = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"model": "model_1", "version": 1})
    assert response.status_code == 200
    assert response.json()["version"] == 1


def test_batch_returns_one_result_per_file_in_order_with_errors_inline(client: TestClient, png_bytes: bytes) -> None:
    files = [("files", ("a.png", png_bytes)), ("files", ("bad.txt", b"not an image")), ("files", ("c.png", png_bytes))]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["a.png", "bad.txt", "c.png"]
    # Same image, so the same answer (to float32 rounding: the two may share a batch or not).
    assert results[0]["prediction"]["probabilities"] == pytest.approx(
        results[2]["prediction"]["probabilities"], abs=1e-6
    )
    assert (
        results[1]["prediction"] is None
        and results[1]["status"] == 415
        and "not a supported image" in results[1]["error"]
    )


def test_batch_refuses_too_many_files(client: TestClient, png_bytes: bytes) -> None:
    files = [("files", (f"{i}.png", png_bytes)) for i in range(33)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 400
    assert "at most 32" in response.json()["detail"]


def test_concurrent_requests_get_their_own_answers(client: TestClient) -> None:
    samples = json.loads((SAMPLES / "samples.json").read_text())[:12]

    def classify(sample: dict) -> dict:
        data = (SAMPLES / sample["file"]).read_bytes()
        return client.post("/predict", files={"file": (sample["file"], data)}).json()

    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(classify, samples))
    sequential = [classify(sample) for sample in samples]
    for together, alone in zip(concurrent, sequential, strict=True):
        assert together["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-5)


@pytest.mark.parametrize("name", ["model_1", "model_2", "whitened_convnet"])
def test_http_predictions_equal_in_process_predictions_on_raw_arrays(committed_client: TestClient, name: str) -> None:
    """No train/serve skew: PNG over HTTP gives the model's own answer on the raw uint8 arrays."""
    if not artifacts.list_versions(COMMITTED_MODELS, name):
        pytest.skip(f"{name} is not committed")
    folder = artifacts.version_dir(COMMITTED_MODELS, name)
    metadata = artifacts.load_artifact(folder).metadata
    model = artifacts.load_keras_model(folder)
    samples = json.loads((SAMPLES / "samples.json").read_text())
    raw = np.stack([np.asarray(Image.open(SAMPLES / s["file"])) for s in samples])
    (served,) = [m for m in committed_client.get("/models").json()["models"] if m["name"] == name]
    if served["versions"][-1]["backend"] == "openvino-int8":  # Its own answers are the int8 file's.
        expected = _int8_answers(folder, raw)
    else:
        inputs = scale_images(raw, metadata.scaling)
        tta, temperature, average = metadata.test_time_augmentation, metadata.temperature, metadata.tta_average
        expected = numpy_calibrated_tta(logits_model(model), inputs, tta, temperature, average)
    for sample, row in zip(samples, expected, strict=True):
        png = (SAMPLES / sample["file"]).read_bytes()
        params = {"model": name, "version": folder.name}  # The newest, whether or not the gate promoted it.
        body = committed_client.post("/predict", files={"file": ("x.png", png)}, params=params).json()
        assert body["class_index"] == int(row.argmax()), sample["file"]
        assert list(body["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-5)


def _int8_answers(folder: Path, images: np.ndarray) -> np.ndarray:
    core = openvino_runtime.openvino().Core()
    model = core.read_model(folder / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return split_rows(np.asarray(compiled([images])[0]))[0]  # Without the novelty score, if it answers one.


def test_sample_pngs_are_the_real_test_images() -> None:
    from training.data import load_cifar10

    dataset = load_cifar10(real_archive_or_skip())
    for sample in json.loads((SAMPLES / "samples.json").read_text()):
        pixels = np.asarray(Image.open(SAMPLES / sample["file"]))
        assert np.array_equal(pixels, dataset.x_test[sample["test_index"]])
        assert dataset.y_test[sample["test_index"]] == sample["label"]


def test_default_model_is_the_most_accurate(committed_client: TestClient) -> None:
    listing = committed_client.get("/models").json()
    best = max(listing["models"], key=lambda m: m["test_accuracy"])
    assert listing["default_model"] == best["name"]
    png = next(SAMPLES.glob("*.png")).read_bytes()
    assert committed_client.post("/predict", files={"file": ("a.png", png)}).json()["model"] == best["name"]


def test_samples_exist() -> None:
    assert len(list(Path(SAMPLES).glob("*.png"))) == 40


def test_large_photo_is_decoded_off_the_event_loop_and_classified(client: TestClient) -> None:
    import io

    buffer = io.BytesIO()
    Image.effect_noise((400, 300), 60).convert("RGB").save(buffer, format="JPEG", quality=95)
    assert len(buffer.getvalue()) > 16 * 1024  # Above the inline-decoding threshold.
    response = client.post("/predict", files={"file": ("photo.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200
    assert len(response.json()["probabilities"]) == 10
