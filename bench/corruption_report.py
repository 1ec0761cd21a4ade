"""Accuracy and calibration on everyday-photo damage, through each version's served forward pass.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz \\
        python bench/corruption_report.py whitened_convnet/8 whitened_convnet/9

Each version is loaded by the service's own loader (`app.inference.load_servable`, the
backend `--backend` asks for, `auto` by default: int8 where the version has a passing
int8 model), so the figures are those a user of the running service gets. Per version:
accuracy on the 10,000 test images lossless and as JPEG q75, ECE on them, and on the
corruption benchmark (`training.corruptions`: 18 kinds x 5 severities on a fixed,
class-balanced subset of `--images` test images) the mean, the severity-5 mean, the mean
over the kinds the version's training never used, and the ECE over every damaged image;
then accuracy per corruption. Prints the CPU flags, since machines differ between runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.backends import Backend  # noqa: E402
from app.config import Settings  # noqa: E402
from app.inference import load_servable  # noqa: E402
from bench import machine  # noqa: E402
from training import augment, calibration, robustness  # noqa: E402
from training.core.novelty import split_rows  # noqa: E402
from training.core.records import CorruptionReport  # noqa: E402
from training.data import load_cifar10  # noqa: E402

BATCH = 500


def measure(
    folder: Path, images: np.ndarray, labels: np.ndarray, backend: Backend, size: int
) -> tuple[str, dict[str, float], CorruptionReport]:
    servable = load_servable(folder, Settings(inference_backend=backend, tf_intra_op_threads=2).backend_options())

    def predict(batch: np.ndarray) -> np.ndarray:
        rows = np.concatenate([servable.predict(batch[i : i + BATCH]) for i in range(0, len(batch), BATCH)])
        return split_rows(rows)[0]  # Without the novelty score, for versions that answer one.

    clean = predict(images)
    row = {
        "lossless": float((clean.argmax(1) == labels).mean()),
        "jpeg_q75": float((predict(robustness.jpeg(images, 75)).argmax(1) == labels).mean()),
        "ece": calibration.scores(clean, labels).ece,
    }
    seen = augment.seen_corruptions(servable.artifact.metrics.hyperparameters)
    return str(servable.backend), row, robustness.corruption_report(predict, images, labels, seen, size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="name/version, e.g. whitened_convnet/8")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--backend", choices=[b.value for b in Backend], default=Backend.AUTO.value)
    parser.add_argument("--images", type=int, default=robustness.CORRUPTION_IMAGES, help="per corruption and severity")
    args = parser.parse_args()
    print(machine.describe())
    dataset = load_cifar10()
    images, labels = dataset.x_test, dataset.y_test.ravel()
    reports: dict[str, CorruptionReport] = {}
    print(
        "| version | backend | lossless | JPEG q75 | corruption mean | severity 5 | unseen kinds | ECE clean "
        "| ECE corrupted | seconds |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for version in args.versions:
        start = time.perf_counter()
        backend, row, report = measure(args.models_dir / version, images, labels, Backend(args.backend), args.images)
        reports[version] = report
        print(
            f"| {version} | {backend} | {row['lossless']:.2%} | {row['jpeg_q75']:.2%} | "
            f"{report.mean_accuracy:.2%} | {report.by_severity['5']:.2%} | {report.unseen_mean_accuracy:.2%} | "
            f"{row['ece']:.4f} | {report.ece:.4f} | {time.perf_counter() - start:.0f} |",
            flush=True,
        )
    print("\nPer corruption, mean over severities 1-5 (* = also a training augmentation of that version):\n")
    print("| corruption | " + " | ".join(reports) + " |")
    print("|---|" + "---:|" * len(reports))
    for name in next(iter(reports.values())).by_corruption:
        cells = [
            f"{np.mean(report.by_corruption[name]):.2%}{'*' if name in report.seen_in_training else ''}"
            for report in reports.values()
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
