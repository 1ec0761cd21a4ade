"""Images that hold none of the ten classes, made offline: the novelty score's test material.

Each kind is a seeded generator of uint8 (N, 32, 32, 3) images, drawn with NumPy, SciPy
and Pillow only (nothing downloaded). Nothing here is fitted on: the novelty score's
statistics and threshold come from CIFAR-10 training images alone (`training.novelty`),
so every kind below is unseen by it. `bench/ood_report.py` measures the score on them.

- `patterns`: procedural textures (gratings, checkerboards, gradients, smooth random fields,
  random shapes on a plain ground), the "synthetic patterns" an app sees in screenshots.
- `text`: words and digits rendered in Pillow's bundled font on paper-like grounds.
- `tiles`: test images cut into 8x8 tiles and shuffled: CIFAR's colours, no object.
- `blends`: two test images of different classes averaged: near the classes, but neither.
- `noise`: Gaussian, uniform and salt-and-pepper noise, plain or smoothed.
- `photo_crops`: crops of the photographs Matplotlib ships as sample data (a portrait, a
  drawing, a logo): other things photographed. Third-party sample images, so reported on
  only, never fitted on.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

SIZE = 32
TILE = 8
Generator = Callable[[int, np.random.Generator, np.ndarray, np.ndarray], np.ndarray]


def patterns(count: int, rng: np.random.Generator, *_: np.ndarray) -> np.ndarray:
    makers = (_grating, _checkerboard, _gradient, _smooth_field, _shapes)
    return np.stack([makers[index % len(makers)](rng) for index in range(count)])


def text(count: int, rng: np.random.Generator, *_: np.ndarray) -> np.ndarray:
    return np.stack([_rendered_text(rng) for _ in range(count)])


def tiles(count: int, rng: np.random.Generator, images: np.ndarray, _: np.ndarray) -> np.ndarray:
    """Each image's 16 tiles put back in a random order."""
    chosen = images[rng.choice(len(images), count, replace=count > len(images))]
    grid = SIZE // TILE
    blocks = (
        chosen.reshape(count, grid, TILE, grid, TILE, 3).transpose(0, 1, 3, 2, 4, 5).reshape(count, -1, TILE, TILE, 3)
    )
    order = np.argsort(rng.random((count, grid * grid)), axis=1)
    shuffled = np.take_along_axis(blocks, order[:, :, None, None, None], axis=1)
    return shuffled.reshape(count, grid, grid, TILE, TILE, 3).transpose(0, 1, 3, 2, 4, 5).reshape(count, SIZE, SIZE, 3)


def blends(count: int, rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Half of one image plus half of another of a different class."""
    first = rng.choice(len(images), count)
    second = rng.choice(len(images), count)
    clash = labels[first] == labels[second]
    while clash.any():
        second[clash] = rng.choice(len(images), int(clash.sum()))
        clash = labels[first] == labels[second]
    mixed = (images[first].astype(np.float32) + images[second].astype(np.float32)) / 2
    return np.round(mixed).astype(np.uint8)


def noise(count: int, rng: np.random.Generator, *_: np.ndarray) -> np.ndarray:
    shape = (count, SIZE, SIZE, 3)
    kind = rng.integers(0, 4, count)[:, None, None, None]
    gaussian = rng.normal(128, 64, shape)
    uniform = rng.uniform(0, 256, shape)
    salt = np.where(rng.random(shape) < 0.5, 0.0, 255.0)
    smooth = ndimage.gaussian_filter(rng.normal(128, 128, shape), sigma=(0, 1.5, 1.5, 0))
    pixels = np.select([kind == 0, kind == 1, kind == 2], [gaussian, uniform, salt], smooth)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def photo_crops(count: int, rng: np.random.Generator, *_: np.ndarray) -> np.ndarray:
    """Random square crops (a sixth to the whole of the shorter side) of Matplotlib's sample photos."""
    photos = [np.asarray(Image.open(path).convert("RGB")) for path in _sample_photos()]
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        side = int(rng.uniform(1 / 6, 1) * min(photo.shape[:2]))
        top = rng.integers(0, photo.shape[0] - side + 1)
        left = rng.integers(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crops.append(np.asarray(crop.resize((SIZE, SIZE), Image.Resampling.BILINEAR)))
    return np.stack(crops)


KINDS: dict[str, Generator] = {
    "patterns": patterns,
    "text": text,
    "tiles": tiles,
    "blends": blends,
    "noise": noise,
    "photo_crops": photo_crops,
}


def make(kind: str, count: int, seed: int, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`count` images of one kind; `images`/`labels` (CIFAR test images) feed `tiles` and `blends`."""
    return KINDS[kind](count, np.random.default_rng(seed), images, labels)


def _sample_photos() -> list[Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "sample_data"
    return [folder / name for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")]


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _two_colours(rng: np.random.Generator, weight: np.ndarray) -> np.ndarray:
    first, second = _colour(rng), _colour(rng)
    pixels = weight[..., None] * first + (1 - weight[..., None]) * second
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _coordinates(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def _grating(rng: np.random.Generator) -> np.ndarray:
    along, _ = _coordinates(rng)
    period = rng.uniform(3, 16)
    return _two_colours(rng, 0.5 + 0.5 * np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi)))


def _checkerboard(rng: np.random.Generator) -> np.ndarray:
    along, across = _coordinates(rng)
    cell = rng.uniform(2, 10)
    return _two_colours(rng, ((np.floor(along / cell) + np.floor(across / cell)) % 2).astype(np.float32))


def _gradient(rng: np.random.Generator) -> np.ndarray:
    along, _ = _coordinates(rng)
    span = along.max() - along.min()
    return _two_colours(rng, (along - along.min()) / span)


def _smooth_field(rng: np.random.Generator) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE, 3)), sigma=(rng.uniform(1, 5),) * 2 + (0,))
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    return (255 * field).astype(np.uint8)


def _shapes(rng: np.random.Generator) -> np.ndarray:
    canvas = Image.new("RGB", (SIZE, SIZE), tuple(int(value) for value in _colour(rng)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 6)):
        x0, y0 = rng.integers(-8, SIZE, 2)
        x1, y1 = x0 + rng.integers(4, 24), y0 + rng.integers(4, 24)
        fill = tuple(int(value) for value in _colour(rng))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((int(x0), int(y0), int(x1), int(y1)), fill=fill)
    return np.asarray(canvas)


def _rendered_text(rng: np.random.Generator) -> np.ndarray:
    """A word or number drawn at 4x and shrunk, as a photographed label or a screenshot would be."""
    scale = 4
    paper = rng.integers(170, 256, 3) if rng.random() < 0.7 else rng.integers(0, 256, 3)
    ink = 255 - paper if rng.random() < 0.8 else rng.integers(0, 256, 3)
    canvas = Image.new("RGB", (SIZE * scale, SIZE * scale), tuple(int(value) for value in paper))
    draw = ImageDraw.Draw(canvas)
    alphabet = string.digits if rng.random() < 0.5 else string.ascii_letters + string.digits
    for line in range(rng.integers(1, 4)):
        length = int(rng.integers(1, 7))
        words = "".join(rng.choice(list(alphabet), length))
        font = ImageFont.load_default(size=float(rng.uniform(24, 64)))
        position = (float(rng.uniform(-8, 64)), float(rng.uniform(-8, 96)) if line == 0 else 40.0 * line)
        draw.text(position, words, fill=tuple(int(value) for value in ink), font=font)
    return np.asarray(canvas.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
