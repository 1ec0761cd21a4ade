"""Training end to end on tiny data, in process: a complete, loadable version with its records."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.utils.data import CLASS_NAMES
from training.architectures import get_architecture
from training.core import artifacts
from training.core.forward import make_forward
from training.data import load_cifar10
from training.recipes import Recipe
from training.train import (
    RECIPE_OVERRIDES,
    TrainOptions,
    _recipe_with_overrides,
    _without_optimizer,
    build_for_training,
    train,
)


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


def test_fine_tuning_starts_from_the_given_versions_weights(
    tiny_store: Path, tiny_cifar_dir: Path, tmp_path: Path
) -> None:
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
            train(replace(options, models_dir=tmp_path))
    assert all(np.array_equal(a, b) for a, b in zip(captured[0], start, strict=True))


def test_every_override_names_a_recipe_field_and_an_option() -> None:
    recipe_fields = {field.name for field in fields(Recipe)}
    option_fields = {field.name for field in fields(TrainOptions)}
    assert set(RECIPE_OVERRIDES) <= recipe_fields & option_fields
    assert all(getattr(TrainOptions("model_1"), name) is None for name in RECIPE_OVERRIDES)  # Unset: the recipe's.


def test_overrides_replace_only_the_fields_they_name() -> None:
    recipe = get_architecture("whitened_convnet").recipe
    options = TrainOptions(
        "whitened_convnet", epochs=4, learning_rate=0.075, corruption_fraction=0.3, precision="mixed_bfloat16"
    )
    changed = _recipe_with_overrides(recipe, options)
    assert (changed.epochs, changed.learning_rate, changed.corruption_fraction) == (4, 0.075, 0.3)
    assert changed.precision == "mixed_bfloat16"
    restored = replace(
        changed,
        epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        corruption_fraction=recipe.corruption_fraction,
        precision=recipe.precision,
    )
    assert restored == recipe


def test_mixed_precision_trains_in_bfloat16_and_publishes_a_float32_copy() -> None:
    """bfloat16 is a training speed-up only: the loss sees float32 probabilities, the global policy is
    left as it was, and the copy that is evaluated and published computes in float32 with the same weights."""
    architecture = get_architecture("whitened_convnet")
    model = build_for_training(architecture, "mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    assert all(weight.dtype == "float32" for weight in model.weights)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    architecture.initialize(model, images, architecture.recipe.scaling)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert model(images[:2].astype("float32") / 255).dtype == "float32"
    loss = model.train_on_batch(images.astype("float32") / 255, keras.utils.to_categorical(np.arange(16) % 10, 10))
    assert np.isfinite(loss)

    serving = _without_optimizer(model, architecture)
    assert {layer.compute_dtype for layer in serving.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), serving.get_weights(), strict=True))
    x = images.astype("float32") / 255
    # The same network up to bfloat16's rounding (8 significant bits): close, not equal.
    assert np.abs(model.predict(x, verbose=0) - serving.predict(x, verbose=0)).max() < 0.05


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
