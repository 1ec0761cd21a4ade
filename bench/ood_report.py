"""How well each version tells images of none of the ten classes from CIFAR-10's, as served.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz \\
        python bench/ood_report.py whitened_convnet/10 whitened_convnet/12

Each version is loaded by the service's own loader (`app.inference.load_servable`, int8
where it passes), so the scores are those the running service answers. In-distribution:
the 10,000 test images. Out of distribution: `--images` of each kind of
`training.ood_sets` (a draw with `--seed`; nothing in them was fitted on: the score's
statistics and threshold come from training images only). Per kind, for the top
probability (the baseline: low means unsure) and for the version's novelty score: AUROC
(in-distribution against that kind) and FPR95 (the share of that kind passing as in
distribution at the threshold that keeps 95% of the test images); for the score also the
share the served threshold flags. Then the share of damaged test images (a few of the
corruption benchmark's kinds at severity 3) the served threshold flags, accuracy, and the
means over the far kinds (everything but `blends` and `tiles`, which are made of CIFAR
images themselves). Prints the CPU flags, since machines differ between runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.config import Settings  # noqa: E402
from app.inference import Servable, load_servable  # noqa: E402
from bench import machine  # noqa: E402
from training import corruptions, ood_sets  # noqa: E402
from training.core.novelty import split_rows  # noqa: E402
from training.data import load_cifar10  # noqa: E402

BATCH = 500
NEAR_KINDS = ("blends", "tiles")  # Made of CIFAR-10 test images: near the classes, reported apart.
DAMAGE = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "contrast",
    "jpeg_compression",
    "fog",
)  # Severity 3.


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(an outside image scores higher than an inside one), ties counted half: Mann-Whitney's U."""
    ranks = rankdata(np.concatenate([inside, outside]))
    outside_ranks = ranks[len(inside) :].sum()
    return float((outside_ranks - len(outside) * (len(outside) + 1) / 2) / (len(inside) * len(outside)))


def fpr_at_95(inside: np.ndarray, outside: np.ndarray) -> float:
    """Share of outside images at or below the score that keeps 95% of the inside ones."""
    return float((outside <= np.quantile(inside, 0.95)).mean())


def answers(servable: Servable, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    rows = np.concatenate([servable.predict(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])
    return split_rows(rows)


def report(servable: Servable, dataset_images: np.ndarray, labels: np.ndarray, sets: dict[str, np.ndarray]) -> None:
    probabilities, scores = answers(servable, dataset_images)
    threshold = servable.novelty.threshold
    print(f"\n### {servable.artifact.name} v{servable.artifact.version} on {servable.backend}")
    print(f"accuracy {(probabilities.argmax(1) == labels).mean():.2%}", end="")
    if scores is None or threshold is None:
        print(f"; no novelty score: {servable.novelty.reason}")
    else:
        kept = (scores <= threshold).mean()
        print(f"; threshold {threshold:.4f} keeps {kept:.2%} of the test images")
    print("\n| kind | AUROC top probability | FPR95 top probability | AUROC score | FPR95 score | flagged |")
    print("|---|---:|---:|---:|---:|---:|")
    far: list[tuple[float, float, float, float]] = []
    for kind, images in sets.items():
        outside_probabilities, outside_scores = answers(servable, images)
        baseline = (
            auroc(-probabilities.max(1), -outside_probabilities.max(1)),
            fpr_at_95(-probabilities.max(1), -outside_probabilities.max(1)),
        )
        cells = [f"{baseline[0]:.3f}", f"{baseline[1]:.2f}"]
        chosen = (float("nan"), float("nan"))
        if scores is not None and outside_scores is not None and threshold is not None:
            chosen = (auroc(scores, outside_scores), fpr_at_95(scores, outside_scores))
            cells += [f"{chosen[0]:.3f}", f"{chosen[1]:.2f}", f"{(outside_scores > threshold).mean():.2%}"]
        else:
            cells += ["-", "-", "-"]
        if kind not in NEAR_KINDS:
            far.append((*baseline, *chosen))
        print(f"| {kind} | " + " | ".join(cells) + " |")
    means = [f"{value:.3f}" if np.isfinite(value) else "-" for value in np.mean(far, axis=0)]
    print(f"| **far kinds, mean** | {means[0]} | {means[1]} | {means[2]} | {means[3]} | |")
    if scores is not None and threshold is not None:
        print("\nDamaged test images flagged (in distribution, so lower is better), severity 3:")
        for kind in DAMAGE:
            _, damaged = answers(servable, corruptions.corrupt(dataset_images[:2000], kind, 3, seed=0))
            assert damaged is not None
            print(f"  {kind}: {(damaged > threshold).mean():.2%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="+", help="name/version, e.g. whitened_convnet/12")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--images", type=int, default=2000, help="images per out-of-distribution kind")
    parser.add_argument("--seed", type=int, default=2026, help="of the out-of-distribution draws")
    args = parser.parse_args()
    print(machine.describe())
    dataset = load_cifar10()
    labels = dataset.y_test.ravel()
    sets = {kind: ood_sets.make(kind, args.images, args.seed, dataset.x_test, labels) for kind in ood_sets.KINDS}
    options = Settings(tf_intra_op_threads=2).backend_options()
    for version in args.versions:
        report(load_servable(args.models_dir / version, options), dataset.x_test, labels, sets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
