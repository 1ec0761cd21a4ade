"""The registry's architectures: the tutorial's exact networks and the strong one."""

from __future__ import annotations

import numpy as np
import pytest

from training.architectures import ARCHITECTURES, get_architecture
from training.reports import layer_summary


def _shapes(name: str) -> list[tuple]:
    model = get_architecture(name).build()
    return [
        tuple(layer.output.shape[1:])
        for layer in model.layers
        if type(layer).__name__ in ("Conv2D", "MaxPooling2D", "Flatten", "Dense")
    ]


def test_model_1_has_the_tutorial_parameter_count_and_shapes() -> None:
    summary = layer_summary(get_architecture("model_1").build())
    assert summary.total_params == 181_162
    assert summary.trainable_params == 181_162
    assert _shapes("model_1") == [(16, 16, 32), (6, 6, 32), (3, 3, 32), (288,), (512,), (10,)]


def test_model_2_has_the_tutorial_parameter_count_and_shapes() -> None:
    summary = layer_summary(get_architecture("model_2").build())
    assert summary.total_params == 252_378
    assert _shapes("model_2") == [
        (32, 32, 32),
        (28, 28, 32),
        (14, 14, 32),
        (12, 12, 32),
        (10, 10, 16),
        (5, 5, 16),
        (400,),
        (512,),
        (10,),
    ]


@pytest.mark.parametrize(("name", "learning_rate", "epochs"), [("model_1", 0.0005, 15), ("model_2", 0.0001, 5)])
def test_tutorial_recipes(name: str, learning_rate: float, epochs: int) -> None:
    recipe = get_architecture(name).recipe
    assert (recipe.optimizer, recipe.learning_rate, recipe.lr_decay) == ("rmsprop_decay", learning_rate, 1e-6)
    assert (recipe.batch_size, recipe.epochs, recipe.scaling.value) == (32, epochs, "divide_by_255")


def test_tutorial_learning_rate_decays_like_keras_2() -> None:
    from training.optimizers import make_optimizer

    optimizer = make_optimizer(get_architecture("model_1").recipe, steps_per_epoch=1563)
    assert float(optimizer.learning_rate) == pytest.approx(0.0005)
    assert float(optimizer._learning_rate(10_000)) == pytest.approx(0.0005 / (1 + 1e-6 * 10_000))


def test_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="model_1, model_2"):
        get_architecture("resnet_9000")


def test_whitened_convnet_whitening_decorrelates_patches() -> None:
    from training import whitened_convnet

    rng = np.random.default_rng(0)
    base = rng.random((64, 32, 32, 1), dtype=np.float32)
    images = np.concatenate([base, base * 0.5 + 0.1 * rng.random((64, 32, 32, 1), dtype=np.float32), base], axis=-1)
    kernel, bias = whitened_convnet.whitening_filters(images)
    assert kernel.shape == (2, 2, 3, 24) and bias.shape == (24,)
    windows = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    outputs = windows.reshape(-1, 12) @ kernel.reshape(12, 24)[:, :12] + bias[:12]
    covariance = np.cov(outputs, rowvar=False)
    # Whitened: near-identity covariance on the well-conditioned directions.
    assert np.allclose(np.diag(covariance)[-6:], 1.0, atol=0.05)
    assert abs(covariance[-1, -2]) < 0.05


def test_whitened_convnet_trains_a_step_on_tiny_data() -> None:
    import keras

    architecture = get_architecture("whitened_convnet")
    model = architecture.build()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    architecture.initialize(model, images, architecture.recipe.scaling)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    loss = model.train_on_batch(images.astype("float32") / 255, keras.utils.to_categorical(np.arange(16) % 10, 10))
    assert np.isfinite(loss)
    assert model.get_layer("whiten").trainable is False


def test_every_architecture_outputs_ten_probabilities() -> None:
    for name, architecture in ARCHITECTURES.items():
        model = architecture.build()
        output = np.asarray(model(np.zeros((2, 32, 32, 3), np.float32)))
        assert output.shape == (2, 10), name
        assert np.allclose(output.sum(axis=1), 1.0, atol=1e-5), name
