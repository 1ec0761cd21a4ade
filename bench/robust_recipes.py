"""What buys robustness per training minute: whitened_convnet recipes side by side.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz \\
        python bench/robust_recipes.py --store /tmp/recipes [--only ft2-c60,ft4-c50] [--table-only]

Each recipe is trained (one at a time, never two at once) and recorded as a run group in
`--store` (models/whitened_convnet/runs/<recipe>/0/: metrics and summary, no weights); a
recipe already recorded there is not trained again, so the script resumes. The fine-tuning
recipes start from v4's weights (`--init-from`), the ones v8 serves. Every recipe keeps
the standard hold-out, so its temperature is fitted on images it never trained on. The
report is the one publishing writes, through the served forward pass (three views), with
the corruption benchmark on `--corruption-images` test images per corruption and severity.

Printed per recipe: lossless and JPEG q75 accuracy, corruption mean and severity-5 mean
(and the mean over the kinds it never trained on), ECE clean and under corruption, and
training minutes. Prints the CPU flags, since machines differ between runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from training.core import records, runs  # noqa: E402
from training.train import TrainOptions, train  # noqa: E402

NAME = "whitened_convnet"
V4 = REPO / "models" / NAME / "4"
# Recipe name -> TrainOptions overrides (the architecture's recipe otherwise: 24 epochs, JPEG share 0.5).
RECIPES: dict[str, dict[str, Any]] = {
    "ft2-c60": {"init_from": V4, "epochs": 2, "corruption_fraction": 0.6},
    "ft2-c30": {"init_from": V4, "epochs": 2, "corruption_fraction": 0.3},
    "ft4-c50": {"init_from": V4, "epochs": 4, "corruption_fraction": 0.5},
    # A tenth of the recipe's peak rate: adapt v4's weights to damage without undoing them.
    "ft4-c50-lr10": {"init_from": V4, "epochs": 4, "corruption_fraction": 0.5, "learning_rate": 0.075},
    # AugMix-style mixing on half the images, its operations disjoint from the benchmark: only JPEG is seen.
    "ft4-augmix50-lr10": {
        "init_from": V4,
        "epochs": 4,
        "corruption_fraction": 0.0,
        "augmix_fraction": 0.5,
        "learning_rate": 0.075,
    },
    # Both: damage of the kinds it is tested on, and mixing that is not.
    "ft4-c50-augmix50-lr10": {
        "init_from": V4,
        "epochs": 4,
        "corruption_fraction": 0.5,
        "augmix_fraction": 0.5,
        "learning_rate": 0.075,
    },
    "scratch16-c50": {"epochs": 16, "corruption_fraction": 0.5},
    "scratch24-c50": {"corruption_fraction": 0.5},
}


def recorded(store: Path, recipe: str) -> records.Metrics | None:
    if 0 not in runs.list_runs(store, NAME).get(recipe, []):
        return None
    return runs.load_run(store, NAME, recipe, 0).metrics


def row(recipe: str, metrics: records.Metrics) -> str:
    report = metrics.corruption
    assert report is not None and metrics.robustness is not None and metrics.probability_scores is not None
    return (
        f"| {recipe} | {metrics.test_accuracy:.2%} | {metrics.robustness['jpeg_q75']:.2%} | "
        f"{report.mean_accuracy:.2%} | {report.by_severity['5']:.2%} | {report.unseen_mean_accuracy:.2%} | "
        f"{metrics.probability_scores.ece:.4f} | {report.ece:.4f} | {metrics.training_seconds / 60:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="scratch model store for the run records")
    parser.add_argument("--only", help="comma-separated recipe names (default: all)")
    parser.add_argument("--corruption-images", type=int, default=200, help="per corruption and severity")
    parser.add_argument("--table-only", action="store_true", help="print what is recorded; train nothing")
    args = parser.parse_args()
    print(machine.describe(), flush=True)
    chosen = args.only.split(",") if args.only else list(RECIPES)
    for recipe in chosen:
        if args.table_only or recorded(args.store, recipe) is not None:
            continue
        print(f"== training {recipe}: {RECIPES[recipe]}", flush=True)
        options = TrainOptions(
            NAME, models_dir=args.store, run_group=recipe, corruption_images=args.corruption_images, verbose=2
        )
        train(TrainOptions(**{**options.__dict__, **RECIPES[recipe]}))
    print(
        "\n| recipe | lossless | JPEG q75 | corruption mean | severity 5 | unseen kinds | ECE clean | ECE corrupted "
        "| training min |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for recipe in chosen:
        metrics = recorded(args.store, recipe)
        if metrics is not None:
            print(row(recipe, metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
