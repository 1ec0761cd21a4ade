"""Image files built in the test, byte for byte."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    png = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def float_batch(count: int = 256) -> Any:
    """A seeded float batch in [0.2, 0.8], (count, 32, 32, 3), as training augmentations receive it."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(0.2, 0.8, (count, 32, 32, 3)).astype(np.float32))


def stateless_seed(value: int) -> Any:
    """A stateless TensorFlow seed, shape [2] int64."""
    import tensorflow as tf

    return tf.constant([value, 1], tf.int64)


def photo_sized_png() -> bytes:
    """5000 x 5000 pixels (the 25 MP limit) that compress to a third of a megabyte."""
    ramp = np.linspace(0, 255, 5000, dtype=np.float32)
    pixels = np.repeat((np.add.outer(ramp, ramp) / 2 % 256).astype(np.uint8)[..., None], 3, axis=2)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()
