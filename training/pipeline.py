"""tf.data input pipelines: CIFAR-10 arrays in, (scaled images, one-hot labels) batches out.

uint8 arrays stay uint8 in memory; each batch is scaled (by the core's `scale_tensor`,
which the served graph uses too) and one-hot encoded on the fly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from training.augment import corrupt_batch
from training.augmix import augmix_batch
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE, scale_tensor
from training.recipes import Recipe

AUGMENT_SHIFT_PIXELS = 2
PREFETCH_BATCHES = 2  # Batches made ahead of the training step; the step, not the input, is the bottleneck.


def evaluation_batches(images: np.ndarray, labels: np.ndarray, recipe: Recipe) -> tf.data.Dataset:
    """Evaluation batches: uint8 arrays stay uint8 in memory; each batch is scaled and one-hot encoded on the fly."""
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(recipe.batch_size)
    return _fixed_parallelism(_map(data, lambda x, y: _model_inputs(x, y, recipe)))


class TrainingData(NamedTuple):
    batches: tf.data.Dataset
    steps_per_epoch: int
    endless: bool  # True: Keras must count steps_per_epoch; False: an epoch ends with the dataset.


def training_batches(images: np.ndarray, labels: np.ndarray, recipe: Recipe, seed: int) -> TrainingData:
    """Training batches, reshuffled every epoch and augmented as the recipe says."""
    count = len(images)
    if recipe.augment and recipe.alternating_flip:
        batches = _alternating_flip_dataset(images, labels, recipe, seed)
        return TrainingData(batches, max(1, count // recipe.batch_size), endless=True)
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    data = data.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if recipe.jpeg_fraction > 0:
        reencode = _jpeg_reencoding(recipe, seed)
        data = _map(data.enumerate(), lambda position, example: (reencode(position, example[0]), example[1]))
    data = data.batch(recipe.batch_size).enumerate()
    data = _map(data, lambda step, batch: _damaged(step, *_model_inputs(batch[0], batch[1], recipe), recipe, seed))
    if recipe.augment:
        flip = keras.layers.RandomFlip("horizontal", seed=seed)
        translate = _translation(seed)
        data = _map(data, lambda x, y: (translate(flip(x, training=True), training=True), y))
    return TrainingData(_fixed_parallelism(data), int(np.ceil(count / recipe.batch_size)), endless=False)


def _alternating_flip_dataset(images: np.ndarray, labels: np.ndarray, recipe: Recipe, seed: int) -> tf.data.Dataset:
    """airbench's alternating flip: a random half of the images is mirrored in even epochs, the
    other half in odd ones, so every image is seen both ways within two epochs (random
    flipping leaves a quarter of them one-sided for two epochs running).

    One endless stream, numbered, so that each image knows its epoch; Keras takes
    `count // batch_size` steps per epoch from it.
    """
    count = len(images)
    mirrored_in_even_epochs = np.random.default_rng(seed).random(count) < 0.5
    data = tf.data.Dataset.from_tensor_slices((images, labels, mirrored_in_even_epochs))
    data = data.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat().enumerate()
    if recipe.jpeg_fraction > 0:
        reencode = _jpeg_reencoding(recipe, seed)
        data = _map(data, lambda position, example: (position, (reencode(position, example[0]), *example[1:])))
    data = data.batch(recipe.batch_size, drop_remainder=True)
    translate = _translation(seed)

    def augment(position: tf.Tensor, example: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        x, y, mirrored = example
        x, y = _damaged(position[0], *_model_inputs(x, y, recipe), recipe, seed)
        odd_epoch = (position // count) % 2 == 1
        mirror = tf.math.logical_xor(mirrored, odd_epoch)
        x = tf.where(mirror[:, None, None, None], tf.reverse(x, axis=[2]), x)
        return translate(x, training=True), y

    return _fixed_parallelism(_map(data, augment))


def _jpeg_reencoding(recipe: Recipe, seed: int) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Per image (uint8, before batching): with probability jpeg_fraction, encode as JPEG at a random
    quality and decode again, as a phone or browser upload would be. The draw is stateless, keyed
    by (seed, position in the stream), so a resumed or repeated run sees the same artefacts."""
    low, high = recipe.jpeg_quality

    def reencode(position: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
        draw = tf.random.stateless_uniform([2], seed=tf.stack([tf.constant(seed, tf.int64), position]))
        quality = low + tf.cast(draw[1] * (high - low + 1), tf.int32)
        return tf.cond(
            draw[0] < recipe.jpeg_fraction, lambda: tf.image.adjust_jpeg_quality(image, quality), lambda: image
        )

    return reencode


def _map(data: tf.data.Dataset, function: Callable[..., object]) -> tf.data.Dataset:
    """`data.map(function)` in parallel (order kept), without AutoGraph: every map function here branches
    with `tf.where` and `tf.cond`, never with Python control flow on tensors, so converting their source
    buys nothing and cost ~1 s per augmented pipeline (docs/benchmarks.md, stop 48)."""
    return data.map(tf.autograph.experimental.do_not_convert(function), num_parallel_calls=_map_workers())


def _map_workers() -> int:
    """One map worker per CPU this process may run on (a `repeat --jobs` worker is pinned to its share)."""
    return len(os.sched_getaffinity(0))


def _fixed_parallelism(data: tf.data.Dataset) -> tf.data.Dataset:
    """Prefetch a fixed number of batches, with tf.data's autotuner off.

    The autotuner's background thread costs a training process pinned to one core about a quarter
    of its speed (model_1: 9.4k against 13.1k images/s), and destroying an autotuned iterator waits
    ~1.5 s for that thread to wake: every `fit` ended with an idle pause (docs/benchmarks.md,
    "Training throughput, stop 22"). Element order and values do not depend on it.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(PREFETCH_BATCHES).with_options(options)


def _model_inputs(images: tf.Tensor, labels: tf.Tensor, recipe: Recipe) -> tuple[tf.Tensor, tf.Tensor]:
    return scale_tensor(images, recipe.scaling), tf.one_hot(labels, NUM_CLASSES)


def _damaged(
    position: tf.Tensor, images: tf.Tensor, labels: tf.Tensor, recipe: Recipe, seed: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """AugMix-style mixing (`training.augmix`), then everyday-photo damage (`training.augment`), each on
    its share of the batch, keyed by the batch's position."""
    if recipe.augmix_fraction > 0:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(position, tf.int64) + (2 << 40)])
        images = augmix_batch(images, recipe.augmix_fraction, key)
    if recipe.corruption_fraction > 0:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(position, tf.int64) + (1 << 40)])
        images = corrupt_batch(images, recipe.corruption_fraction, key)
    return images, labels


def _translation(seed: int) -> keras.layers.RandomTranslation:
    """Shift images by up to 2 whole pixels with reflected borders, as airbench does."""
    shift = AUGMENT_SHIFT_PIXELS / INPUT_SHAPE[0]
    return keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", interpolation="nearest", seed=seed)
