"""Inference backends: a faster runtime serves only what it computes exactly as TensorFlow does."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.backends import Backend, BackendOptions, compile_forward, installed, probe_images, slower_than
from app.inference import load_servable
from tests.utils.data import COMMITTED_MODELS, SAMPLES
from tests.utils.servers import running_client
from training.core import artifacts
from training.core.forward import make_forward

needs_openvino = pytest.mark.skipif(not installed(Backend.OPENVINO), reason="openvino is not installed")


def _forward(folder: Path):
    metadata = artifacts.load_artifact(folder).metadata
    model = artifacts.load_keras_model(folder)
    return make_forward(
        model, metadata.scaling, metadata.test_time_augmentation, metadata.temperature, metadata.tta_average
    )


def _samples() -> np.ndarray:
    samples = json.loads((SAMPLES / "samples.json").read_text())
    return np.stack([np.asarray(Image.open(SAMPLES / sample["file"])) for sample in samples])


def _committed_versions() -> list[str]:
    return [
        f"{name}/{version}"
        for name in artifacts.list_models(COMMITTED_MODELS)
        for version in artifacts.list_versions(COMMITTED_MODELS, name)
    ]


def _versions(client: TestClient, name: str) -> list[dict]:
    (model,) = [model for model in client.get("/models").json()["models"] if model["name"] == name]
    return model["versions"]


def test_probe_batch_is_fixed_and_photo_like() -> None:
    first, second = probe_images(), probe_images()
    assert first.dtype == np.uint8 and first.shape == (16, 32, 32, 3)
    np.testing.assert_array_equal(first, second)
    # Smooth: neighbouring pixels are far closer than in uniform noise (mean gap ~85).
    assert np.abs(np.diff(first.astype(int), axis=2)).mean() < 25


@needs_openvino
@pytest.mark.slow
@pytest.mark.parametrize("version", _committed_versions())
def test_openvino_serves_every_committed_version_as_tensorflow_does(version: str, tmp_path: Path) -> None:
    """Parity on the 40 real test images: same class, probabilities within float32 accumulation error."""
    folder = COMMITTED_MODELS / version
    forward = _forward(folder)
    options = BackendOptions(Backend.OPENVINO, threads=2, parity_tolerance=1e-4, cache_dir=tmp_path)
    compiled = compile_forward(forward, artifacts.content_digest(folder), options)
    assert compiled.backend is Backend.OPENVINO, compiled.refused
    images = _samples()
    expected = forward(images).numpy()
    served = compiled.predict(images)
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(served, expected, atol=1e-5)


@needs_openvino
def test_a_converted_model_that_disagrees_is_refused_and_tensorflow_serves(tiny_store: Path, tmp_path: Path) -> None:
    """A stale or wrong cache entry (another version's graph under this version's key) must not serve."""
    folder = tiny_store / "model_1" / "1"
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    model = artifacts.load_keras_model(other)
    for weights in model.weights:  # A different network with the same layers.
        weights.assign(np.asarray(weights) * 1.5 + 0.01)
    model.save(other / artifacts.MODEL_FILE)
    key = artifacts.content_digest(folder)
    cache = tmp_path / "cache"
    options = BackendOptions(Backend.OPENVINO, threads=1, cache_dir=cache)
    poisoned = compile_forward(_forward(other), key, options)  # Caches the other network under this key.
    assert poisoned.backend is Backend.OPENVINO

    compiled = compile_forward(_forward(folder), key, options)

    assert compiled.backend is Backend.TENSORFLOW
    assert "disagrees with TensorFlow" in compiled.refused[Backend.OPENVINO]
    reference = _forward(folder)(probe_images()).numpy()
    np.testing.assert_array_equal(compiled.predict(probe_images()), reference)


@needs_openvino
def test_tolerance_decides_refusal(tiny_store: Path, tmp_path: Path) -> None:
    folder = tiny_store / "model_1" / "1"
    strict = BackendOptions(Backend.AUTO, parity_tolerance=1e-30, cache_dir=tmp_path)
    compiled = compile_forward(_forward(folder), artifacts.content_digest(folder), strict)
    assert compiled.backend is Backend.TENSORFLOW
    assert "tolerance 1e-30" in compiled.refused[Backend.OPENVINO]


@needs_openvino
def test_conversion_is_cached_and_a_damaged_cache_is_converted_again(tiny_store: Path, tmp_path: Path) -> None:
    folder = tiny_store / "model_1" / "1"
    options = BackendOptions(Backend.OPENVINO, cache_dir=tmp_path)
    load_servable(folder, options)
    (entry,) = (tmp_path / "openvino").iterdir()
    assert {path.name for path in entry.iterdir()} == {"model.xml", "model.bin"}
    (entry / "model.xml").write_text("not a model")

    servable = load_servable(folder, options)

    assert servable.backend is Backend.OPENVINO
    assert not list(tmp_path.glob("openvino/.staging-*")), "no staging folder left behind"


def test_tensorflow_when_asked(tiny_store: Path, tmp_path: Path) -> None:
    servable = load_servable(tiny_store / "model_1" / "1", BackendOptions(Backend.TENSORFLOW, cache_dir=tmp_path))
    assert servable.backend is Backend.TENSORFLOW and servable.refused == {}
    assert not tmp_path.joinpath("openvino").exists(), "nothing converted"


@needs_openvino
def test_models_endpoint_names_the_backend_and_why_a_faster_one_was_refused(tiny_store: Path, tmp_path: Path) -> None:
    with running_client(tiny_store, backend_parity_tolerance=1e-30, backend_cache_dir=tmp_path) as strict:
        (version,) = _versions(strict, "model_1")
    assert version["backend"] == "tensorflow"
    assert "disagrees with TensorFlow" in version["backend_refused"]["openvino"]
    with running_client(tiny_store, inference_backend="openvino", backend_cache_dir=tmp_path) as asked:
        (version,) = _versions(asked, "model_1")
        response = asked.post("/predict", files={"file": ("x.png", (SAMPLES / "test_00000_cat.png").read_bytes())})
    assert version["backend"] == "openvino" and version["backend_refused"] == {}
    assert response.status_code == 200


def test_auto_keeps_tensorflow_when_the_candidate_is_slower() -> None:
    def quick(images: np.ndarray) -> np.ndarray:
        return np.zeros((len(images), 10), np.float32)

    def slow(images: np.ndarray) -> np.ndarray:
        time.sleep(0.002)
        return quick(images)

    assert slower_than(quick, slow, batch_size=8) is None
    verdict = slower_than(slow, quick, batch_size=8)
    assert verdict is not None and "for a batch of 1" in verdict
