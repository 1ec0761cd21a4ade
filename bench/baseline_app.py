"""The service plus two reference endpoints, for bench/serve_throughput.py only.

/bench/naive   what a first version usually does: model.predict() on each request.
/bench/upload  reads the upload and answers: the framework's ceiling for this body.
Both sit in the same process as /predict, so the three are measured alike.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated, Any

from fastapi import File, UploadFile

from app.decoding import decode_image
from app.main import create_app
from training.core import artifacts
from training.core.preprocessing import scale_images

app = create_app()
_settings = app.state.settings
_name = os.environ["BENCH_MODEL"]
_folder = artifacts.version_dir(_settings.models_dir, _name)
_metadata = artifacts.load_artifact(_folder).metadata


@cache
def _model() -> Any:
    """Loaded on the first naive request only: /predict is measured without TensorFlow in the process."""
    return artifacts.load_keras_model(_folder)


@app.post("/bench/naive")
def naive_predict(file: Annotated[UploadFile, File()]) -> dict:
    image = decode_image(file.file.read(), _settings.max_image_pixels)
    probabilities = _model().predict(scale_images(image[None], _metadata.scaling), verbose=0)[0]
    return {"class_index": int(probabilities.argmax())}


@app.post("/bench/upload")
async def read_upload(file: Annotated[UploadFile, File()]) -> dict:
    return {"bytes": len(await file.read())}
