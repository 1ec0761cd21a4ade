"""The tests' model stores: built by the training code on the tiny data, committed so the fast loop trains nothing.

Four stores, each a real `models/` layout:
- `tiny`: model_1 trained one epoch (version 1, every training image used);
- `quantized`: model_1 trained one epoch with a hold-out (v1), then quantized to int8 (v2);
- `novelty`: the quantized store's v1 (v1), with a novelty score (v2), that in int8 (v3);
- `calibrated`: the quantized store's v1 (v1), recalibrated as published (v2), with the temperature
  fitted on a damaged copy of the hold-out too (v3), and with two views (hflip, v4).

They are a build cache, like a lockfile: `tests/fixtures/stores/FINGERPRINT` records the
hash of every input of the build (the training code, the tiny data's code, `build_all`
below, the locked dependency versions). A session whose code has that fingerprint uses
the committed stores, which are then exactly what its own code builds; any other
session builds them itself first (as every session once did, ~30 s) and says so in
pytest's header. `make fixtures` (`python -m tests.utils.stores`) rebuilds the
committed copy after a change to training.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
import sys
import tempfile
from pathlib import Path

from tests.utils.data import REPO, TINY_HOLDOUT, write_tiny_cifar

COMMITTED = REPO / "tests" / "fixtures" / "stores"
FINGERPRINT_FILE = "FINGERPRINT"
INPUTS = ("training/**/*.py", "tests/utils/data.py", "requirements-dev.lock")  # And `build_all` itself.


def input_files(root: Path = REPO) -> list[Path]:
    """The files under `root` the stores are built from, in a fixed order."""
    return [path for pattern in INPUTS for path in sorted(root.glob(pattern)) if "__pycache__" not in path.parts]


def fingerprint(root: Path = REPO) -> str:
    """The hash of everything under `root` the stores are built from, path by path, and of the build."""
    digest = hashlib.sha256(inspect.getsource(build_all).encode())
    for path in input_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def committed() -> Path:
    """The committed stores, with the one empty folder their build leaves and git does not keep put back:
    every SavedModel's `assets/`."""
    for saved_model in COMMITTED.rglob("saved_model.pb"):
        (saved_model.parent / "assets").mkdir(exist_ok=True)
    return COMMITTED


def committed_is_current() -> bool:
    recorded = COMMITTED / FINGERPRINT_FILE
    return recorded.is_file() and recorded.read_text().strip() == fingerprint()


def build_all(root: Path, data: Path) -> None:
    """Train and derive the four stores into `root/<name>/` from the tiny CIFAR-10 in `data`."""
    from training.calibrate import calibrate_version
    from training.core.preprocessing import TestTimeAugmentation
    from training.novelty import add_novelty
    from training.quantize import quantize_version
    from training.train import TrainOptions, train

    train(TrainOptions("model_1", models_dir=root / "tiny", data=data, epochs=1, verbose=0))
    holdout = TrainOptions("model_1", root / "quantized", data, epochs=1, calibration_holdout=TINY_HOLDOUT, verbose=0)
    source = train(holdout)
    assert source is not None
    quantize_version(source, root / "quantized", data)
    shutil.copytree(source, root / "novelty" / "model_1" / "1")
    scored = add_novelty(root / "novelty" / "model_1" / "1", root / "novelty", data)
    quantize_version(scored, root / "novelty", data)
    calibrated = shutil.copytree(source, root / "calibrated" / "model_1" / "1")
    calibrate_version(calibrated, root / "calibrated", data)
    calibrate_version(calibrated, root / "calibrated", data, fit_on_damaged=True)
    calibrate_version(calibrated, root / "calibrated", data, TestTimeAugmentation.HFLIP)
    (root / FINGERPRINT_FILE).write_text(fingerprint() + "\n")


def rebuild_committed() -> None:
    """Build beside the committed stores, then swap them in whole: a failed build leaves the old ones."""
    from training.core.staging import staged_dir

    with tempfile.TemporaryDirectory() as scratch, staged_dir(COMMITTED) as staging:
        build_all(staging, write_tiny_cifar(Path(scratch)))
    print(f"rebuilt {COMMITTED.relative_to(REPO)} (fingerprint {fingerprint()[:12]})", file=sys.stderr)


if __name__ == "__main__":
    rebuild_committed()
