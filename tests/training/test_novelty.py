"""The novelty score: fitted on training images only, computed inside the served graph, stored with its
threshold, and answered the same by every compiled copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.utils.data import COMMITTED_MODELS, TINY_HOLDOUT, real_archive_or_skip
from training import augment, whitened_convnet
from training.core import artifacts, records
from training.core.forward import forward_for, make_forward
from training.core.novelty import STATISTICS_FILE, load_statistics, split_rows, statistics_bytes, threshold
from training.core.preprocessing import Scaling, scale_images
from training.data import calibration_split, load_cifar10
from training.evaluation import split_record
from training.novelty import add_novelty, as_trained, fit_split, fit_statistics, novelty_layers


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """Activations at three resolutions (32, 16, 8); ends in a softmax."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, padding="same")(inputs)
    x = keras.layers.Activation("relu", name="full")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = keras.layers.Activation("relu", name="half")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = keras.layers.Activation("relu", name="quarter")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10)(x)
    return keras.Model(inputs, keras.layers.Activation("softmax")(x))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(300, 32, 32, 3), dtype=np.uint8)


def numpy_score(model: keras.Model, images: np.ndarray, statistics) -> np.ndarray:
    """The score from its definition, in NumPy: only the activations come from Keras."""
    logits_layer = model.layers[-2].output
    probe = keras.Model(
        model.inputs, [logits_layer, *(model.get_layer(name).output for name in statistics.layer_names)]
    )
    logits, *activations = (np.asarray(value, np.float64) for value in probe(scale_images(images, Scaling.UNIT)))
    top = logits.max(axis=1)
    energy = -(top + np.log(np.exp(logits - top[:, None]).sum(axis=1)))
    parts = [(energy - statistics.energy_mean) / statistics.energy_spread]
    for activation, gaussian in zip(activations, statistics.layers, strict=True):
        features = np.concatenate([activation.mean(axis=(1, 2)), activation.std(axis=(1, 2))], axis=1)
        distance = np.sum(((features - gaussian.mean) @ gaussian.whitening) ** 2, axis=1)
        parts.append((np.log(distance + 1e-12) - gaussian.log_distance_mean) / gaussian.log_distance_spread)
    stacked = np.stack(parts, axis=1)
    peak = stacked.max(axis=1)
    return peak + np.log(np.exp(stacked - peak[:, None]).sum(axis=1))


def test_the_compared_layer_is_the_last_activation_at_the_finest_resolution(model: keras.Model) -> None:
    assert novelty_layers(model) == ["full"]
    assert novelty_layers(whitened_convnet.build()) == ["whiten_gelu"]


def test_the_served_score_equals_a_numpy_reference_on_the_statistics(model: keras.Model, images: np.ndarray) -> None:
    statistics = fit_statistics(model, Scaling.UNIT, images[:200])
    rows = make_forward(model, Scaling.UNIT, "hflip", novelty=statistics)(images[200:]).numpy()
    probabilities, scores = split_rows(rows)
    assert scores is not None
    # float32 moments in the graph against float64 NumPy: agreement to 1e-3 on scores of order 1.
    np.testing.assert_allclose(scores, numpy_score(model, images[200:], statistics), rtol=1e-3, atol=1e-3)
    without = make_forward(model, Scaling.UNIT, "hflip")(images[200:]).numpy()
    np.testing.assert_allclose(probabilities, without, atol=1e-6)  # The score never changes the answer.


def test_images_unlike_the_fitted_ones_score_higher(model: keras.Model, images: np.ndarray) -> None:
    statistics = fit_statistics(model, Scaling.UNIT, images)
    flat = np.full((50, 32, 32, 3), 128, np.uint8)  # No texture at all, unlike the noise it was fitted on.
    assert numpy_score(model, flat, statistics).min() > numpy_score(model, images, statistics).max()


def test_statistics_survive_their_file(model: keras.Model, images: np.ndarray, tmp_path: Path) -> None:
    statistics = fit_statistics(model, Scaling.UNIT, images)
    (tmp_path / STATISTICS_FILE).write_bytes(statistics_bytes(statistics))
    loaded = load_statistics(tmp_path / STATISTICS_FILE)
    assert loaded.layer_names == statistics.layer_names
    assert (loaded.energy_mean, loaded.energy_spread) == (statistics.energy_mean, statistics.energy_spread)
    for read, fitted in zip(loaded.layers, statistics.layers, strict=True):
        np.testing.assert_array_equal(read.whitening, fitted.whitening)
        np.testing.assert_array_equal(read.mean, fitted.mean)


