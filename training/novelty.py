"""Fitting the novelty score (`training/core/novelty.py`) and publishing a version that answers it.

`python -m training novelty models/whitened_convnet/9` fits the statistics on training
images the network trained on (a seeded draw of `FIT_IMAGES`, never the calibration
hold-out, never test images), as the network saw them: a version trained with
everyday-photo damage (`--corruption-fraction`) gets the same share of them damaged the
same way, so that a grainy or hazy photo it was trained to read is not called "none of
the ten classes" (on whitened_convnet v9, Gaussian noise at severity 3 was flagged 100%
of the time with clean statistics, 4% with these). Then it runs the served graph, score
included, over the (clean) hold-out and stores each hold-out image's score: the threshold
is the `quantile` of those (the service can move it with OOD_THRESHOLD_QUANTILE). The
weights, the probabilities and every measured figure are the source's; the new version
adds novelty.npz and its record, and its SavedModel and OpenVINO IR answer the score too.
`quantize` it afterwards for int8.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training import augment
from training.calibrate import load_holdout
from training.core import artifacts, records
from training.core.forward import channel_statistics, forward_for, logits_model, predict_in_batches
from training.core.novelty import (
    DEFAULT_QUANTILE,
    STATISTICS_FILE,
    LayerGaussian,
    NoveltyStatistics,
    split_rows,
    statistics_bytes,
    threshold,
)
from training.core.preprocessing import INPUT_SHAPE, Scaling, scale_tensor
from training.data import calibration_split
from training.evaluation import split_record
from training.export import write_exports

FIT_IMAGES = 20_000  # Hundreds of images per dimension of the covariance (48 for whitened_convnet's first layer).
SHRINKAGE = 1e-3  # Added to the covariance's diagonal, relative to its mean variance: keeps the inverse stable.
METHOD = "log-sum-exp of standardized energy and early-layer channel-statistics Mahalanobis distances"
BATCH = 500


def novelty_layers(model: Any) -> list[str]:
    """The last activation at the finest resolution: it sees colour, edges and texture, which is what
    sets textures, text, drawings and noise apart from photos. Deeper layers added nothing measurable
    (AUROC 0.977 with the next two resolutions, 0.981 without, whitened_convnet v9), and in int8 they
    are computed from activations clipped to the ranges of clean images, which made the int8 score
    call 98% of grainy photos "none of the ten classes" (fp32: 4%)."""
    first: tuple[int, int] | None = None
    chosen: list[str] = []
    for layer in model.layers:
        shape = layer.output.shape
        if isinstance(layer, keras.layers.Activation) and len(shape) == 4:
            first = first or (shape[1], shape[2])
            if (shape[1], shape[2]) == first:
                chosen = [layer.name]
    return chosen


def fit_split(train_images: int, holdout: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices (sorted) of the training images the statistics are fitted on: a seeded draw that
    never includes the calibration hold-out, so the threshold is fitted on images the score never saw."""
    candidates = np.setdiff1d(np.arange(train_images), holdout)
    size = min(size, len(candidates))
    return np.sort(np.random.default_rng([seed, 1]).choice(candidates, size, replace=False))


def as_trained(images: np.ndarray, damaged_share: float, seed: int) -> np.ndarray:
    """The images with the last `damaged_share` of them damaged as training damaged them (`training.augment`)."""
    count = round(damaged_share * len(images))
    if count == 0:
        return images
    return np.concatenate([images[: len(images) - count], augment.damaged_copy(images[len(images) - count :], seed)])


def fit_statistics(model: Any, scaling: Scaling, images: np.ndarray) -> NoveltyStatistics:
    """The energy's and each novelty layer's statistics over `images` (training images)."""
    layers = novelty_layers(model)
    logits, features = _measure(model, scaling, layers, images)
    energy = -_logsumexp(logits)
    gaussians = tuple(_gaussian(name, values) for name, values in zip(layers, features, strict=True))
    return NoveltyStatistics(gaussians, float(energy.mean()), float(energy.std()))


