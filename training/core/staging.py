"""Staged writes: build a file or folder under a hidden name, then rename it into place.

A reader (the service polls the store) sees the old content or the new, never half of
it; a writer killed halfway leaves only a hidden `.tmp-<pid>-...` entry, which
`training.core.artifacts.remove_stale_staging` clears once that process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

STAGING_PREFIX = ".tmp-"


def staging_name(target: Path) -> Path:
    """A hidden sibling of `target`, unique to this process and call."""
    return target.with_name(f"{STAGING_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{target.name}")


def publish(staged: Path, target: Path) -> None:
    """Move a finished file or folder into place in one rename: atomic for readers. A file replaces
    `target`; a folder takes a missing or empty `target` and raises OSError onto a non-empty one (which
    makes it an atomic "create if absent": version numbers are claimed this way)."""
    os.replace(staged, target)


def set_aside(path: Path, suffix: str) -> Path:
    """Rename a file that must not be read again (a damaged backup) to a sibling ending in `suffix`,
    replacing an earlier one of that name, and return the new path: kept for a post-mortem, never loaded."""
    aside = path.with_name(path.name + suffix)
    publish(path, aside)
    return aside


@contextlib.contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """Yield a path to write; on success it is flushed to disk and replaces `target` in one rename, on
    failure (a full disk included) it is removed: `target` is the old file or the new, never half of one."""
    staging = staging_name(target)
    try:
        yield staging
        _fsync(staging)
        publish(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def staged_dir(target: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty folder to fill; on success it takes `target`'s place (any old one is removed,
    or, with `overwrite=False`, OSError is raised and the old one kept)."""
    staging = staging_name(target)
    staging.mkdir(parents=True)
    try:
        yield staging
        retired = staging_name(target)
        if overwrite and target.exists():  # A rename cannot replace a non-empty folder: move the old one aside.
            publish(target, retired)
        publish(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
