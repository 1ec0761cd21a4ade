"""The novelty score: how unlike the training images an image is. What it is made of, and how
the served answer carries it.

Chosen by measurement (`bench/ood_report.py`, docs/benchmarks.md): the top probability
alone misses many images of other things (AUROC 0.92 on whitened_convnet). Two kinds of
evidence catch them:

- the energy of the logits, `-logsumexp(logits)` (Liu et al., NeurIPS 2020): low when some
  class fits well;
- the statistics of the first layer: each channel's spatial mean and standard deviation,
  at the last activation of the finest resolution (`training.novelty.novelty_layers`), as
  a vector whose Mahalanobis distance from the training images' mean is measured (a
  Gaussian per layer, as Lee et al., NeurIPS 2018, fit them). Textures, text, noise and
  drawings have colours, edges and contrast that no CIFAR photo has.

Each part is standardized by its mean and spread over training images (log distances),
and the score is their log-sum-exp: a smooth maximum, so one part far off is enough.
Everything is fitted on training images (`training/novelty.py`) and stored in the version
(`STATISTICS_FILE`); the graph that computes the score is built with the prediction in
`training.core.forward`, so TensorFlow, OpenVINO fp32 and int8 serve the same procedure.

The served graph answers one row per image: the ten probabilities, then the score when the
version has one (`split_rows`). Only this module and the graph know that layout.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.core.classes import NUM_CLASSES

STATISTICS_FILE = "novelty.npz"
DEFAULT_QUANTILE = 0.95  # Of the hold-out's scores: the threshold keeps this share of in-distribution images.


@dataclass(frozen=True)
class LayerGaussian:
    """One layer's channel statistics over training images: mean vector, whitening matrix
    (Cholesky factor of the inverse covariance) and the log distance's mean and spread."""

    layer: str
    mean: np.ndarray  # (2C,): channel means then channel standard deviations.
    whitening: np.ndarray  # (2C, 2C): ||(v - mean) @ whitening||^2 is the Mahalanobis distance.
    log_distance_mean: float
    log_distance_spread: float


@dataclass(frozen=True)
class NoveltyStatistics:
    """Everything the score needs besides the network's own weights."""

    layers: tuple[LayerGaussian, ...]
    energy_mean: float
    energy_spread: float

    @property
    def layer_names(self) -> list[str]:
        return [gaussian.layer for gaussian in self.layers]


def statistics_bytes(statistics: NoveltyStatistics) -> bytes:
    """The statistics as an .npz file's bytes (hashed into the version's record before writing)."""
    arrays: dict[str, np.ndarray] = {
        "layers": np.array(statistics.layer_names),
        "energy": np.array([statistics.energy_mean, statistics.energy_spread], np.float64),
    }
    for index, gaussian in enumerate(statistics.layers):
        arrays[f"mean_{index}"] = gaussian.mean.astype(np.float32)
        arrays[f"whitening_{index}"] = gaussian.whitening.astype(np.float32)
        arrays[f"log_distance_{index}"] = np.array([gaussian.log_distance_mean, gaussian.log_distance_spread])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # (numpy stubs type **kwds as its bool option)
    return buffer.getvalue()


def load_statistics(path: Path) -> NoveltyStatistics:
    with np.load(path, allow_pickle=False) as arrays:
        layers = tuple(
            LayerGaussian(
                layer=str(name),
                mean=arrays[f"mean_{index}"],
                whitening=arrays[f"whitening_{index}"],
                log_distance_mean=float(arrays[f"log_distance_{index}"][0]),
                log_distance_spread=float(arrays[f"log_distance_{index}"][1]),
            )
            for index, name in enumerate(arrays["layers"])
        )
        energy_mean, energy_spread = (float(value) for value in arrays["energy"])
    return NoveltyStatistics(layers, energy_mean, energy_spread)


def split_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A served graph's answer rows as (probabilities (N, 10), novelty scores (N,) or None)."""
    if rows.shape[-1] == NUM_CLASSES:
        return rows, None
    if rows.shape[-1] != NUM_CLASSES + 1:
        raise ValueError(
            f"the model answers {rows.shape[-1]} values per image; expected {NUM_CLASSES} or {NUM_CLASSES + 1}"
        )
    return rows[..., :NUM_CLASSES], rows[..., NUM_CLASSES]


def threshold(holdout_scores: list[float] | np.ndarray, quantile: float) -> float:
    """The score below which `quantile` of the hold-out images fall: those count as in distribution."""
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile must be between 0 and 1, got {quantile}")
    return float(np.quantile(np.asarray(holdout_scores, np.float64), quantile))
