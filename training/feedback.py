"""Closing the loop: the images users labelled in the prediction log, as extra training data.

`python -m training feedback-dataset --db URL --out DIR` writes every logged prediction that has
both its pixels (the service ran with LOG_IMAGES=true) and a feedback label, as
`DIR/<label>/<prediction_id>.png`, the image-folder layout most tools read. `train
--extra-data DIR` adds such a folder to the training images (never to the calibration
hold-out, which stays CIFAR-10's), and the version's dataset record names it with a hash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import create_engine, select

from training.core.classes import CLASS_NAMES
from training.core.prediction_log import Feedback, Prediction
from training.core.preprocessing import INPUT_SHAPE
from training.core.staging import staged_dir


class ExtraDataError(ValueError):
    """A folder that is not labelled 32x32 images in class-named subfolders."""


def write_feedback_dataset(db_url: str, out: Path) -> int:
    """Write the labelled, logged images under `out` (replacing it as a whole); returns how many."""
    engine = create_engine(db_url)
    query = select(Prediction.id, Prediction.image_png, Feedback.label).join(
        Feedback, Feedback.prediction_id == Prediction.id
    )
    written = 0
    try:
        with engine.connect() as connection, staged_dir(out) as staging:
            for prediction_id, png, label in connection.execute(query.where(Prediction.image_png.is_not(None))):
                if png is None or label not in CLASS_NAMES:  # (The query already leaves out rows without pixels.)
                    continue
                (staging / label).mkdir(exist_ok=True)
                (staging / label / f"{prediction_id}.png").write_bytes(png)
                written += 1
    finally:
        engine.dispose()
    return written


def load_extra_data(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x 32 x 32 x 3, int labels N) from `folder/<class name>/*.png`, in a stable order."""
    if not folder.is_dir():
        raise ExtraDataError(f"--extra-data {folder} is not a folder")
    unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in CLASS_NAMES)
    if unknown:
        raise ExtraDataError(f"{folder} has folders that are not class names: {', '.join(unknown)}")
    images, labels = [], []
    for index, name in enumerate(CLASS_NAMES):
        for path in sorted((folder / name).glob("*.png")) if (folder / name).is_dir() else []:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
            if pixels.shape != INPUT_SHAPE:
                raise ExtraDataError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, not 32x32")
            images.append(pixels)
            labels.append(index)
    if not images:
        raise ExtraDataError(f"{folder} holds no labelled PNG images (<class name>/<file>.png)")
    return np.stack(images), np.asarray(labels, dtype=np.int64)
