"""Training end to end on tiny data, in process: a complete, loadable version with its records."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.utils.data import CLASS_NAMES
from training.architectures import get_architecture
from training.calibrate import calibrate_version
from training.core import artifacts, records
from training.core.forward import forward_for, make_forward
from training.core.preprocessing import TestTimeAugmentation, TtaAverage
from training.data import calibration_split, load_cifar10
from training.optimizers import make_optimizer
from training.pipeline import training_batches
from training.train import TrainOptions, _recipe_with_overrides, train, without_calibration_split


def test_a_run_publishes_a_complete_loadable_version(tiny_store: Path) -> None:
    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    saved_model = ["assets", "fingerprint.pb", artifacts.SAVED_MODEL_FILE, "variables"]  # training/export.py
    compiled = [*saved_model, artifacts.IR_DIR]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*artifacts.ARTIFACT_FILES, *compiled])
    ir = sorted(p.name for p in (folder / artifacts.IR_DIR).iterdir())
    assert ir == [artifacts.IR_RECORD_FILE, "model.bin", artifacts.IR_MODEL_FILE]
    model = keras.saving.load_model(folder / artifacts.MODEL_FILE, compile=False)
    assert model.count_params() == 181_162
    assert not model.compiled  # No optimizer state: the artifact stays small.
    assert (folder / artifacts.MODEL_FILE).stat().st_size < 1_000_000


def test_metrics_record_history_results_and_provenance(tiny_store: Path) -> None:
    metrics = artifacts.load_artifact(artifacts.version_dir(tiny_store, "model_1", 1)).metrics
    assert [row["epoch"] for row in metrics.history] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "train_seconds"} <= set(metrics.history[0])
    assert np.array(metrics.confusion_matrix).sum() == metrics.test_images == 50
    assert list(metrics.per_class_accuracy) == CLASS_NAMES
    assert metrics.hyperparameters["learning_rate"] == 0.0005
    assert metrics.hyperparameters["epochs"] == 1
    assert metrics.hyperparameters["optimizer"] == "rmsprop_decay"
    assert metrics.reference is not None and metrics.reference.test_accuracy == 0.645
    assert len(metrics.dataset.x_train_sha256) == 64
    assert metrics.environment["tensorflow"].startswith("2.")
    assert metrics.images_per_second > 0


def test_stored_accuracy_is_the_serving_forward_pass_accuracy(tiny_store: Path, tiny_cifar_dir: Path) -> None:
    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    metadata = artifacts.load_artifact(folder).metadata
    model = artifacts.load_keras_model(folder)
    dataset = load_cifar10(tiny_cifar_dir)
    probabilities = make_forward(model, metadata.scaling)(dataset.x_test).numpy()
    assert metadata.test_accuracy == float((probabilities.argmax(1) == dataset.y_test).mean())
    assert metadata.class_names[0] == "airplane" and metadata.input_dtype == "uint8"


def test_the_corruption_report_equals_an_independent_pass_over_the_stored_version(
    tiny_store: Path, tiny_cifar_dir: Path
) -> None:
    from training.corruptions import CORRUPTIONS, SEVERITIES, corrupt

    folder = artifacts.version_dir(tiny_store, "model_1", 1)
    report = artifacts.load_artifact(folder).metrics.corruption
    assert report is not None and report.seen_in_training == []  # model_1's recipe augments nothing.
    model = artifacts.load_keras_model(folder)
    dataset = load_cifar10(tiny_cifar_dir)
    assert report.images == len(dataset.y_test)  # The tiny test set is smaller than the subset: all of it.
    table = []
    for name in CORRUPTIONS:
        row = []
        for severity in SEVERITIES:
            damaged = corrupt(dataset.x_test, name, severity, report.seed).astype("float32") / 255
            row.append(float((model(damaged, training=False).numpy().argmax(1) == dataset.y_test).mean()))
        table.append(row)
        assert report.by_corruption[name] == pytest.approx(row, abs=1e-9)
    assert report.mean_accuracy == pytest.approx(np.mean(table))
    assert report.by_severity["5"] == pytest.approx(np.mean(table, axis=0)[-1])
    assert report.unseen_mean_accuracy == pytest.approx(report.mean_accuracy)


def test_fine_tuning_starts_from_the_given_versions_weights(tiny_store: Path, tiny_cifar_dir: Path) -> None:
    source = artifacts.version_dir(tiny_store, "model_1", 1)
    options = TrainOptions("model_1", data=tiny_cifar_dir, epochs=1, verbose=0, init_from=source)
    start = artifacts.load_keras_model(source).get_weights()
    captured: list[list[np.ndarray]] = []

    class Stop(Exception):
        pass

    def first_weights(model: keras.Model, *args: object) -> None:
        captured.append(model.get_weights())
        raise Stop

    import training.train as train_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "_fit", first_weights)
        with pytest.raises(Stop):
            train(replace(options, models_dir=tiny_store.parent / "fine-tune"))
    assert all(np.array_equal(a, b) for a, b in zip(captured[0], start, strict=True))


def test_overrides_replace_only_the_fields_they_name() -> None:
    recipe = get_architecture("whitened_convnet").recipe
    options = TrainOptions("whitened_convnet", epochs=4, learning_rate=0.075, corruption_fraction=0.3)
    changed = _recipe_with_overrides(recipe, options)
    assert (changed.epochs, changed.learning_rate, changed.corruption_fraction) == (4, 0.075, 0.3)
    restored = replace(
        changed,
        epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        corruption_fraction=recipe.corruption_fraction,
    )
    assert restored == recipe


@pytest.fixture(scope="module")
def calibrated_store(tiny_cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model_1 trained on the tiny data with 30 of its 200 training images held out for calibration."""
    store = tmp_path_factory.mktemp("calibrated")
    options = TrainOptions("model_1", models_dir=store, data=tiny_cifar_dir, epochs=2, verbose=0, seed=3)
    train(replace(options, calibration_holdout=30))
    return store


