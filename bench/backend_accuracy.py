"""Does the faster backend serve the same answers? Accuracy of each backend on the full test set.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz \\
        python bench/backend_accuracy.py whitened_convnet/4 whitened_convnet/5 model_1/2 model_2/3

For each version: its served forward pass on TensorFlow (the reference) and on OpenVINO
(the fp32 IR compiled when the version was published, loaded as the service loads it), run on the
10,000 test images lossless and re-encoded as JPEG q75; prints both accuracies, their
difference in points, the share of images whose class differs, and the largest probability
difference. The goal is a difference within 0.1 point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.backends import Backend  # noqa: E402
from app.config import Settings  # noqa: E402
from app.inference import load_servable  # noqa: E402
from bench import machine  # noqa: E402
from training import robustness  # noqa: E402
from training.core.novelty import split_rows  # noqa: E402
from training.data import load_cifar10  # noqa: E402


def in_batches(predict: object, images: np.ndarray, size: int = 500) -> np.ndarray:
    """The class probabilities (N, 10): a version with a novelty score answers it in an eleventh column,
    which argmax would otherwise count as a class."""
    rows = np.concatenate([predict(images[i : i + size]) for i in range(0, len(images), size)])  # type: ignore[operator]
    return split_rows(rows)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="name/version, e.g. whitened_convnet/4")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    print(machine.describe())
    dataset = load_cifar10()
    images, labels = dataset.x_test[: args.limit], dataset.y_test[: args.limit].ravel()
    inputs = {"lossless": images, "jpeg_q75": robustness.jpeg(images, 75)}
    print("| version | input | TensorFlow | OpenVINO | difference (points) | classes differ | max prob. difference |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.versions:
        folder = args.models_dir / name
        backends = {
            backend: load_servable(folder, Settings(inference_backend=backend, tf_intra_op_threads=2).backend_options())
            for backend in (Backend.TENSORFLOW, Backend.OPENVINO)
        }
        assert backends[Backend.OPENVINO].backend is Backend.OPENVINO, backends[Backend.OPENVINO].refused
        for label, batch in inputs.items():
            tf_out = in_batches(backends[Backend.TENSORFLOW].predict, batch)
            ov_out = in_batches(backends[Backend.OPENVINO].predict, batch)
            tf_acc = float((tf_out.argmax(1) == labels).mean())
            ov_acc = float((ov_out.argmax(1) == labels).mean())
            differ = float((tf_out.argmax(1) != ov_out.argmax(1)).mean())
            print(
                f"| {name} | {label} | {tf_acc:.2%} | {ov_acc:.2%} | {(ov_acc - tf_acc) * 100:+.2f} | "
                f"{differ:.2%} | {np.abs(tf_out - ov_out).max():.1e} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
