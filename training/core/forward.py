"""The compiled forward pass: uint8 images in, calibrated class probabilities out.

Training evaluates the test set through `make_forward`, and the service answers
requests through it too, so the accuracy stored in metrics.json is the accuracy of
exactly the procedure the service runs: scaling, test-time augmentation, and the
version's temperature (a calibrated version divides the logits by it before the
softmax; TTA views are averaged as logits or as probabilities, as its metadata says).
Given a version's novelty statistics, the same graph also answers the novelty score of
each image as an eleventh value (`training.core.novelty`), from the unaugmented view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.core.classes import NUM_CLASSES
from training.core.novelty import NoveltyStatistics
from training.core.preprocessing import INPUT_SHAPE, Scaling, TestTimeAugmentation, TtaAverage, scale_tensor

Forward = Callable[[tf.Tensor], tf.Tensor]
# Names the novelty score's operations, so that quantization can leave them in fp32 (training/quantize.py).
NOVELTY_SCOPE = "novelty_score"


def make_forward(
    model: Any,
    scaling: Scaling | str,
    tta: TestTimeAugmentation | str = TestTimeAugmentation.NONE,
    temperature: float = 1.0,
    average: TtaAverage | str = TtaAverage.PROBABILITIES,
    novelty: NoveltyStatistics | None = None,
) -> Forward:
    """A `tf.function` with a fixed signature, traced once: no per-call Python overhead.

    `model.predict()` builds a dataset and a progress loop on every call, which costs
    tens of milliseconds; calling the traced graph directly costs well under one. Traced without
    AutoGraph: nothing here branches on a tensor in Python, so converting the source only costs time.
    """
    mode, average = TestTimeAugmentation(tta), TtaAverage(average)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    # Uncalibrated probability averaging is what format-1 versions recorded: keep their exact graph.
    plain = temperature == 1.0 and average is TtaAverage.PROBABILITIES and novelty is None
    network = model if plain else logits_model(model)
    if novelty is not None:
        network = keras.Model(model.inputs, [network.output, *(model.get_layer(n).output for n in novelty.layer_names)])

    def forward(images: tf.Tensor) -> tf.Tensor:
        views, weights = tta_views(scale_tensor(images, scaling), mode)
        # One call on all views stacked along the batch: larger matrix products, one dispatch.
        outputs = network(tf.concat(views, axis=0), training=False)
        if novelty is not None:
            outputs, *activations = outputs
        batch = tf.shape(images)[0]
        outputs = tf.reshape(outputs, (len(views), batch, -1))
        weights_tensor = tf.constant(weights, tf.float32)
        if plain:
            probabilities = tf.tensordot(weights_tensor, outputs, axes=1)
        elif average is TtaAverage.LOGITS:
            probabilities = tf.nn.softmax(tf.tensordot(weights_tensor, outputs, axes=1) / temperature)
        else:
            probabilities = tf.tensordot(weights_tensor, tf.nn.softmax(outputs / temperature), axes=1)
        if novelty is None:
            return probabilities
        # The first view is the image itself: the score looks at what was sent, not at its mirror.
        with tf.name_scope(NOVELTY_SCOPE):
            score = novelty_score(outputs[0], [activation[:batch] for activation in activations], novelty)
        return tf.concat([probabilities, score[:, None]], axis=1)

    signature = [tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8)]
    compiled: Forward = tf.function(forward, input_signature=signature, reduce_retracing=True, autograph=False)
    return compiled


def forward_for(model: Any, metadata: Any, novelty: NoveltyStatistics | None = None) -> Forward:
    """The forward pass a version's metadata (`records.Metadata`) describes: the one way to build it.
    With the version's novelty statistics it answers the score too (the served graph)."""
    return make_forward(
        model, metadata.scaling, metadata.test_time_augmentation, metadata.temperature, metadata.tta_average, novelty
    )