def test_a_calibrated_run_records_its_temperature_split_and_reports(calibrated_store: Path) -> None:
    artifact = artifacts.load_artifact(calibrated_store / "model_1" / "1")
    report = artifact.metrics.calibration
    assert report is not None and artifact.metadata.format_version == records.FORMAT_VERSION
    assert artifact.metadata.temperature == report.temperature > 0
    assert artifact.metadata.tta_average == report.tta_average
    assert set(report.alternatives) == {average.value for average in TtaAverage}
    assert artifact.metrics.robustness is not None
    assert set(artifact.metrics.robustness) == {"lossless", "jpeg_q95", "jpeg_q75", "jpeg_q50", "downscale_16px"}
    assert artifact.metrics.robustness["lossless"] == artifact.metrics.test_accuracy
    assert artifact.metrics.hyperparameters["train_images"] == 170
    assert (artifact.folder / artifacts.CALIBRATION_FILE).read_bytes().startswith(b"\x89PNG")


def test_the_temperature_was_fitted_on_images_training_never_saw(calibrated_store: Path, tiny_cifar_dir: Path) -> None:
    """Re-derive the split from what the version recorded, then replay the run's training batches."""
    metrics = artifacts.load_artifact(calibrated_store / "model_1" / "1").metrics
    assert metrics.calibration is not None
    split = metrics.calibration.split
    held_out = calibration_split(split.train_images, split.size, split.seed)
    assert hashlib.sha256(held_out.astype(np.int64).tobytes()).hexdigest() == split.indices_sha256
    dataset = load_cifar10(tiny_cifar_dir)
    recipe = replace(get_architecture("model_1").recipe, calibration_holdout=split.size)
    x_train, y_train = without_calibration_split(dataset, split.size, split.seed)
    seen = {
        image.tobytes()
        for x, _ in training_batches(x_train, y_train, recipe, seed=split.seed).batches
        for image in np.rint(x.numpy() * 255).astype(np.uint8)
    }
    assert len(seen) == len(set(map(bytes, (image.tobytes() for image in x_train))))
    assert not seen & {dataset.x_train[index].tobytes() for index in held_out}


def test_calibrating_a_version_publishes_a_calibrated_copy(calibrated_store: Path, tiny_cifar_dir: Path) -> None:
    published = calibrate_version(calibrated_store / "model_1" / "1", calibrated_store, tiny_cifar_dir)
    source = artifacts.load_artifact(calibrated_store / "model_1" / "1")
    copy = artifacts.load_artifact(published)
    assert copy.version == 2 and copy.metadata.temperature == pytest.approx(source.metadata.temperature)
    assert copy.metrics.history == source.metrics.history and copy.summary == source.summary


def test_a_temperature_fitted_on_damaged_copies_too_is_recorded_as_such(
    calibrated_store: Path, tiny_cifar_dir: Path, tmp_path: Path
) -> None:
    from training import augment, calibration
    from training.core.forward import view_logits

    source_folder = calibrated_store / "model_1" / "1"
    source = artifacts.load_artifact(source_folder)
    copy = artifacts.load_artifact(calibrate_version(source_folder, tmp_path, tiny_cifar_dir, fit_on_damaged=True))
    report = copy.metrics.calibration
    assert report is not None and report.fitted_on_damaged and not source.metrics.calibration.fitted_on_damaged
    # The same fit, by hand: the hold-out's logits and its damaged copy's, labels twice.
    dataset = load_cifar10(tiny_cifar_dir)
    indices = calibration_split(len(dataset.x_train), 30, 3)
    model = artifacts.load_keras_model(source_folder)
    clean, weights = view_logits(model, "divide_by_255", "none", dataset.x_train[indices])
    damaged, _ = view_logits(model, "divide_by_255", "none", augment.damaged_copy(dataset.x_train[indices], 3))
    labels = np.concatenate([dataset.y_train[indices]] * 2)
    both = np.concatenate([clean, damaged], axis=1)
    expected = calibration.fit_temperature(both, weights, labels, report.tta_average)
    assert copy.metadata.temperature == pytest.approx(expected, rel=1e-6)


