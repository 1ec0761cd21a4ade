"""Common corruptions of 32x32 photos, in the style of CIFAR-10-C, regenerated offline.

Hendrycks & Dietterich (ICLR 2019) damaged the CIFAR-10 test set in 19 ways at five
severities; robustness results (RobustBench, AugMix) are reported on it. The archive
cannot be downloaded here, so this module makes the same kinds of damage with the
published per-severity constants for 32x32 images, with NumPy, SciPy, Pillow and
Matplotlib's colour conversions only (nothing the service would need):

- noise: gaussian_noise, shot_noise, impulse_noise, speckle_noise;
- blur: gaussian_blur, defocus_blur, glass_blur, motion_blur, zoom_blur;
- weather: snow, fog, spatter, brightness;
- digital: contrast, saturate, elastic_transform, pixelate, jpeg_compression.

Where the reference used other tools the equivalent is written here: ImageMagick's
motion blur (motion_blur, snow) is a one-sided line of Gaussian-weighted taps at a
random angle; OpenCV's affine warp and filters are SciPy's; spatter's water drops
(severities 1-3) shade the drops by their distance to the drop edge with SciPy's
distance transform instead of OpenCV's Canny edges and histogram equalisation.
`frost` is left out: it blends in photographs of frost that would have to be
downloaded. So 18 of the 19 corruptions.

Every function takes uint8 images (N, 32, 32, 3), a severity 1-5 and a NumPy
generator, and returns uint8 images of the same shape; the same seed gives the same
images, labels are never involved.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image
from scipy import ndimage

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
SEVERITIES = (1, 2, 3, 4, 5)


def _unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float64) / 255.0


def _uint8(images: np.ndarray) -> np.ndarray:
    """Back to pixels the way the reference stores them: clipped to [0, 1], scaled, truncated."""
    return (np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


# Noise


def gaussian_noise(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (0.04, 0.06, 0.08, 0.09, 0.10)[severity - 1]
    x = _unit(images)
    return _uint8(x + rng.normal(0.0, sigma, x.shape))


def shot_noise(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Photon counting: Poisson counts at `rate` photons per unit of brightness."""
    rate = (500, 250, 100, 75, 50)[severity - 1]
    return _uint8(rng.poisson(_unit(images) * rate) / rate)


def impulse_noise(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: this share of the values (each channel apart) set to 0 or 1, half each."""
    amount = (0.01, 0.02, 0.03, 0.05, 0.07)[severity - 1]
    x = _unit(images)
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    x[hit & salt] = 1.0
    x[hit & ~salt] = 0.0
    return _uint8(x)


def speckle_noise(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (0.06, 0.10, 0.12, 0.16, 0.20)[severity - 1]
    x = _unit(images)
    return _uint8(x + x * rng.normal(0.0, sigma, x.shape))


# Blur


def _spatial_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each image and channel (nearest-pixel borders, as scikit-image's default)."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)


def gaussian_blur(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (0.4, 0.6, 0.7, 0.8, 1.0)[severity - 1]
    return _uint8(_spatial_blur(_unit(images), sigma))


def glass_blur(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blur, give each pixel a random neighbour's value (bottom-right to top-left), blur again.

    The reference meant to swap the two pixels, but its NumPy swap copies the neighbour
    into place and leaves the neighbour as it was; CIFAR-10-C holds that, so this does too.
    """
    sigma, delta, iterations = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))[severity - 1]
    x = _uint8(_spatial_blur(_unit(images), sigma))
    side = x.shape[1]
    everyone = np.arange(len(x))
    for _ in range(iterations):
        for row in range(side - delta, delta, -1):
            for column in range(side - delta, delta, -1):
                dy, dx = rng.integers(-delta, delta, size=(2, len(x)))
                x[everyone, row, column] = x[everyone, row + dy, column + dx]
    return _uint8(_spatial_blur(x / 255.0, sigma))