def test_the_fitting_images_are_damaged_as_training_damaged_them(images: np.ndarray) -> None:
    seen = as_trained(images[:100], 0.5, seed=4)
    np.testing.assert_array_equal(seen[:50], images[:50])
    np.testing.assert_array_equal(seen[50:], augment.damaged_copy(images[50:100], seed=4))
    assert as_trained(images[:100], 0.0, seed=4) is not None and np.array_equal(
        as_trained(images[:100], 0.0, 4), images[:100]
    )


def test_answer_rows_split_into_probabilities_and_scores() -> None:
    rows = np.arange(22, dtype=np.float32).reshape(2, 11)
    probabilities, scores = split_rows(rows)
    assert probabilities.shape == (2, 10) and scores is not None and scores.tolist() == [10.0, 21.0]
    assert split_rows(rows[:, :10])[1] is None
    with pytest.raises(ValueError, match="12 values"):
        split_rows(np.zeros((1, 12)))


def test_the_threshold_keeps_its_quantile() -> None:
    scores = np.random.default_rng(0).normal(size=10_000)
    assert (scores <= threshold(scores, 0.95)).mean() == pytest.approx(0.95, abs=0.001)
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold(scores, 1.0)


def test_the_fitting_images_are_a_seeded_draw_that_never_includes_the_hold_out() -> None:
    held_out = calibration_split(1000, 100, seed=3)
    chosen = fit_split(1000, held_out, 500, seed=3)
    assert len(chosen) == 500 and np.all(np.diff(chosen) > 0)
    assert not set(chosen) & set(held_out)
    np.testing.assert_array_equal(chosen, fit_split(1000, held_out, 500, seed=3))
    assert len(fit_split(1000, held_out, 5000, seed=3)) == 900, "never more than the images not held out"


@pytest.fixture(scope="module")
def scored(novelty_store: Path) -> Path:
    return novelty_store / "model_1" / "2"


def test_a_scored_version_keeps_its_source_and_records_the_statistics(scored: Path) -> None:
    new, old = artifacts.load_artifact(scored), artifacts.load_artifact(scored.parent / "1")
    novelty = new.metadata.novelty
    assert novelty is not None and old.metadata.novelty is None
    assert new.metadata.format_version == records.FORMAT_VERSION == 3
    assert new.metrics == old.metrics and new.metadata.test_accuracy == old.metadata.test_accuracy
    assert novelty.statistics_sha256 == hashlib.sha256((scored / STATISTICS_FILE).read_bytes()).hexdigest()
    assert novelty.layers == novelty_layers(artifacts.load_keras_model(scored))
    assert len(novelty.holdout_scores) == TINY_HOLDOUT


def test_the_statistics_come_from_training_images_only(scored: Path, tiny_cifar_dir: Path) -> None:
    """Re-derive both splits from the record, as the temperature's is: the statistics refit on exactly
    those training images equal the stored ones, and the threshold's images were never among them."""
    artifact = artifacts.load_artifact(scored)
    novelty = artifact.metadata.novelty
    assert novelty is not None
    dataset = load_cifar10(tiny_cifar_dir)
    train_images = len(dataset.x_train)
    held_out = calibration_split(train_images, novelty.holdout.size, novelty.holdout.seed)
    fitted_on = fit_split(train_images, held_out, novelty.fitted_on.size, novelty.fitted_on.seed)
    assert split_record(held_out, novelty.holdout.size, novelty.holdout.seed, train_images) == novelty.holdout
    assert split_record(fitted_on, len(fitted_on), novelty.fitted_on.seed, train_images) == novelty.fitted_on
    assert not set(fitted_on) & set(held_out)
    assert novelty.fitted_on_damaged_share == 0.0  # model_1's recipe damages no training image.
    refit = fit_statistics(artifacts.load_keras_model(scored), artifact.metadata.scaling, dataset.x_train[fitted_on])
    stored = artifacts.load_novelty_statistics(scored, artifact.metadata)
    assert stored is not None
    for again, kept in zip(refit.layers, stored.layers, strict=True):
        np.testing.assert_allclose(again.mean, kept.mean, rtol=1e-5, atol=1e-6)


