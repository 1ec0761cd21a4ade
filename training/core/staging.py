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


@contextlib.contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """Yield a path to write; on success it replaces `target` in one rename, on failure it is removed."""
    staging = staging_name(target)
    try:
        yield staging
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_dir(target: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty folder to fill; on success it takes `target`'s place (any old one is removed,
    or, with `overwrite=False`, OSError is raised and the old one kept)."""
    staging = staging_name(target)
    staging.mkdir(parents=True)
    try:
        yield staging
        if not overwrite:
            os.rename(staging, target)  # Fails onto a non-empty folder: atomic "create if absent".
        elif target.exists():  # rename(2) cannot replace a non-empty folder: move the old one aside first.
            retired = staging_name(target)
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
