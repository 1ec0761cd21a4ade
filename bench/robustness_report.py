"""Accuracy on uploads as users send them, and how honest the probabilities are, for several
versions side by side, all measured in this one run through each version's served forward pass.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz \\
        python bench/robustness_report.py whitened_convnet/2 whitened_convnet/3 model_1/2 model_1/3

For each version: accuracy on the 10,000 test images lossless, re-encoded as JPEG at
quality 95/75/50 and shrunk to 16 px and enlarged again (training/robustness.py); ECE
(15 bins), NLL and Brier score of the served probabilities on the lossless images; and,
from metrics.json, training time, images/s and GFLOP/s. `--limit N` uses the first N
test images (quick checks). Prints the CPU flags, since machines differ between runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from bench.flops import forward_flops  # noqa: E402
from training import calibration, robustness  # noqa: E402
from training.core import artifacts  # noqa: E402
from training.core.forward import forward_for, predict_in_batches  # noqa: E402
from training.data import load_cifar10  # noqa: E402


def measure(folder: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    artifact = artifacts.load_artifact(folder)
    model = artifacts.load_keras_model(folder)
    metadata = artifact.metadata
    forward = forward_for(model, metadata)

    def predict(batch: np.ndarray) -> np.ndarray:
        return predict_in_batches(forward, batch)

    start = time.perf_counter()
    probabilities = predict(images)
    row: dict[str, float] = {"lossless": float((probabilities.argmax(axis=1) == labels).mean())}
    row |= robustness.accuracy_under_conditions(predict, images, labels)
    scores = calibration.scores(probabilities, labels)
    row |= {"ece": scores.ece, "nll": scores.nll, "brier": scores.brier, "confidence": scores.mean_confidence}
    row["temperature"] = metadata.temperature
    metrics = artifact.metrics
    train_flops = 3 * forward_flops(model) * metrics.hyperparameters["train_images"] * metrics.epochs
    row |= {
        "train_minutes": metrics.training_seconds / 60,
        "images_per_second": metrics.images_per_second,
        "gflops_per_second": train_flops / metrics.training_seconds / 1e9,
        "seconds": time.perf_counter() - start,
    }
    return row


COLUMNS = (
    ("lossless", "{:.2%}"),
    ("jpeg_q95", "{:.2%}"),
    ("jpeg_q75", "{:.2%}"),
    ("jpeg_q50", "{:.2%}"),
    ("downscale_16px", "{:.2%}"),
    ("ece", "{:.4f}"),
    ("nll", "{:.4f}"),
    ("brier", "{:.4f}"),
    ("confidence", "{:.3f}"),
    ("temperature", "{:.3f}"),
    ("train_minutes", "{:.1f}"),
    ("images_per_second", "{:.0f}"),
    ("gflops_per_second", "{:.0f}"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="name/version, e.g. whitened_convnet/3")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--limit", type=int, help="first N test images only")
    args = parser.parse_args()
    print(machine.describe())
    dataset = load_cifar10()
    images, labels = dataset.x_test[: args.limit], dataset.y_test[: args.limit]
    print(f"test images: {len(labels)}")
    print("| version | " + " | ".join(name for name, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for version in args.versions:
        row = measure(args.models_dir / version, images, labels)
        cells = [template.format(row[name]) for name, template in COLUMNS]
        print(f"| {version} | " + " | ".join(cells) + f" |  ({row['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
