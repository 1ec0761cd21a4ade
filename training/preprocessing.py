"""Everything between an image and the network's input, shared by training and serving.

Training feeds uint8 CIFAR arrays through `scale_images`; the service decodes an
upload with `decode_image` into the same uint8 layout and then calls the very same
`scale_images`, so there is no train/serve skew to drift apart.
"""

from __future__ import annotations

import io
import warnings
from enum import StrEnum

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

INPUT_SHAPE = (32, 32, 3)
SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# Lanczos antialiases when shrinking, so a large photo is averaged rather than aliased.
RESIZE_FILTER = Image.Resampling.LANCZOS
BACKGROUND = (255, 255, 255)  # Transparent pixels are composited on white.

# Our own pixel limit (checked before decoding) decides; Pillow's bomb warning would only add noise.
# Set once here: a catch_warnings block around every decode costs more than decoding a CIFAR PNG.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class Scaling(StrEnum):
    """How uint8 pixels become the network's float input (recorded in metadata.json)."""

    UNIT = "divide_by_255"  # The tutorial's x / 255 into [0, 1].
    NONE = "none"  # Raw 0..255 floats; the network normalises inside itself.

    @property
    def divisor(self) -> float:
        """Pixels are divided by this; NumPy and TensorFlow both divide, so results match bit for bit."""
        return 255.0 if self is Scaling.UNIT else 1.0


def scale_images(images: np.ndarray, scaling: Scaling | str) -> np.ndarray:
    """uint8 (N, 32, 32, 3) to the float32 the network expects."""
    return images.astype(np.float32) / np.float32(Scaling(scaling).divisor)


class ImageError(ValueError):
    """An upload that cannot become a 32x32 RGB image; `status` is the HTTP status to answer."""

    status = 400


class UnsupportedImage(ImageError):
    status = 415


class ImageTooLarge(ImageError):
    status = 413


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


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 HWC array to PNG bytes (used for sample images, tests and benchmarks)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
