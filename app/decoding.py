"""Uploads to pixels: any supported image file in, the uint8 (32, 32, 3) array the models take out.

Only the service decodes uploads; training reads the CIFAR arrays directly. The
errors say what is wrong in plain words; `app/errors.py` maps them to HTTP statuses.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from training.core.preprocessing import INPUT_SHAPE

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# Lanczos antialiases when shrinking, so a large photo is averaged rather than aliased.
RESIZE_FILTER = Image.Resampling.LANCZOS
BACKGROUND = (255, 255, 255)  # Transparent pixels are composited on white.

# Our own pixel limit (checked before decoding) decides; Pillow's bomb warning would only add noise.
# Set once here: a catch_warnings block around every decode costs more than decoding a CIFAR PNG.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageError(ValueError):
    """An upload that cannot become a 32x32 RGB image: empty, truncated or corrupt."""


class UnsupportedImage(ImageError):
    """Not an image in one of SUPPORTED_FORMATS."""


class ImageTooLarge(ImageError):
    """The image declares more pixels than the service will decode."""


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode an upload into uint8 (32, 32, 3), refusing bombs before any pixel is decoded.

    Steps: open (header only), check the declared size, first frame, EXIF orientation,
    RGB with alpha on white, centre-crop to a square, resize to 32x32 with Lanczos.
    """
    if not data:
        raise ImageError("the file is empty")
    image = _open(data)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image declares {width}x{height} pixels; the limit is {max_pixels} pixels")
    try:
        image.seek(0)  # First frame of an animation.
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"the image data is truncated or corrupt ({error})") from error
    image = _square_crop(image)
    if image.size != INPUT_SHAPE[:2]:
        image = image.resize(INPUT_SHAPE[:2], RESIZE_FILTER)
    return np.asarray(image, dtype=np.uint8)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"image refused before decoding: {error}") from error
    except UnidentifiedImageError as error:
        formats = ", ".join(SUPPORTED_FORMATS)
        raise UnsupportedImage(f"not a supported image (expected one of {formats})") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"the image header is corrupt ({error})") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB" and "transparency" not in image.info:
        image.load()  # Decode now, inside decode_image's error handling; no copy needed.
        return image
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _square_crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    if width == height:
        return image
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))
