"""A quantized version's int8 model against its fp32 procedure: accuracy re-measured, and speed.

    python -m training quantize models/whitened_convnet/5     # publishes v6 with openvino-int8/
    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/int8_openvino.py whitened_convnet/6

Scores the full test set, lossless and JPEG q75, through TensorFlow (the reference),
OpenVINO fp32 (the IR compiled when the version was published) and the
stored int8 model, and checks that int8's figures equal those recorded in
metadata.json at quantization. Then times the two OpenVINO models at batch 1 and 32
(median of 30 calls, in this process), compiled as the service compiles them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.backends import Backend  # noqa: E402
from app.config import Settings  # noqa: E402
from app.inference import load_servable  # noqa: E402
from bench import machine  # noqa: E402
from training import robustness  # noqa: E402
from training.core import artifacts  # noqa: E402
from training.core.forward import forward_for, predict_in_batches  # noqa: E402
from training.core.novelty import split_rows  # noqa: E402
from training.data import load_cifar10  # noqa: E402


def milliseconds(predict, images: np.ndarray) -> float:
    predict(images)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        predict(images)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def accuracy(predict, images: np.ndarray, labels: np.ndarray) -> float:
    outputs = [predict(images[i : i + 500]) for i in range(0, len(images), 500)]
    return float((np.concatenate(outputs).argmax(1) == labels).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="name/version of a quantized version, e.g. whitened_convnet/6")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(machine.describe())
    folder = args.models_dir / args.version
    metadata = artifacts.load_artifact(folder).metadata
    if metadata.quantization is None:
        print(f"{args.version} has no int8 model: python -m training quantize models/{args.version}")
        return 2
    forward = forward_for(artifacts.load_keras_model(folder), metadata)
    backends = {
        "tensorflow": lambda images: predict_in_batches(forward, images),
        "openvino fp32": served(folder, Backend.OPENVINO, args.threads),
        "openvino int8": served(folder, Backend.OPENVINO_INT8, args.threads),
    }
    dataset = load_cifar10()
    labels = dataset.y_test.ravel()
    inputs = {"lossless": dataset.x_test, "jpeg_q75": robustness.jpeg(dataset.x_test, 75)}
    print(f"\n| {args.version} | lossless | JPEG q75 | ms, batch 1 | ms, batch 32 |")
    print("|---|---:|---:|---:|---:|")
    measured = {}
    for name, predict in backends.items():
        measured[name] = {condition: accuracy(predict, images, labels) for condition, images in inputs.items()}
        speed = [milliseconds(predict, dataset.x_test[:size]) for size in (1, 32)]
        scores = " | ".join(f"{value:.2%}" for value in measured[name].values())
        print(f"| {name} | {scores} | {speed[0]:.2f} | {speed[1]:.2f} |", flush=True)
    recorded = {condition: metadata.quantization.accuracy[condition] for condition in inputs}
    same = measured["openvino int8"] == recorded
    print(f"\nint8 accuracy recorded at quantization: {recorded} -> {'reproduced' if same else 'DIFFERENT here'}")
    return 0


def served(folder: Path, backend: Backend, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The version's forward pass on `backend` as the service loads it, answering class probabilities."""
    options = Settings(
        inference_backend=backend, tf_intra_op_threads=threads, int8_max_drop_points=100.0
    ).backend_options()
    compiled = load_servable(folder, options)
    if compiled.backend is not backend:
        raise SystemExit(f"{backend} refused: {compiled.refused}")
    # The probabilities only: a version with a novelty score answers it in an eleventh column, which
    # argmax would otherwise count as a class (v15 read 40.72% here for 93.53%, stop 58).
    return lambda images: split_rows(compiled.predict(images))[0]


if __name__ == "__main__":
    raise SystemExit(main())
