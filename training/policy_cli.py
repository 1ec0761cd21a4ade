"""`python -m training serve-policy NAME ...`: edit a model's serving.json without hand-editing JSON.

Every change reads the current policy (or the default), applies the flags, validates
the result through the store format and writes it atomically; the service picks it up
at its next scan, without a restart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.core import artifacts, policy
from training.core.policy import LoadPolicy, ServingPolicy


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve-policy", help="show or change which versions of a model are served, the default, and labels"
    )
    parser.add_argument("name", help="model name, e.g. model_1")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="model store (default: models)")
    pin = parser.add_mutually_exclusive_group()
    pin.add_argument("--pin", type=int, metavar="VERSION", help="make VERSION the default (overrides the gate)")
    pin.add_argument("--unpin", action="store_true", help="let the promotion gate choose the default again")
    parser.add_argument("--label", action="append", default=[], metavar="LABEL=VERSION", help="e.g. canary=3")
    parser.add_argument("--unlabel", action="append", default=[], metavar="LABEL", help="remove a label")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--latest", type=int, metavar="N", help="load only the newest N versions")
    load.add_argument("--specific", metavar="V1,V2", help="load exactly these versions")
    load.add_argument("--all", action="store_true", help="load every version (the default)")


def run(args: argparse.Namespace) -> str:
    """Apply the flags; returns the policy as written (or as it stands, without flags)."""
    current = policy.load_policy(args.models_dir, args.name) or ServingPolicy()
    versions = artifacts.list_versions(args.models_dir, args.name)
    if not versions:
        raise ValueError(f"model {args.name!r} has no versions in {args.models_dir}")
    changes = _changes(args, current)
    if not changes:
        return current.model_dump_json(indent=2)
    updated = ServingPolicy.model_validate(current.model_dump() | changes)
    named = {*updated.labels.values(), *updated.versions}
    if updated.default_version is not None:
        named.add(updated.default_version)
    missing = sorted(version for version in named if version not in versions)
    if missing:
        raise ValueError(f"model {args.name!r} has no version {missing} (versions: {versions})")
    policy.save_policy(args.models_dir, args.name, updated)
    return updated.model_dump_json(indent=2)


def _changes(args: argparse.Namespace, current: ServingPolicy) -> dict[str, object]:
    changes: dict[str, object] = {}
    if args.pin is not None:
        changes["default_version"] = args.pin
    if args.unpin:
        changes["default_version"] = None
    if args.label or args.unlabel:
        labels = dict(current.labels)
        for pair in args.label:
            label, _, version = pair.partition("=")
            if not version.isdigit():
                raise ValueError(f"--label takes LABEL=VERSION, got {pair!r}")
            labels[label] = int(version)
        for label in args.unlabel:
            if labels.pop(label, None) is None:
                raise ValueError(f"there is no label {label!r} to remove")
        changes["labels"] = labels
    if args.latest is not None:
        changes |= {"load": LoadPolicy.LATEST, "count": args.latest, "versions": []}
    if args.specific is not None:
        chosen = [int(part) for part in args.specific.split(",") if part.strip().isdigit()]
        changes |= {"load": LoadPolicy.SPECIFIC, "versions": chosen}
    if args.all:
        changes |= {"load": LoadPolicy.ALL, "versions": []}
    return changes
