"""Uploads to pixels: any supported image file in, the uint8 (32, 32, 3) array the models take out.

Only the service decodes uploads; training reads the CIFAR arrays directly. The
errors say what is wrong in plain words; `app/errors.py` maps them to HTTP statuses.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from training.core.preprocessing import INPUT_SHAPE

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# An image as a protocol request carries it: pixels (uint8, 32 x 32 x 3), or an encoded file still to decode.
Pending = np.ndarray | bytes
# Lanczos antialiases when shrinking, so a large photo is averaged rather than aliased.
RESIZE_FILTER = Image.Resampling.LANCZOS
BACKGROUND = (255, 255, 255)  # Transparent pixels are composited on white.
# Unambiguous first bytes of supported formats (PNG, JPEG, GIF); WebP is RIFF....WEBP.
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
DRAFT_SIDE = 128  # JPEGs decode at the smallest DCT scale that keeps both sides at least this long.

# Our own pixel limit (checked before decoding) decides; Pillow's bomb warning would only add noise.
# Set once here: a catch_warnings block around every decode costs more than decoding a CIFAR PNG.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageError(ValueError):
    """An upload that cannot become a 32x32 RGB image: empty, truncated or corrupt."""


class UnsupportedImage(ImageError):
    """Not an image in one of SUPPORTED_FORMATS."""


class ImageTooLarge(ImageError):
    """The image declares more pixels than the service will decode."""


class PixelBudget:
    """The pixels one request may have decoded in all (MAX_REQUEST_PIXELS). Each image is charged from its
    header, before decoding, so a request of many large photos is refused at the first one past the
    budget instead of holding the decoders for minutes. Charged from decode threads, hence the lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def charge(self, pixels: int) -> None:
        with self._lock:
            if pixels > self._left:
                raise ImageTooLarge(
                    f"the images of this request declare more than {self.limit} pixels in all "
                    "(MAX_REQUEST_PIXELS); send large photos in separate requests"
                )
            self._left -= pixels


def decode_image(data: bytes, max_pixels: int, charge: Callable[[int], None] | None = None) -> np.ndarray:
    """Decode an upload into uint8 (32, 32, 3), refusing bombs before any pixel is decoded.

    Steps: open (header only), check the declared size, first frame, EXIF orientation,
    centre-crop to a square, resize to 32x32 with Lanczos, then RGB with alpha on white.
    Memory stays near one decoded copy of the image: JPEGs decode at a reduced scale
    (DCT scaling, `draft`), and alpha is composited after the resize, on 32x32 pixels,
    not on full-size copies (compositing on a constant background is linear, so the
    order does not change the result beyond rounding). A 6300x6300 RGBA PNG measured
    +620 MB of peak memory composited first, about a quarter of that this way.
    """
    if not data:
        raise ImageError("the file is empty")
    image = _open(data)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image declares {width}x{height} pixels; the limit is {max_pixels} pixels")
    if charge is not None:  # The request's budget, charged from the header, before any pixel is decoded.
        charge(width * height)
    try:
        image.seek(0)  # First frame of an animation.
        if image.format == "JPEG":
            image.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))  # Decode at 1/2 to 1/8 scale, never below this.
        image = ImageOps.exif_transpose(image)
        image = _resized(_square_crop(_with_alpha_or_rgb(image)))
        return np.asarray(_on_white(image), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"the image data is truncated or corrupt ({error})") from error


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"image refused before decoding: {error}") from error
    except UnidentifiedImageError as error:
        if _has_signature(data):  # A supported format whose header does not parse: corrupt, not unsupported.
            raise ImageError(
                "the image header is corrupt (it starts like a supported format but does not parse)"
            ) from error
        formats = ", ".join(SUPPORTED_FORMATS)
        raise UnsupportedImage(f"not a supported image (expected one of {formats})") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"the image header is corrupt ({error})") from error


def _has_signature(data: bytes) -> bool:
    return data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _with_alpha_or_rgb(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency (composited later, once small)."""
    if image.mode == "RGB" and "transparency" not in image.info:
        image.load()  # Decode now, inside decode_image's error handling; no copy needed.
        return image
    if image.mode in ("RGBA", "LA", "PA", "P") or "transparency" in image.info:
        return image if image.mode == "RGBA" else image.convert("RGBA")
    return image.convert("RGB")


def _resized(image: Image.Image) -> Image.Image:
    # Pillow resizes RGBA with premultiplied alpha, so transparent pixels do not bleed their colour.
    return image if image.size == INPUT_SHAPE[:2] else image.resize(INPUT_SHAPE[:2], RESIZE_FILTER)


def _on_white(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
    return Image.alpha_composite(background, image).convert("RGB")


def _square_crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    if width == height:
        return image
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))
