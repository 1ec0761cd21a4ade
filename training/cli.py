"""`python -m training train <architecture> [options]` and `python -m training list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.architectures import ARCHITECTURES
from training.data import DATA_ENV_VAR, DatasetError
from training.train import TrainOptions, train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train an architecture and publish a new model version")
    train.add_argument("architecture", choices=sorted(ARCHITECTURES))
    train.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    train.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    train.add_argument("--data", type=Path, help=f"CIFAR-10 archive or folder (default: ${DATA_ENV_VAR})")
    train.add_argument("--models-dir", type=Path, default=Path("models"), help="model store (default: models)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--limit", type=int, help="train on the first N training images only (quick runs)")
    commands.add_parser("list", help="list the architectures and their recipes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, architecture in sorted(ARCHITECTURES.items()):
            print(f"{name:18} {architecture.description}")
        return 0
    for flag in ("epochs", "batch_size", "limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            print(f"error: --{flag.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2

    options = TrainOptions(
        architecture=args.architecture,
        models_dir=args.models_dir,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        limit=args.limit,
    )
    try:
        published = train(options)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: no version was published; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"published {published}")
    return 0