def novelty_score(logits: tf.Tensor, activations: list[tf.Tensor], novelty: NoveltyStatistics) -> tf.Tensor:
    """`training.core.novelty`'s score, (N,): log-sum-exp of the standardized energy and layer distances."""
    energy = -tf.reduce_logsumexp(logits, axis=1)
    parts = [(energy - novelty.energy_mean) / novelty.energy_spread]
    for activation, gaussian in zip(activations, novelty.layers, strict=True):
        features = channel_statistics(activation) - tf.constant(gaussian.mean, tf.float32)
        distance = tf.reduce_sum(tf.square(tf.matmul(features, tf.constant(gaussian.whitening, tf.float32))), axis=1)
        log_distance = tf.math.log(distance + 1e-12)
        parts.append((log_distance - gaussian.log_distance_mean) / gaussian.log_distance_spread)
    return tf.reduce_logsumexp(tf.stack(parts, axis=1), axis=1)


def channel_statistics(activation: tf.Tensor) -> tf.Tensor:
    """Each channel's spatial mean, then its standard deviation: (N, H, W, C) -> (N, 2C)."""
    mean, variance = tf.nn.moments(activation, axes=[1, 2])
    return tf.concat([mean, tf.sqrt(variance)], axis=1)


def logits_model(model: Any) -> Any:
    """The same network without its final softmax: every architecture here ends in one."""
    last = model.layers[-1]
    if not (isinstance(last, keras.layers.Activation) and last.get_config()["activation"] == "softmax"):
        raise ValueError(f"{model.name} does not end in a softmax activation; its logits are not available")
    return keras.Model(model.inputs, model.layers[-2].output, name=f"{model.name}_logits")


def tta_views(inputs: tf.Tensor, mode: TestTimeAugmentation) -> tuple[list[tf.Tensor], list[float]]:
    """The augmented copies of a batch and the weight of each in the average.

    Always in the same order (image, mirror, shifted up-left, its mirror, shifted
    down-right, its mirror), so each mode's views are the first few of the six.
    """
    if mode is TestTimeAugmentation.NONE:
        return [inputs], [1.0]
    positions = [inputs]
    weights = [0.5]
    if mode is not TestTimeAugmentation.HFLIP:
        padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
        height, width = INPUT_SHAPE[0], INPUT_SHAPE[1]
        positions.append(padded[:, :height, :width])
        weights = [1 / 3, 1 / 6]
        if mode is TestTimeAugmentation.HFLIP_TRANSLATE:
            positions.append(padded[:, 2 : 2 + height, 2 : 2 + width])
            weights = [0.25, 0.125, 0.125]
    views = [view for image in positions for view in (image, tf.reverse(image, axis=[2]))]
    weights = [weight for weight in weights for _ in range(2)]
    if mode is TestTimeAugmentation.HFLIP_PLUS_SHIFT:
        return views[:3], [weight / sum(weights[:3]) for weight in weights[:3]]
    return views, weights


def view_logits(
    model: Any, scaling: Scaling | str, tta: TestTimeAugmentation | str, images: np.ndarray, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Every TTA view's logits, (views, N, classes), and the views' weights: what calibration fits on."""
    network = logits_model(model)
    mode = TestTimeAugmentation(tta)

    def views_of(batch: tf.Tensor) -> tf.Tensor:
        views, _ = tta_views(scale_tensor(batch, scaling), mode)
        logits = network(tf.concat(views, axis=0), training=False)
        return tf.reshape(logits, (len(views), tf.shape(batch)[0], -1))

    signature = [tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8)]
    compiled: Forward = tf.function(views_of, input_signature=signature, reduce_retracing=True, autograph=False)
    _, weights = tta_views(tf.zeros((1, *INPUT_SHAPE)), mode)
    chunks = [
        compiled(tf.constant(images[start : start + batch_size])).numpy() for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks, axis=1), np.asarray(weights, np.float32)


def predict_in_batches(forward: Forward, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Run `forward` over a large uint8 array without holding every activation at once."""
    outputs = [
        forward(tf.constant(images[start : start + batch_size])).numpy() for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, NUM_CLASSES), dtype=np.float32)
