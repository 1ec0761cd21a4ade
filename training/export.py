"""A portable copy of a version: a TensorFlow SavedModel that TF Serving, KServe or Triton load as is.

The `serving_default` signature is the served procedure itself (the core's forward pass:
uint8 images in; scaling, test-time augmentation and temperature inside), so any
TensorFlow server answers exactly what this service answers. It sits in the version
folder, TF Serving's layout (`<name>/<version>/saved_model.pb` + `variables/`), beside
the Keras model; `saved_model.pb` is moved in last, so a server polling the folder
never loads half an export.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf

from training.core import artifacts
from training.core.forward import make_forward
from training.core.preprocessing import INPUT_SHAPE

SIGNATURE = "serving_default"
INPUT_NAME = "images"


def write_saved_model(model: Any, metadata: artifacts.Metadata, folder: Path) -> None:
    """Export `model` as `metadata` says it is served, into `folder` (a version or its staging folder)."""
    forward = make_forward(
        model, metadata.scaling, metadata.test_time_augmentation, metadata.temperature, metadata.tta_average
    )
    module = tf.Module()
    module.model = model  # Tracked, so that its variables are saved.

    @tf.function(input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.uint8, name=INPUT_NAME)])
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = forward(images)
        return {"probabilities": probabilities, "class_index": tf.argmax(probabilities, axis=1)}

    module.serve = serve
    staging = folder / f"{artifacts.STAGING_PREFIX}saved_model-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE: serve})
        for entry in sorted(staging.iterdir(), key=lambda path: path.name == artifacts.SAVED_MODEL_FILE):
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)  # saved_model.pb last: its arrival marks a complete export.
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_version(folder: Path) -> Path:
    """Add the SavedModel to an existing version folder; returns the folder."""
    artifact = artifacts.load_artifact(folder)
    write_saved_model(artifacts.load_keras_model(folder), artifact.metadata, folder)
    return folder