def _gaussian_taps(count: int, sigma: float) -> np.ndarray:
    taps = np.exp(-((np.arange(count) - count // 2) ** 2) / (2 * sigma**2))
    return taps / taps.sum()


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """A lens's circle of confusion: a disk (17x17 support), softened by a 3-tap Gaussian."""
    half = max(8, int(np.ceil(radius)))
    offsets = np.arange(-half, half + 1)
    rows, columns = np.meshgrid(offsets, offsets)
    disk = (rows**2 + columns**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = _gaussian_taps(3, alias_blur)
    disk = ndimage.convolve1d(disk, taps, axis=0, mode="mirror")
    return ndimage.convolve1d(disk, taps, axis=1, mode="mirror")


def defocus_blur(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, alias_blur = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))[severity - 1]
    kernel = _disk_kernel(radius, alias_blur)[None, :, :, None]
    return _uint8(ndimage.correlate(_unit(images), kernel, mode="mirror"))


def _line_blur(images: np.ndarray, radius: int, sigma: float, angles_degrees: np.ndarray) -> np.ndarray:
    """Motion blur of each image (N, H, W[, C]) along its own angle: Gaussian-weighted shifted copies.

    Like ImageMagick's motion blur, the trail is one-sided: tap i is shifted i pixels along the
    angle and weighted exp(-i^2 / 2 sigma^2), over 2 * radius + 1 taps; borders are clamped.
    All images are shifted at once per tap (one gather), not one image at a time.
    """
    count, height, width = images.shape[:3]
    angles = np.deg2rad(angles_degrees)
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    which = np.arange(count)[:, None, None]
    out = np.zeros(images.shape, dtype=np.float64)
    for tap, weight in zip(taps, weights, strict=True):
        dy, dx = np.round(tap * np.sin(angles)).astype(int), np.round(tap * np.cos(angles)).astype(int)
        rows = np.clip(np.arange(height) + dy[:, None], 0, height - 1)
        columns = np.clip(np.arange(width) + dx[:, None], 0, width - 1)
        out += weight * images[which, rows[:, :, None], columns[:, None, :]]
    return out


def motion_blur(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, sigma = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))[severity - 1]
    angles = rng.uniform(-45, 45, len(images))
    x = _unit(images)
    return _uint8(_line_blur(x, radius, sigma, angles))


def _linear_resize(size_in: int, size_out: int) -> np.ndarray:
    """The (size_out, size_in) matrix of 1-D linear interpolation, end points aligned as in
    `scipy.ndimage.zoom(order=1)`: output i samples input i * (size_in - 1) / (size_out - 1)."""
    coords = np.arange(size_out) * (size_in - 1) / (size_out - 1)
    low = np.minimum(np.floor(coords).astype(int), size_in - 2)
    share = coords - low
    matrix = np.zeros((size_out, size_in))
    matrix[np.arange(size_out), low] = 1 - share
    matrix[np.arange(size_out), low + 1] += share
    return matrix


def _zoomed_centre(x: np.ndarray, factor: float) -> np.ndarray:
    """The centre of each image (N, H, W, ...) enlarged by `factor` (bilinear), cropped back to H x W.

    The same pixels as `scipy.ndimage.zoom(order=1)` (to float rounding), as two small matrix
    products over every image at once (batched `matmul`; measured ten times faster than the
    same products through `einsum`, which was ten times faster than the general spline code).
    """
    side = x.shape[1]
    crop = int(np.ceil(side / factor))
    top = (side - crop) // 2
    centre = x[:, top : top + crop, top : top + crop]
    enlarged = round(crop * factor)  # ndimage.zoom's output size.
    trim = (enlarged - side) // 2
    resize = _linear_resize(crop, enlarged)[trim : trim + side]
    planes = np.moveaxis(centre, (1, 2), (-2, -1))  # (N, ..., crop, crop): the two image axes last.
    return np.moveaxis(resize @ planes @ resize.T, (-2, -1), (1, 2))


def zoom_blur(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The image averaged with zoomed copies of itself, as when zooming during the exposure."""
    largest = (1.06, 1.11, 1.16, 1.21, 1.26)[severity - 1]
    factors = np.arange(1.0, largest, 0.01)
    x = _unit(images)
    total = x.copy()
    for factor in factors:
        total += _zoomed_centre(x, factor)
    return _uint8(total / (len(factors) + 1))


# Weather


def _plasma(side: int, roughness_decay: float, rng: np.random.Generator) -> np.ndarray:
    """A fractal cloud by the diamond-square algorithm, scaled to [0, 1]; `side` is a power of two."""
    height = np.zeros((side, side))
    step, roughness = side, 100.0
    while step >= 2:
        half = step // 2
        corners = height[0:side:step, 0:side:step]
        centres = corners + np.roll(corners, -1, axis=0)
        centres = centres + np.roll(centres, -1, axis=1)
        height[half:side:step, half:side:step] = centres / 4 + roughness * rng.uniform(
            -roughness, roughness, centres.shape
        )
        centres = height[half:side:step, half:side:step]
        corners = height[0:side:step, 0:side:step]
        left = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        height[0:side:step, half:side:step] = left / 4 + roughness * rng.uniform(-roughness, roughness, left.shape)
        top = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        height[half:side:step, 0:side:step] = top / 4 + roughness * rng.uniform(-roughness, roughness, top.shape)
        step //= 2
        roughness /= roughness_decay
    height -= height.min()
    return height / height.max()


def fog(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    strength, decay = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))[severity - 1]
    x = _unit(images)
    side = x.shape[1]
    clouds = np.stack([_plasma(side, decay, rng) for _ in range(len(x))])[..., None]
    brightest = x.max(axis=(1, 2, 3), keepdims=True)
    return _uint8((x + strength * clouds) * brightest / (brightest + strength))


def _grey(x: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601), as OpenCV's RGB-to-grey conversion."""
    return (x @ np.array([0.299, 0.587, 0.114]))[..., None]


def snow(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Flakes (thresholded noise, enlarged and motion-blurred downwards) over a brightened image."""
    loc, scale, zoom, threshold, radius, sigma, keep = (
        (0.10, 0.2, 1.00, 0.60, 8, 3, 0.95),
        (0.10, 0.2, 1.00, 0.50, 10, 4, 0.90),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.90),
        (0.25, 0.3, 2.25, 0.60, 12, 6, 0.85),
        (0.30, 0.3, 1.25, 0.65, 14, 12, 0.80),
    )[severity - 1]
    x = _unit(images)
    flakes = rng.normal(loc, scale, x.shape[:3])
    flakes = _zoomed_centre(flakes, zoom) if zoom > 1 else flakes
    flakes[flakes < threshold] = 0.0
    flakes = np.round(np.clip(flakes, 0.0, 1.0) * 255) / 255  # The reference passes the layer through 8 bits.
    angles = rng.uniform(-135, -45, len(x))
    flakes = _line_blur(flakes, radius, sigma, angles)[..., None]
    x = keep * x + (1 - keep) * np.maximum(x, _grey(x) * 1.5 + 0.5)
    return _uint8(x + flakes + np.rot90(flakes, k=2, axes=(1, 2)))


def spatter(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Drops on the lens: pale water (severities 1-3) or brown mud (4-5)."""
    loc, scale, sigma, threshold, intensity, mud = (
        (0.62, 0.1, 0.7, 0.70, 0.5, False),
        (0.65, 0.1, 0.8, 0.70, 0.5, False),
        (0.65, 0.3, 1.0, 0.69, 0.5, False),
        (0.65, 0.1, 0.7, 0.69, 0.6, True),
        (0.65, 0.1, 0.5, 0.68, 0.6, True),
    )[severity - 1]
    x = _unit(images)
    liquid = ndimage.gaussian_filter(rng.normal(loc, scale, x.shape[:3]), sigma=(0, sigma, sigma), mode="nearest")
    liquid[liquid < threshold] = 0.0
    if mud:
        drops = ndimage.gaussian_filter((liquid > threshold).astype(np.float64), sigma=(0, intensity, intensity))
        drops[drops < 0.8] = 0.0
        drops = drops[..., None]
        return _uint8(x * (1 - drops) + drops * np.array([63, 42, 20]) / 255.0)
    inside = liquid > 0
    depth = np.stack([ndimage.distance_transform_edt(mask) for mask in inside])  # Thicker towards the middle.
    shade = liquid * np.minimum(depth, 20.0)
    peak = shade.max(axis=(1, 2), keepdims=True)
    shade = np.divide(shade, peak, out=np.zeros_like(shade), where=peak > 0) * intensity
    return _uint8(x + shade[..., None] * np.array([175, 238, 238]) / 255.0)


def _adjust_hsv(images: np.ndarray, channel: int, scale: float, shift: float) -> np.ndarray:
    hsv = rgb_to_hsv(_unit(images))
    hsv[..., channel] = np.clip(hsv[..., channel] * scale + shift, 0.0, 1.0)
    return _uint8(hsv_to_rgb(hsv))


def brightness(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    return _adjust_hsv(images, 2, 1.0, (0.05, 0.1, 0.15, 0.2, 0.3)[severity - 1])


# Digital


def contrast(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    factor = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
    x = _unit(images)
    means = x.mean(axis=(1, 2), keepdims=True)
    return _uint8((x - means) * factor + means)


def saturate(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    scale, shift = ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2))[severity - 1]
    return _adjust_hsv(images, 1, scale, shift)


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """Each image encoded as a JPEG at `quality` (Pillow's defaults: 4:2:0 subsampling) and decoded."""
    return np.stack([_jpeg_round_trip(image, quality) for image in images]) if len(images) else images.copy()


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def jpeg_compression(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    return jpeg(images, (80, 65, 58, 50, 40)[severity - 1])


def pixelate(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    share = (0.95, 0.9, 0.85, 0.75, 0.65)[severity - 1]
    side = images.shape[1]
    small = int(side * share)

    def blocky(image: np.ndarray) -> np.ndarray:
        shrunk = Image.fromarray(image).resize((small, small), Image.Resampling.BOX)
        return np.asarray(shrunk.resize((side, side), Image.Resampling.BOX))

    return np.stack([blocky(image) for image in images])


def _affine_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix that maps three (x, y) source points onto the target points."""
    design = np.hstack([source, np.ones((3, 1))])
    return np.linalg.solve(design, target).T


def elastic_transform(images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A small random affine warp, then a smooth random displacement field (rubber-sheet distortion)."""
    side = images.shape[1]
    alpha, sigma, jitter = (
        (side * 0.0, side * 0.0, side * 0.08),
        (side * 0.05, side * 0.2, side * 0.07),
        (side * 0.08, side * 0.06, side * 0.06),
        (side * 0.1, side * 0.04, side * 0.05),
        (side * 0.1, side * 0.03, side * 0.03),
    )[severity - 1]
    x = _unit(images).astype(np.float32)
    centre, reach = side // 2, side // 3
    anchors = np.array(
        [[centre + reach, centre + reach], [centre + reach, centre - reach], [centre - reach, centre - reach]],
        dtype=np.float64,
    )
    grid_rows, grid_columns = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    out = np.empty_like(x)
    for index, image in enumerate(x):
        moved = anchors + rng.uniform(-jitter, jitter, anchors.shape)
        # Output pixel (x, y) reads the input at the inverse map, as OpenCV's warpAffine does.
        inverse = _affine_from_points(moved, anchors)
        source_columns = inverse[0, 0] * grid_columns + inverse[0, 1] * grid_rows + inverse[0, 2]
        source_rows = inverse[1, 0] * grid_columns + inverse[1, 1] * grid_rows + inverse[1, 2]
        shifts = [
            ndimage.gaussian_filter(rng.uniform(-1, 1, (side, side)), sigma, mode="reflect", truncate=3) * alpha
            if sigma > 0
            else np.zeros((side, side))
            for _ in range(2)
        ]
        for channel in range(image.shape[-1]):
            warped = ndimage.map_coordinates(image[..., channel], [source_rows, source_columns], order=1, mode="mirror")
            out[index, ..., channel] = ndimage.map_coordinates(
                warped, [grid_rows + shifts[1], grid_columns + shifts[0]], order=1, mode="reflect"
            )
    return _uint8(out)


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "fog": fog,
    "spatter": spatter,
    "brightness": brightness,
    "contrast": contrast,
    "saturate": saturate,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """`images` with corruption `name` at `severity`; the same seed gives the same pixels."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1 to 5, got {severity}")
    try:
        corruption = CORRUPTIONS[name]
    except KeyError:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}") from None
    if not len(images):
        return images.copy()
    # One generator per (seed, corruption, severity): each cell of the benchmark is reproducible alone.
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    return corruption(images, severity, rng)
