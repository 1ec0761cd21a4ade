"""The compiled forward pass: scaling and test-time augmentation, as training and serving run it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.utils.reference import numpy_calibrated_tta, numpy_tta
from training.core.forward import logits_model, make_forward, predict_in_batches, view_logits
from training.core.preprocessing import Scaling, TestTimeAugmentation, TtaAverage, scale_images


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """Small, but position- and orientation-sensitive, so every view changes the output."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
            keras.layers.Activation("softmax"),  # As every architecture here ends: its logits are reachable.
        ]
    )


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("tta", list(TestTimeAugmentation))
def test_forward_matches_an_independent_numpy_reference(model: keras.Model, images: np.ndarray, tta: str) -> None:
    expected = numpy_tta(model, scale_images(images, Scaling.UNIT), tta)
    assert make_forward(model, Scaling.UNIT, tta)(images).numpy() == pytest.approx(expected, abs=1e-6)


def test_every_view_counts(model: keras.Model, images: np.ndarray) -> None:
    outputs = {tta: make_forward(model, Scaling.UNIT, tta)(images).numpy() for tta in TestTimeAugmentation}
    assert not np.allclose(outputs["none"], outputs["hflip"])
    assert not np.allclose(outputs["hflip"], outputs["hflip_translate"])
    for probabilities in outputs.values():
        assert probabilities.sum(axis=1) == pytest.approx(np.ones(len(images)), abs=1e-5)


def test_batches_give_the_same_answer_as_one_call(model: keras.Model, images: np.ndarray) -> None:
    forward = make_forward(model, Scaling.UNIT, "hflip_translate")
    assert predict_in_batches(forward, images, batch_size=4) == pytest.approx(forward(images).numpy(), abs=1e-6)


def test_unknown_mode_is_refused(model: keras.Model) -> None:
    with pytest.raises(ValueError, match="rotate"):
        make_forward(model, Scaling.UNIT, "rotate")


@pytest.mark.parametrize("tta", list(TestTimeAugmentation))
@pytest.mark.parametrize("average", list(TtaAverage))
def test_calibrated_forward_is_temperature_then_tta(
    model: keras.Model, images: np.ndarray, tta: TestTimeAugmentation, average: TtaAverage
) -> None:
    expected = numpy_calibrated_tta(logits_model(model), scale_images(images, Scaling.UNIT), tta, 2.5, average)
    served = make_forward(model, Scaling.UNIT, tta, temperature=2.5, average=average)(images).numpy()
    assert served == pytest.approx(expected, abs=2e-6)


def test_temperature_softens_without_changing_the_ranking(model: keras.Model, images: np.ndarray) -> None:
    sharp = make_forward(model, Scaling.UNIT, "none")(images).numpy()
    soft = make_forward(model, Scaling.UNIT, "none", temperature=3.0, average="logits")(images).numpy()
    assert (soft.argmax(axis=1) == sharp.argmax(axis=1)).all()
    assert (soft.max(axis=1) < sharp.max(axis=1)).all()


def test_view_logits_are_what_the_forward_pass_combines(model: keras.Model, images: np.ndarray) -> None:
    logits, weights = view_logits(model, Scaling.UNIT, "hflip_translate", images, batch_size=4)
    assert logits.shape == (6, len(images), 10) and weights.sum() == pytest.approx(1.0)
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = np.tensordot(weights, exponentials / exponentials.sum(axis=-1, keepdims=True), axes=1)
    served = make_forward(model, Scaling.UNIT, "hflip_translate")(images).numpy()
    assert served == pytest.approx(probabilities, abs=1e-6)


def test_a_model_without_a_final_softmax_has_no_logits() -> None:
    bare = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="softmax"):
        make_forward(bare, Scaling.UNIT, temperature=2.0)
