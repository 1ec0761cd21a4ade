"""Would int8 serve the same answers? Post-training quantization of a version's served graph.

    pip install nncf   # not a dependency of the service: int8 is measured here, not shipped
    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/int8_openvino.py whitened_convnet/5

Converts the version's forward pass (scaling, TTA and temperature inside) to OpenVINO,
quantizes it with NNCF on `--calibration` training images (never test images), then
measures fp32 and int8 on the full test set, lossless and JPEG q75, and their speed at
batch 1 and 32 (median of 30 calls, this process only). int8 ships only if it stays
within 0.1 point of fp32 on both inputs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from training import robustness  # noqa: E402
from training.core import artifacts  # noqa: E402
from training.core.forward import make_forward  # noqa: E402
from training.data import load_cifar10  # noqa: E402


def milliseconds(compiled: object, images: np.ndarray) -> float:
    request = compiled.create_infer_request()  # type: ignore[attr-defined]
    request.infer([images])
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        request.infer([images])
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def accuracy(compiled: object, images: np.ndarray, labels: np.ndarray) -> float:
    request = compiled.create_infer_request()  # type: ignore[attr-defined]
    outputs = [np.array(request.infer([images[i : i + 500]])[0]) for i in range(0, len(images), 500)]
    return float((np.concatenate(outputs).argmax(1) == labels).mean())


def main() -> int:
    import nncf
    import openvino as ov

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="name/version, e.g. whitened_convnet/5")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--calibration", type=int, default=512, help="training images NNCF calibrates on")
    args = parser.parse_args()
    print(machine.describe())
    folder = args.models_dir / args.version
    metadata = artifacts.load_artifact(folder).metadata
    model = artifacts.load_keras_model(folder)
    forward = make_forward(
        model, metadata.scaling, metadata.test_time_augmentation, metadata.temperature, metadata.tta_average
    )
    fp32 = ov.convert_model(forward.get_concrete_function())
    dataset = load_cifar10()
    calibration = dataset.x_train[np.random.default_rng(0).choice(len(dataset.x_train), args.calibration, False)]
    int8 = nncf.quantize(fp32, nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))]))
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    compiled = {"fp32": core.compile_model(fp32, "CPU", config), "int8": core.compile_model(int8, "CPU", config)}
    labels = dataset.y_test.ravel()
    inputs = {"lossless": dataset.x_test, "jpeg_q75": robustness.jpeg(dataset.x_test, 75)}
    print(f"| {args.version} | lossless | JPEG q75 | ms, batch 1 | ms, batch 32 |")
    print("|---|---:|---:|---:|---:|")
    for name, network in compiled.items():
        scores = [accuracy(network, images, labels) for images in inputs.values()]
        speed = [milliseconds(network, dataset.x_test[:size]) for size in (1, 32)]
        print(f"| {name} | {scores[0]:.2%} | {scores[1]:.2%} | {speed[0]:.2f} | {speed[1]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
