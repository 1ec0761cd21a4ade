"""A small, fast CIFAR-10 network with a patch-whitening stem, for CPU training.

The design follows the published airbench results (Keller Jordan, 2024): a frozen
2x2 convolution that whitens image patches, then three blocks of
conv > max-pool > BatchNorm > GELU > conv > BatchNorm > GELU, a global max-pool, a
linear classifier whose logits are scaled down. The recipe that trains it (label
smoothing, fast BatchNorm biases, lookahead, alternating flip, translation and
test-time augmentation) lives in `architectures.py`. Every layer is a stock Keras
layer, so `model.keras` loads anywhere without this module.

The whitening filters and the identity ("dirac") start of the convolutions are
computed by `initialize` from training images: they shape the start of training,
then live on as ordinary weights.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from training.core.preprocessing import INPUT_SHAPE, Scaling, scale_images

WHITENING_FILTERS = 24  # 12 eigen-directions of 2x2x3 patches, each with both signs.
WHITENING_PATCH = 2
WHITENING_SAMPLE = 5000  # Images used to estimate the patch covariance.
WHITENING_EPSILON = 5e-4  # Relative to the mean patch variance; keeps tiny eigenvalues from exploding.
LOGIT_SCALE = 1 / 9  # Smaller logits early on make the large learning rate stable.
BATCHNORM_MOMENTUM = 0.4  # Keras convention (airbench's 0.6 in PyTorch's): fast-moving statistics.


def build(widths: tuple[int, int, int] = (64, 256, 256), num_classes: int = 10) -> keras.Model:
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = layers.Conv2D(WHITENING_FILTERS, WHITENING_PATCH, padding="valid", name="whiten", trainable=False)(inputs)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for index, width in enumerate(widths, start=1):
        x = _block(x, width, f"block{index}")
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    x = layers.Dense(num_classes, use_bias=False, name="classifier")(x)
    x = layers.Rescaling(LOGIT_SCALE, name="logit_scale")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="whitened_convnet")


def _block(x: keras.KerasTensor, width: int, name: str) -> keras.KerasTensor:
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = _norm_gelu(x, f"{name}_1")
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    return _norm_gelu(x, f"{name}_2")


def _norm_gelu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    # scale=False: BatchNorm's gain stays 1, as in airbench; only its bias learns.
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, epsilon=1e-5, scale=False, name=f"{name}_bn")(x)
    return layers.Activation("gelu", name=f"{name}_gelu")(x)


def initialize(model: keras.Model, train_images: np.ndarray, scaling: Scaling) -> None:
    """Data-dependent start: whitening filters from patch statistics, identity-initialised convs."""
    kernel, bias = whitening_filters(scale_images(train_images[:WHITENING_SAMPLE], scaling))
    model.get_layer("whiten").set_weights([kernel, bias])
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D) and layer.name != "whiten":
            layer.kernel.assign(_dirac_start(keras.ops.convert_to_numpy(layer.kernel)))


def whitening_filters(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 filters that decorrelate patches: eigenvectors of their covariance over sqrt(eigenvalue).

    Returns a Conv2D kernel (2, 2, 3, 24) and a bias that centres the patches.
    """
    windows = np.lib.stride_tricks.sliding_window_view(images, (WHITENING_PATCH, WHITENING_PATCH), axis=(1, 2))
    # (N, 31, 31, C, kh, kw) -> rows ordered (kh, kw, C) like a Keras kernel.
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, WHITENING_PATCH * WHITENING_PATCH * images.shape[-1])
    patches = patches.astype(np.float64)
    mean = patches.mean(axis=0)
    covariance = np.cov(patches, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    epsilon = WHITENING_EPSILON * np.trace(covariance) / len(covariance)
    filters = eigenvectors / np.sqrt(eigenvalues + epsilon)
    filters = np.concatenate([filters, -filters], axis=1)
    kernel = filters.reshape(WHITENING_PATCH, WHITENING_PATCH, images.shape[-1], -1)
    bias = -mean @ filters
    return kernel.astype(np.float32), bias.astype(np.float32)


def _dirac_start(kernel: np.ndarray) -> np.ndarray:
    """Make the first in_channels filters pass their input through unchanged (identity at the centre tap)."""
    height, width, in_channels, out_channels = kernel.shape
    start = kernel.copy()
    count = min(in_channels, out_channels)
    start[:, :, :, :count] = 0.0
    start[height // 2, width // 2, np.arange(count), np.arange(count)] = 1.0
    return start
