"""The compiled forward pass: uint8 images in, class probabilities out.

Training evaluates the test set through `make_forward`, and the service answers
requests through it too, so the accuracy stored in metrics.json is the accuracy of
exactly the procedure the service runs (scaling and test-time augmentation included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE, Scaling, TestTimeAugmentation, scale_tensor

Forward = Callable[[tf.Tensor], tf.Tensor]


def make_forward(model: Any, scaling: Scaling | str, tta: TestTimeAugmentation | str = "none") -> Forward:
    """A `tf.function` with a fixed signature, traced once: no per-call Python overhead.

    `model.predict()` builds a dataset and a progress loop on every call, which costs
    tens of milliseconds; calling the traced graph directly costs well under one.
    """
    mode = TestTimeAugmentation(tta)

    def forward(images: tf.Tensor) -> tf.Tensor:
        inputs = scale_tensor(images, scaling)
        if mode is TestTimeAugmentation.NONE:
            return model(inputs, training=False)
        views, weights = _tta_views(inputs, mode)
        # One call on all views stacked along the batch: larger matrix products, one dispatch.
        outputs = model(tf.concat(views, axis=0), training=False)
        outputs = tf.reshape(outputs, (len(views), tf.shape(inputs)[0], -1))
        return tf.tensordot(tf.constant(weights, tf.float32), outputs, axes=1)

    signature = [tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8)]
    compiled: Forward = tf.function(forward, input_signature=signature, reduce_retracing=True)
    return compiled


def _tta_views(inputs: tf.Tensor, mode: TestTimeAugmentation) -> tuple[list[tf.Tensor], list[float]]:
    """The augmented copies of a batch and the weight of each in the average."""
    positions = [inputs]
    weights = [0.5]
    if mode is TestTimeAugmentation.HFLIP_TRANSLATE:
        padded = tf.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
        height, width = INPUT_SHAPE[0], INPUT_SHAPE[1]
        positions += [padded[:, :height, :width], padded[:, 2 : 2 + height, 2 : 2 + width]]
        weights = [0.25, 0.125, 0.125]
    views = [view for image in positions for view in (image, tf.reverse(image, axis=[2]))]
    return views, [weight for weight in weights for _ in range(2)]


def predict_in_batches(forward: Forward, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Run `forward` over a large uint8 array without holding every activation at once."""
    outputs = [
        forward(tf.constant(images[start : start + batch_size])).numpy() for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, NUM_CLASSES), dtype=np.float32)
