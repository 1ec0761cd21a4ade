"""Calibration under shift: fit the temperature on the clean hold-out, or on it plus damaged copies?

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz \\
        python bench/shift_calibration.py whitened_convnet/9 [--images 200]

The temperature of a version is fitted on its calibration hold-out: training images it
never trained on (never test images). Photos in use are often damaged, and a temperature
fitted on clean images alone may leave damaged ones overconfident. This fits T twice on
the version's own hold-out, as publishing does (same TTA views, same average): on the
clean images, and on the clean images plus a damaged copy of each (`training.augment`'s
noise, blur and contrast at random strength, every image damaged), then reports
for both the ECE on the 10,000 clean test images and on the corruption benchmark
(`--images` per corruption and severity). The test set only reports; it chooses nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from training import calibration, corruptions, robustness  # noqa: E402
from training.augment import damaged_copy  # noqa: E402
from training.calibrate import load_holdout  # noqa: E402
from training.core import artifacts  # noqa: E402
from training.core.forward import view_logits  # noqa: E402
from training.core.preprocessing import TestTimeAugmentation  # noqa: E402
from training.data import calibration_split  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="name/version, e.g. whitened_convnet/9")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--images", type=int, default=200, help="per corruption and severity")
    parser.add_argument("--tta", choices=[mode.value for mode in TestTimeAugmentation], help="default: the version's")
    args = parser.parse_args()
    print(machine.describe())
    folder = args.models_dir / args.version
    artifact = artifacts.load_artifact(folder)
    metadata = artifact.metadata
    dataset, holdout, seed = load_holdout(artifact, None)
    model = artifacts.load_keras_model(folder)
    indices = calibration_split(len(dataset.x_train), holdout, seed)
    held_out, held_labels = dataset.x_train[indices], dataset.y_train[indices]

    tta = args.tta or metadata.test_time_augmentation

    def logits(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return view_logits(model, metadata.scaling, tta, images)

    clean_fit, weights = logits(held_out)
    damaged_fit, _ = logits(damaged_copy(held_out, seed))
    both = np.concatenate([clean_fit, damaged_fit], axis=1)
    temperatures = {
        "clean hold-out": calibration.fit_temperature(clean_fit, weights, held_labels, metadata.tta_average),
        "clean + damaged hold-out": calibration.fit_temperature(
            both, weights, np.concatenate([held_labels, held_labels]), metadata.tta_average
        ),
    }
    test_logits, _ = logits(dataset.x_test)
    subset = robustness.corruption_subset(dataset.y_test, args.images)
    damaged_test = [
        corruptions.corrupt(dataset.x_test[subset], name, severity, robustness.CORRUPTION_SEED)
        for name in corruptions.CORRUPTIONS
        for severity in corruptions.SEVERITIES
    ]
    corrupted_logits = np.concatenate([logits(images)[0] for images in damaged_test], axis=1)
    corrupted_labels = np.tile(dataset.y_test[subset], len(damaged_test))
    print("| temperature fitted on | T | ECE clean test | ECE corrupted test |")
    print("|---|---:|---:|---:|")
    for label, temperature in temperatures.items():
        clean = calibration.combine(test_logits, weights, temperature, metadata.tta_average)
        corrupted = calibration.combine(corrupted_logits, weights, temperature, metadata.tta_average)
        print(
            f"| {label} | {temperature:.3f} | {calibration.scores(clean, dataset.y_test).ece:.4f} | "
            f"{calibration.scores(corrupted, corrupted_labels).ece:.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