def add_novelty(
    source: Path,
    models_dir: Path,
    data: Path | None = None,
    quantile: float = DEFAULT_QUANTILE,
    fit_images: int = FIT_IMAGES,
) -> Path:
    """Publish a copy of the version in `source` that answers the novelty score; return its folder."""
    artifact = artifacts.load_artifact(source)
    metadata = artifact.metadata
    if metadata.novelty is not None:
        raise ValueError(f"{source} already answers a novelty score")
    if metadata.quantization is not None:
        origin = metadata.quantization.source_version
        raise ValueError(f"{source} carries an int8 model: add the score to v{origin}, then quantize that version")
    dataset, holdout, seed = load_holdout(artifact, data)
    train_images = len(dataset.x_train)
    held_out = calibration_split(train_images, holdout, seed)
    fitted_on = fit_split(train_images, held_out, fit_images, seed)
    model = artifacts.load_keras_model(source)
    damaged_share = float(artifact.metrics.hyperparameters.get("corruption_fraction", 0.0))
    statistics = fit_statistics(model, metadata.scaling, as_trained(dataset.x_train[fitted_on], damaged_share, seed))
    _, scores = split_rows(predict_in_batches(forward_for(model, metadata, statistics), dataset.x_train[held_out]))
    assert scores is not None
    payload = statistics_bytes(statistics)
    novelty = records.Novelty(
        method=METHOD,
        layers=statistics.layer_names,
        statistics_sha256=hashlib.sha256(payload).hexdigest(),
        fitted_on=split_record(fitted_on, len(fitted_on), seed, train_images),
        fitted_on_damaged_share=damaged_share,
        holdout=split_record(held_out, holdout, seed, train_images),
        holdout_scores=[round(float(score), 6) for score in scores],
        quantile=quantile,
        threshold=threshold(scores, quantile),
    )
    new_metadata = metadata.model_copy(
        update={
            "format_version": records.FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "description": f"{metadata.description} With a novelty score (from v{artifact.version}).",
            "novelty": novelty,
        }
    )

    def extras(staging: Path) -> None:
        (staging / STATISTICS_FILE).write_bytes(payload)
        write_exports(model, new_metadata, staging, statistics)

    plots = {name: (source / name).read_bytes() for name in artifacts.PLOT_FILES}
    return artifacts.save_version(
        models_dir, model, new_metadata, artifact.summary, artifact.metrics, plots, extras=extras
    )


def _measure(
    model: Any, scaling: Scaling, layers: list[str], images: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits (N, 10) and each layer's channel statistics (N, 2C) of the unaugmented images: what
    the served graph computes the score from (`training.core.forward.novelty_score`)."""
    network = keras.Model(model.inputs, [logits_model(model).output, *(model.get_layer(n).output for n in layers)])

    @tf.function(input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8)], autograph=False)
    def measure(batch: tf.Tensor) -> list[tf.Tensor]:
        logits, *activations = network(scale_tensor(batch, scaling), training=False)
        return [logits, *(channel_statistics(activation) for activation in activations)]

    chunks = [
        [output.numpy() for output in measure(tf.constant(images[i : i + BATCH]))] for i in range(0, len(images), BATCH)
    ]
    logits, *features = (np.concatenate(parts).astype(np.float64) for parts in zip(*chunks, strict=True))
    return logits, features


def _gaussian(layer: str, features: np.ndarray) -> LayerGaussian:
    mean = features.mean(axis=0)
    covariance = np.cov(features, rowvar=False)
    covariance += SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    whitening = np.linalg.cholesky(np.linalg.inv(covariance))
    log_distance = np.log(np.sum(((features - mean) @ whitening) ** 2, axis=1) + 1e-12)
    # Stored and served in float32, as the graph computes.
    mean, whitening = mean.astype(np.float32), whitening.astype(np.float32)
    return LayerGaussian(layer, mean, whitening, float(log_distance.mean()), float(log_distance.std()))


def _logsumexp(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(values - top).sum(axis=1, keepdims=True)))[:, 0]