def test_the_recorded_hold_out_scores_are_the_served_graphs(scored: Path, tiny_cifar_dir: Path) -> None:
    artifact = artifacts.load_artifact(scored)
    novelty = artifact.metadata.novelty
    assert novelty is not None
    dataset = load_cifar10(tiny_cifar_dir)
    held_out = dataset.x_train[calibration_split(len(dataset.x_train), novelty.holdout.size, novelty.holdout.seed)]
    statistics = artifacts.load_novelty_statistics(scored, artifact.metadata)
    forward = forward_for(artifacts.load_keras_model(scored), artifact.metadata, statistics)
    _, scores = split_rows(forward(tf.constant(held_out)).numpy())
    np.testing.assert_allclose(scores, novelty.holdout_scores, atol=1e-5)
    assert novelty.threshold == pytest.approx(threshold(novelty.holdout_scores, novelty.quantile))


def test_every_compiled_copy_answers_the_score(scored: Path) -> None:
    loaded = tf.saved_model.load(str(scored))
    probe = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    outputs = loaded.signatures["serving_default"](images=tf.constant(probe))
    assert set(outputs) == {"probabilities", "class_index", "ood_score"}
    record = artifacts.load_ir_record(scored)
    assert record is not None and np.asarray(record.probe_probabilities).shape[1] == 11
    quantization = artifacts.load_artifact(scored.parent / "3").metadata.quantization
    assert quantization is not None and quantization.novelty_holdout_scores is not None
    assert len(quantization.novelty_holdout_scores) == TINY_HOLDOUT
    assert (scored.parent / "3" / STATISTICS_FILE).read_bytes() == (scored / STATISTICS_FILE).read_bytes()


def test_a_tampered_statistics_file_is_refused(scored: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "2"
    shutil.copytree(scored, copy)
    payload = bytearray((copy / STATISTICS_FILE).read_bytes())
    payload[-10] ^= 0xFF
    (copy / STATISTICS_FILE).write_bytes(bytes(payload))
    with pytest.raises(records.InvalidArtifact, match="checksum"):
        artifacts.load_novelty_statistics(copy, artifacts.load_artifact(copy).metadata)


def test_a_version_already_scored_or_quantized_is_refused(
    novelty_store: Path, quantized_store: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="already answers"):
        add_novelty(novelty_store / "model_1" / "2", tmp_path)
    with pytest.raises(ValueError, match="add the score to v1, then quantize"):
        add_novelty(quantized_store / "model_1" / "2", tmp_path)


def _committed_scored() -> list[str]:
    return [
        f"{name}/{version}"
        for name in artifacts.list_models(COMMITTED_MODELS)
        for version in artifacts.list_versions(COMMITTED_MODELS, name)
        if artifacts.load_artifact(COMMITTED_MODELS / name / str(version)).metadata.novelty is not None
    ]


@pytest.mark.parametrize("version", _committed_scored())
def test_committed_scores_were_fitted_on_training_images_only(version: str) -> None:
    """Re-derive both splits of a committed version from its record alone: disjoint, both training images."""
    novelty = artifacts.load_artifact(COMMITTED_MODELS / version).metadata.novelty
    assert novelty is not None
    train_images = novelty.holdout.train_images
    held_out = calibration_split(train_images, novelty.holdout.size, novelty.holdout.seed)
    fitted_on = fit_split(train_images, held_out, novelty.fitted_on.size, novelty.fitted_on.seed)
    assert split_record(held_out, novelty.holdout.size, novelty.holdout.seed, train_images) == novelty.holdout
    assert split_record(fitted_on, len(fitted_on), novelty.fitted_on.seed, train_images) == novelty.fitted_on
    assert novelty.holdout.source == novelty.fitted_on.source == "train" and not set(fitted_on) & set(held_out)


@pytest.mark.slow
@pytest.mark.parametrize("version", _committed_scored())
def test_the_served_threshold_keeps_95_percent_of_the_hold_out(version: str) -> None:
    """Through the backend that serves it (int8 with its own threshold): 95% +- 1% of the hold-out images."""
    from app.config import Settings
    from app.inference import load_servable

    dataset = load_cifar10(real_archive_or_skip())
    servable = load_servable(COMMITTED_MODELS / version, Settings(tf_intra_op_threads=2).backend_options())
    novelty = servable.artifact.metadata.novelty
    assert novelty is not None and servable.novelty.threshold is not None
    held_out = dataset.x_train[calibration_split(len(dataset.x_train), novelty.holdout.size, novelty.holdout.seed)]
    _, scores = split_rows(
        np.concatenate([servable.predict(held_out[i : i + 500]) for i in range(0, len(held_out), 500)])
    )
    assert scores is not None
    assert (scores <= servable.novelty.threshold).mean() == pytest.approx(0.95, abs=0.01)
