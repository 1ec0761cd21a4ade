"""Which NNCF setting quantizes a version best, judged on its hold-out alone (never the test set).

    CIFAR10_DATA=../shared/datasets/cifar-10-python.tar.gz python bench/quantization_settings.py whitened_convnet/14

The version's held-out training images (the ones it never trained on) are split in two halves at
random: each candidate quantizes the served forward pass with its ranges observed on the first half,
and is judged on the second by how often its class differs from the fp32 pass's, on the clean images,
on each upload condition (JPEG q95/q75/q50, a 16 px thumbnail) and on 250 of them under every
corruption and severity of the benchmark. Fewer disagreements on the upload conditions (what the
service's int8 gate checks, on the test set) chooses, unless it costs speed (the median time of one
batch of 32 is printed beside); `training/quantize.py` uses the winner.

Candidates: NNCF's fast or full bias correction, with ranges observed on clean images or on clean
images plus a JPEG q75 and a damaged copy (`training.augment.damaged_copy`); with full bias correction
on clean images, the first one or two convolutions left in fp32 (each one alone: `--each-convolution`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from training import augment, robustness  # noqa: E402
from training.calibrate import load_holdout  # noqa: E402
from training.core import artifacts, openvino_runtime  # noqa: E402
from training.core.forward import forward_for  # noqa: E402
from training.core.novelty import split_rows  # noqa: E402
from training.data import calibration_split  # noqa: E402
from training.quantize import BATCH, convolutions, int8_model  # noqa: E402

CORRUPTED_IMAGES = 250  # Of the judging half: 19 corruptions x 5 severities of them.
SPLIT_SEED = 123  # Draws the two halves; any seed other than the version's own.


def classes(model: object, images: np.ndarray) -> np.ndarray:
    predict = openvino_runtime.compile_for_cpu(model)
    rows = np.concatenate([predict(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])
    return split_rows(rows)[0].argmax(axis=1)


def judging_sets(images: np.ndarray) -> dict[str, np.ndarray]:
    found = {"clean": images} | {name: change(images) for name, change in robustness.conditions().items()}
    damaged = robustness.damaged_copies(images[:CORRUPTED_IMAGES], seed=0)
    found["corrupted"] = np.concatenate([damaged[key] for key in sorted(damaged)])
    return found


def _report(
    name: str, seconds: float, int8: object, sets: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    differ = {key: int((classes(int8, sets[key]) != reference[key]).sum()) for key in sets}
    uploads = sum(count for key, count in differ.items() if key != "corrupted")
    found = {"candidate": name, "quantize_s": round(seconds, 1), "upload_conditions": uploads}
    print(json.dumps(found | {"batch32_ms": batch_milliseconds(int8, sets["clean"][:32])} | differ))


def batch_milliseconds(model: object, images: np.ndarray, calls: int = 40) -> float:
    """Median milliseconds of one call on `images`, compiled as the service compiles (a rough cost, for
    candidates measured one after another in one run)."""
    predict = openvino_runtime.compile_for_cpu(model)
    predict(images)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(images)
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="name/version, e.g. whitened_convnet/14")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument(
        "--each-convolution", action="store_true", help="also try each convolution alone in fp32 (a sensitivity scan)"
    )
    args = parser.parse_args()
    print(machine.describe())
    folder = args.models_dir / args.version
    artifact = artifacts.load_artifact(folder)
    dataset, holdout, seed = load_holdout(artifact, None)
    shuffled = np.random.default_rng(SPLIT_SEED).permutation(calibration_split(len(dataset.x_train), holdout, seed))
    observed, judged = (
        dataset.x_train[np.sort(shuffled[: holdout // 2])],
        dataset.x_train[np.sort(shuffled[holdout // 2 :])],
    )
    novelty = artifacts.load_novelty_statistics(folder, artifact.metadata)
    converted = openvino_runtime.convert(forward_for(artifacts.load_keras_model(folder), artifact.metadata, novelty))
    sets = judging_sets(judged)
    reference = {name: classes(converted, images) for name, images in sets.items()}
    print(json.dumps({"candidate": "fp32", "batch32_ms": batch_milliseconds(converted, sets["clean"][:32])}))
    mixed = np.concatenate(
        [observed, robustness.conditions()["jpeg_q75"](observed), augment.damaged_copy(observed, seed)]
    )
    candidates = {
        "fast bias correction, clean": (observed, True, 0),
        "full bias correction, clean": (observed, False, 0),
        "fast bias correction, clean + q75 + damaged": (mixed, True, 0),
        "full bias correction, clean + q75 + damaged": (mixed, False, 0),
        "full, clean, first convolution fp32": (observed, False, 1),
        "full, clean, first two convolutions fp32": (observed, False, 2),
    }
    print(f"{len(observed)} held-out images observed, {len(judged)} judged; disagreements with fp32:")
    for name, (images, fast, floats) in candidates.items():
        start = time.perf_counter()
        int8 = int8_model(converted, images, fast_bias_correction=fast, float_convolutions=floats)
        _report(name, time.perf_counter() - start, int8, sets, reference)
    if args.each_convolution:
        for name in convolutions(converted):
            start = time.perf_counter()
            int8 = int8_model(converted, observed, float_convolutions=0, float_names=[name])
            _report(f"full, clean, {name} alone fp32", time.perf_counter() - start, int8, sets, reference)
    print(f"(upload conditions: {len(judged)} images each; corrupted: {len(sets['corrupted'])} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
