"""How many test-time-augmentation views a version needs: accuracy against views (1, 2, 3, 4, 6).

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/tta_views.py whitened_convnet/3

Each view costs one forward pass, so serving cost grows linearly with the views. For
each version this computes every view's logits once (the six of `hflip_translate`:
the image, shifted one pixel up-left and down-right, each also mirrored) on the full
test set, lossless and re-encoded as JPEG q75, then scores subsets with the version's
own temperature and averaging, weights renormalised:

    1 view: the image; 2: + its mirror (`hflip`); 3: + the image shifted one pixel up-left
    (`hflip_plus_shift`); 4: + that shift's mirror (`hflip_shift`); 6: all (`hflip_translate`).

A version can serve fewer views when they stay within 0.1 point of the six (`python -m
training calibrate SOURCE --tta hflip_plus_shift` publishes such a version, its
temperature refitted and its accuracies measured through exactly that forward pass).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from training import robustness  # noqa: E402
from training.core import artifacts  # noqa: E402
from training.core.forward import view_logits  # noqa: E402
from training.core.preprocessing import TestTimeAugmentation, TtaAverage  # noqa: E402
from training.data import load_cifar10  # noqa: E402

SUBSETS = {1: [0], 2: [0, 1], 3: [0, 1, 2], 4: [0, 1, 2, 3], 6: [0, 1, 2, 3, 4, 5]}  # Indices into tta_views' order.


def subset_accuracy(
    logits: np.ndarray, weights: np.ndarray, views: list[int], labels: np.ndarray, temperature: float, average: str
) -> float:
    """Accuracy of the served rule restricted to `views`: logits (views, N, classes)."""
    chosen = weights[views] / weights[views].sum()
    if TtaAverage(average) is TtaAverage.LOGITS:
        combined = np.tensordot(chosen, logits[views], axes=1)
    else:
        scaled = logits[views] / temperature
        exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        combined = np.tensordot(chosen, exp / exp.sum(axis=-1, keepdims=True), axes=1)
    return float((combined.argmax(axis=1) == labels).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="name/version, e.g. whitened_convnet/3")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--limit", type=int, help="first N test images only (quick checks)")
    args = parser.parse_args()
    print(machine.describe())
    dataset = load_cifar10()
    images, labels = dataset.x_test[: args.limit], dataset.y_test[: args.limit].ravel()
    inputs = {"lossless": images, "jpeg_q75": robustness.jpeg(images, 75)}
    print(f"{len(labels)} test images; accuracy by number of views (same logits, subsets)")
    print("| version | input | " + " | ".join(f"{n} views" for n in SUBSETS) + " |")
    print("|---|---|" + "---|" * len(SUBSETS))
    for name in args.versions:
        folder = args.models_dir / name
        metadata = artifacts.load_artifact(folder).metadata
        model = artifacts.load_keras_model(folder)
        for label, batch in inputs.items():
            logits, weights = view_logits(model, metadata.scaling, TestTimeAugmentation.HFLIP_TRANSLATE, batch)
            row = [
                subset_accuracy(logits, weights, views, labels, metadata.temperature, metadata.tta_average)
                for views in SUBSETS.values()
            ]
            print(f"| {name} | {label} | " + " | ".join(f"{value:.2%}" for value in row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
