"""Turning uploads into pixels: decoding, orientation, alpha, size, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.decoding import ImageError, ImageTooLarge, UnsupportedImage, decode_image
from app.errors import status_for
from tests.utils.images import encode as _encode
from tests.utils.images import png_declaring
from training.core.preprocessing import encode_png

LIMIT = 40_000_000


def test_png_round_trip_is_lossless() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_png(pixels), LIMIT), pixels)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_supported_formats_decode_to_32x32_rgb(fmt: str) -> None:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    assert decode_image(_encode(image, fmt), LIMIT).shape == (32, 32, 3)


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    assert decode_image(_encode(image, "PNG"), LIMIT)[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (64, 32), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 32, 32))  # Left half red, right half blue.
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 CW to display".
    pixels = decode_image(_encode(image, "JPEG", exif=exif, quality=95), LIMIT)
    # After rotating clockwise the red half is on top; the centre crop keeps the middle rows.
    assert pixels[0, 16, 0] > 200 and pixels[-1, 16, 2] > 200


def test_non_square_images_are_centre_cropped() -> None:
    image = Image.new("RGB", (96, 32), (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, 32, 32))
    assert decode_image(_encode(image, "PNG"), LIMIT)[16, 0].tolist() == [0, 255, 0]


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", LIMIT)


def test_text_is_unsupported() -> None:
    with pytest.raises(UnsupportedImage) as error:
        decode_image(b"hello, I am not an image", LIMIT)
    assert status_for(error.value) == 415


def test_truncated_png_is_a_400() -> None:
    data = _encode(Image.new("RGB", (300, 300), (9, 9, 9)), "PNG", compress_level=0)
    with pytest.raises(ImageError) as error:
        decode_image(data[: len(data) // 2], LIMIT)
    assert status_for(error.value) == 400


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLarge) as error:
        decode_image(png_declaring(50_000, 50_000), LIMIT)
    assert status_for(error.value) == 413


def test_a_png_with_a_corrupt_header_is_a_400_not_a_415() -> None:
    png = bytearray(encode_png(np.zeros((32, 32, 3), np.uint8)))
    png[29] ^= 0xFF  # Break the IHDR chunk's CRC: still a PNG, but a damaged one.
    with pytest.raises(ImageError) as error:
        decode_image(bytes(png), LIMIT)
    assert status_for(error.value) == 400 and "corrupt" in str(error.value)
