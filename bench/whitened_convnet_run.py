"""Reproduce the strong network's run and report accuracy, wall time, images/s and GFLOP/s.

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/whitened_convnet_run.py
    python bench/whitened_convnet_run.py --report-only   # read the newest committed version

Training runs `python -m training train whitened_convnet` (about an hour on 2 cores)
into --models-dir, then reads the version it published.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.flops import CPU_PEAK_NOTE, cpu_peak_gflops, forward_flops  # noqa: E402
from training.core import artifacts  # noqa: E402

NAME = "whitened_convnet"


def report(folder: Path) -> None:
    metrics = artifacts.load_artifact(folder).metrics
    model = artifacts.load_keras_model(folder)
    forward = forward_flops(model)
    train_flops = 3 * forward * metrics.hyperparameters["train_images"] * metrics.epochs
    achieved = train_flops / metrics.training_seconds / 1e9
    peak, ghz = cpu_peak_gflops()
    print(f"version              {folder}")
    print(
        f"test accuracy        {metrics.test_accuracy:.2%} with {metrics.test_time_augmentation} TTA, "
        f"{metrics.test_accuracy_without_tta or float('nan'):.2%} without"
    )
    print(f"epochs               {metrics.epochs}")
    print(
        f"training time        {metrics.training_seconds / 60:.1f} min (fit only); "
        f"{metrics.wall_seconds / 60:.1f} min with per-epoch validation"
    )
    print(f"images per second    {metrics.images_per_second:.0f}")
    print(f"forward pass         {forward / 1e6:.0f} MFLOP per image; training ~3x = {3 * forward / 1e9:.2f} GFLOP")
    print(f"achieved             {achieved:.0f} GFLOP/s (conv + dense only)")
    if peak:
        print(
            f"CPU peak             {peak:.0f} GFLOP/s at {ghz:.2f} GHz ({CPU_PEAK_NOTE}); {achieved / peak:.0%} of peak"
        )
    print("accuracy vs time (validation on the test set after each epoch, no TTA):")
    elapsed = 0.0
    for row in metrics.history:
        elapsed += row["train_seconds"]
        print(f"  epoch {int(row['epoch']):2d}  {elapsed / 60:5.1f} min  {row.get('val_accuracy', float('nan')):.2%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    args = parser.parse_args()
    if not args.report_only:
        subprocess.run(
            [sys.executable, "-m", "training", "train", NAME, "--models-dir", str(args.models_dir)],
            cwd=REPO,
            check=True,
        )
    report(artifacts.version_dir(args.models_dir, NAME))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
