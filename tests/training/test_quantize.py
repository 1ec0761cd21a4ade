"""int8 quantization: a new version that keeps its source and records what int8 really scores."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.utils.data import REPO, TINY_HOLDOUT
from tests.utils.int8 import INT8_ACROSS_CPUS, fits_seven_bits, int8_weights
from training.core import artifacts, openvino_runtime
from training.core.preprocessing import probe_images
from training.data import calibration_split, load_cifar10

# Checked, not imported: NNCF brings pandas, networkx and scikit-learn into every process that collects this file,
# and openvino is imported through its one door (`openvino_runtime.openvino`), by the tests that use it.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None,
    reason="openvino and nncf are needed",
)


@pytest.fixture(scope="module")
def quantized(quantized_store: Path) -> Path:
    return quantized_store / "model_1" / "2"


def _assert_same_accuracy(recorded: float, probabilities: np.ndarray, labels: np.ndarray) -> None:
    """The recorded accuracy is the measured one exactly, but for images whose top two classes are closer
    than int8's difference between CPUs (the store may have been recorded on another kind)."""
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    close_calls = int((top_two[:, 1] - top_two[:, 0] < 2 * INT8_ACROSS_CPUS).sum())
    measured = float((probabilities.argmax(axis=1) == labels).mean())
    assert abs(recorded - measured) <= close_calls / len(labels), (recorded, measured, close_calls)


def _int8(folder: Path):
    core = openvino_runtime.openvino().Core()
    model = core.read_model(folder / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE)
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def test_a_new_version_keeps_the_source_and_adds_the_int8_model(quantized: Path) -> None:
    source = quantized.parent / "1"
    new, old = artifacts.load_artifact(quantized), artifacts.load_artifact(source)
    quantization = new.metadata.quantization
    assert quantized.name == "2" and quantization is not None and quantization.source_version == 1
    assert old.metadata.quantization is None, "the source is left as it was"
    assert new.metrics == old.metrics, "the TensorFlow reference figures are the source's"
    assert new.metadata.test_accuracy == old.metadata.test_accuracy
    assert (quantized / artifacts.INT8_DIR / "model.bin").stat().st_size > 0
    for kept, original in zip(
        artifacts.load_keras_model(quantized).weights, artifacts.load_keras_model(source).weights, strict=True
    ):
        np.testing.assert_array_equal(kept.numpy(), original.numpy())


def test_every_int8_weight_fits_in_seven_bits(quantized: Path) -> None:
    """So CPUs without VNNI do not saturate and give the answers recorded on any other CPU (NNCF's overflow
    fix on every layer; its default fixes only the first, and whitened_convnet v12 failed its check on AVX2)."""
    weights = int8_weights(quantized / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE)
    assert weights, "model_1's second convolution at least (its first reads the pixels in fp32)"
    assert fits_seven_bits(weights), [(w.min(), w.max()) for w in weights]


def test_the_layer_that_reads_the_pixels_stays_fp32_and_the_next_one_is_int8(quantized: Path) -> None:
    """Like the classifier at the other end: on whitened_convnet v14, quantizing its first layer (the
    whitening filter) cost held-out agreement with fp32 for no speed (docs/benchmarks.md, stop 44)."""
    model = openvino_runtime.openvino().Core().read_model(quantized / artifacts.INT8_DIR / artifacts.INT8_MODEL_FILE)
    first, second = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"][:2]
    assert not _quantized_inputs(first), "the first convolution reads fp32 pixels with fp32 weights"
    assert _quantized_inputs(second) == {"FakeQuantize", "i8"}, "the second is quantized, activations and weights"


def _quantized_inputs(convolution) -> set[str]:
    """What quantizes the convolution's inputs: a FakeQuantize on the activations, int8 constants in the
    weights' decompression (Convert, Subtract, Multiply), looked for up to three operations upstream."""
    found, pending = set(), [(value.get_node(), 0) for value in convolution.input_values()]
    while pending:
        node, depth = pending.pop()
        if node.get_type_name() == "FakeQuantize":
            found.add("FakeQuantize")
        elif (
            node.get_type_name() == "Constant"
            and node.get_output_element_type(0) == openvino_runtime.openvino().Type.i8
        ):
            found.add("i8")
        elif node.get_type_name() in ("Convert", "Subtract", "Multiply", "Reshape") and depth < 3:
            pending.extend((value.get_node(), depth + 1) for value in node.input_values())
    return found


def test_the_quantizer_saw_only_the_recorded_hold_out(quantized: Path, tiny_cifar_dir: Path) -> None:
    """Re-derive the split from what the version records: the source's own hold-out, never test images."""
    quantization = artifacts.load_artifact(quantized).metadata.quantization
    assert quantization is not None
    split = quantization.calibration
    dataset = load_cifar10(tiny_cifar_dir)
    indices = calibration_split(len(dataset.x_train), split.size, split.seed)
    assert split.source == "train" and split.size == TINY_HOLDOUT and split.train_images == len(dataset.x_train)
    assert hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest() == split.indices_sha256
    source = artifacts.load_artifact(quantized.parent / "1").metrics.calibration
    assert source is not None and source.split == split, "the images the temperature was fitted on"


def test_recorded_accuracy_is_what_the_int8_file_scores(quantized: Path, tiny_cifar_dir: Path) -> None:
    """An independent pass over the test set with the stored file, beside TensorFlow's stored figure."""
    quantization = artifacts.load_artifact(quantized).metadata.quantization
    assert quantization is not None
    dataset = load_cifar10(tiny_cifar_dir)
    probabilities = np.asarray(_int8(quantized)([dataset.x_test])[0])
    _assert_same_accuracy(quantization.accuracy["lossless"], probabilities, dataset.y_test)
    source = artifacts.load_artifact(quantized.parent / "1")
    assert quantization.reference_accuracy["lossless"] == pytest.approx(source.metadata.test_accuracy, abs=1e-9)
    assert set(quantization.accuracy) == set(quantization.reference_accuracy) >= {"lossless", "jpeg_q75"}
    assert 0 <= quantization.agreement <= 1
    np.testing.assert_allclose(
        np.asarray(_int8(quantized)([probe_images()])[0]), quantization.probe_probabilities, atol=INT8_ACROSS_CPUS
    )


def test_the_int8_corruption_report_is_what_the_int8_file_scores(quantized: Path, tiny_cifar_dir: Path) -> None:
    from training.corruptions import corrupt

    quantization = artifacts.load_artifact(quantized).metadata.quantization
    report = quantization.corruption if quantization else None
    assert report is not None
    dataset = load_cifar10(tiny_cifar_dir)
    assert report.images == len(dataset.y_test)
    int8 = _int8(quantized)
    for name in ("gaussian_noise", "fog", "jpeg_compression"):
        damaged = corrupt(dataset.x_test, name, 5, report.seed)
        _assert_same_accuracy(report.by_corruption[name][4], np.asarray(int8([damaged])[0]), dataset.y_test)


@pytest.mark.slow
def test_cli_refuses_what_it_cannot_quantize(quantized: Path, tiny_store: Path, tiny_cifar_dir: Path) -> None:
    def run(source: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "training", "quantize", str(source), "--models-dir", str(source.parent.parent)]
        command += ["--data", str(tiny_cifar_dir)]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)

    again = run(quantized)
    assert again.returncode == 1 and "already carries an int8 model" in again.stderr
    no_holdout = run(tiny_store / "model_1" / "1")
    assert no_holdout.returncode == 1 and "retrain it with --calibration-holdout" in no_holdout.stderr
    assert artifacts.list_versions(quantized.parent.parent, "model_1") == [1, 2], "nothing published"