def test_a_copy_with_other_views_stores_the_accuracy_of_the_forward_pass_it_serves(
    calibrated_store: Path, tiny_cifar_dir: Path
) -> None:
    """`calibrate --tta hflip`: the new version's metadata, metrics and accuracy all describe two-view TTA."""
    published = calibrate_version(
        calibrated_store / "model_1" / "1", calibrated_store, tiny_cifar_dir, TestTimeAugmentation.HFLIP
    )
    copy = artifacts.load_artifact(published)
    assert copy.metadata.test_time_augmentation is TestTimeAugmentation.HFLIP
    assert copy.metrics.test_time_augmentation is TestTimeAugmentation.HFLIP
    model = artifacts.load_keras_model(published)
    metadata = copy.metadata
    forward = forward_for(model, metadata)
    dataset = load_cifar10(tiny_cifar_dir)
    served = forward(dataset.x_test).numpy().argmax(axis=1)
    assert metadata.test_accuracy == pytest.approx(float((served == dataset.y_test).mean()))


def test_a_version_trained_on_every_image_cannot_be_calibrated(tiny_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every training image"):
        calibrate_version(tiny_store / "model_1" / "1", tmp_path)


@pytest.mark.parametrize("name", ["model_1", "model_2"])
def test_steps_per_execution_changes_speed_not_math(name: str) -> None:
    """The tutorial recipes run 50 steps per graph call; the weights must be those of one step per call,
    bit for bit, dropout included, also when the epoch does not divide evenly (20 steps, 7 per call)."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (32 * 20, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 32 * 20)

    def weights_after_two_epochs(steps_per_execution: int) -> list[np.ndarray]:
        recipe = replace(get_architecture(name).recipe, steps_per_execution=steps_per_execution)
        keras.utils.set_random_seed(0)
        data = training_batches(images, labels, recipe, seed=0)
        model = get_architecture(name).build()
        optimizer = make_optimizer(recipe, data.steps_per_epoch)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", steps_per_execution=steps_per_execution)
        model.fit(data.batches, epochs=2, verbose=0, shuffle=False)
        return list(model.get_weights())

    reference = weights_after_two_epochs(1)
    for steps in (7, get_architecture(name).recipe.steps_per_execution):
        assert all(np.array_equal(a, b) for a, b in zip(reference, weights_after_two_epochs(steps), strict=True))


@pytest.mark.parametrize("name", ["model_1", "model_2"])
def test_the_tutorial_recipes_take_the_tutorial_fits_steps(name: str) -> None:
    """This project's training (uint8 batches scaled on the fly, 50 steps per graph call) against the
    tutorial's `model.fit(x / 255, one_hot, batch_size=32)` fed the same images in the same order: the
    same weights, bit for bit, after an epoch (dropout included; the last batch is a partial one)."""
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (32 * 12 + 8, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 32 * 12 + 8)
    recipe = get_architecture(name).recipe

    def compiled(steps_per_epoch: int, steps_per_execution: int) -> keras.Model:
        keras.utils.set_random_seed(0)
        model = get_architecture(name).build()
        optimizer = make_optimizer(recipe, steps_per_epoch)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", steps_per_execution=steps_per_execution)
        return model

    keras.utils.set_random_seed(0)  # As `train` does: the shuffle order depends on the global seed too.
    data = training_batches(images, labels, recipe, seed=0)
    ordered = [(x.numpy(), y.numpy()) for x, y in data.batches]  # The pipeline's first-epoch order.
    ours = compiled(data.steps_per_epoch, recipe.steps_per_execution)
    ours.fit(training_batches(images, labels, recipe, seed=0).batches, epochs=1, verbose=0)  # Same seeds, same order.

    pixels = np.rint(np.concatenate([x for x, _ in ordered]) * 255).astype(np.uint8)  # The uint8 images, in order.
    assert sorted(map(bytes, pixels)) == sorted(map(bytes, images))
    x_float = pixels.astype("float32") / 255  # The tutorial's own scaling.
    one_hot = keras.utils.to_categorical(np.concatenate([y.argmax(axis=1) for _, y in ordered]), 10)
    tutorial = compiled(data.steps_per_epoch, 1)
    tutorial.fit(x_float, one_hot, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), tutorial.get_weights(), strict=True))


def test_a_run_killed_while_publishing_resumes_after_training(
    tiny_cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from training import train as train_module

    options = TrainOptions("model_1", models_dir=tmp_path, data=tiny_cifar_dir, epochs=2, verbose=0)
    real_publish = train_module._publish

    def killed(*args: object) -> Path:
        raise KeyboardInterrupt  # As if the process died during the final evaluation.

    monkeypatch.setattr(train_module, "_publish", killed)
    with pytest.raises(KeyboardInterrupt):
        train(options)
    assert artifacts.list_versions(tmp_path, "model_1") == []

    def no_more_training(*args: object) -> None:
        raise AssertionError("the finished training ran again")

    monkeypatch.setattr(train_module, "_publish", real_publish)
    monkeypatch.setattr(train_module, "_fit", no_more_training)
    published = train(options)
    assert "Training had finished" in capsys.readouterr().out
    assert [row["epoch"] for row in artifacts.load_artifact(published).metrics.history] == [1, 2]
    assert not artifacts.checkpoint_dir(tmp_path, "model_1").exists()
