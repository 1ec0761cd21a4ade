"""TensorFlow Serving's REST API (v1), without HTTP: predict requests in, responses out.

As TF Serving documents it: `instances` (row format: one entry per image) or `inputs`
(columnar: the batch under one key, or a map with one input name); each image is
either `{"b64": "<standard base64 of an image file>"}` or a 32x32x3 nested list of
0-255 integers. Answers `predictions` (row) or `outputs` (columnar): the ten
probabilities per image, as TF Serving answers a one-output signature. A version with a
novelty score has the outputs its SavedModel exports (probabilities, class_index,
ood_score), so each row is an object of them, as TF Serving answers several outputs,
with `in_distribution` beside. Failures are `TensorError`s (400 INVALID_ARGUMENT).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from app.decoding import Pending
from app.protocols.open_inference import TensorError, integral
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
NOVELTY_OUTPUT = "ood_score"
SIGNATURE = "serving_default"

# The :predict body as JSON Schema, for the OpenAPI document. What it cannot say (that b64
# decodes to an image) is checked by the parser and the decoder, with 400 or 415.
_PIXELS_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 255}
for _size in reversed(INPUT_SHAPE):
    _PIXELS_SCHEMA = {"type": "array", "minItems": _size, "maxItems": _size, "items": _PIXELS_SCHEMA}
_FILE_SCHEMA = {
    "type": "object",
    "properties": {"b64": {"type": "string", "contentEncoding": "base64"}},
    "required": ["b64"],
    "additionalProperties": False,
}
_BATCH_SCHEMA = {"type": "array", "minItems": 1, "items": {"oneOf": [_PIXELS_SCHEMA, _FILE_SCHEMA]}}
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "signature_name": {"type": "string", "enum": [SIGNATURE]},
        "instances": _BATCH_SCHEMA,
        "inputs": {
            "oneOf": [
                _BATCH_SCHEMA,
                {
                    "type": "object",
                    "properties": {INPUT_NAME: _BATCH_SCHEMA},
                    "required": [INPUT_NAME],
                    "additionalProperties": False,
                },
            ]
        },
    },
    "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
}


def parse_predict(body: Any, max_batch: int) -> tuple[list[Pending], bool]:
    """(images, row format?) from a parsed :predict body."""
    if not isinstance(body, dict):
        raise TensorError("the request body must be a JSON object with 'instances' or 'inputs'")
    signature = body.get("signature_name", SIGNATURE)
    if signature != SIGNATURE:
        raise TensorError(f"unknown signature_name {signature!r}; this model has {SIGNATURE!r}")
    if ("instances" in body) == ("inputs" in body):
        raise TensorError("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    row = "instances" in body
    batch = body["instances"] if row else body["inputs"]
    if isinstance(batch, dict):  # Named inputs: this signature has exactly one.
        if set(batch) != {INPUT_NAME}:
            raise TensorError(f"the only input is {INPUT_NAME!r}, got {sorted(batch)}")
        batch = batch[INPUT_NAME]
    if not isinstance(batch, list) or not 1 <= len(batch) <= max_batch:
        raise TensorError(f"send a list of 1 to {max_batch} images")
    return [_image(item, index) for index, item in enumerate(batch)], row


def _image(item: Any, index: int) -> Pending:
    if isinstance(item, dict) and set(item) == {INPUT_NAME}:  # Row format with the input named.
        item = item[INPUT_NAME]
    if isinstance(item, dict):
        if set(item) != {"b64"} or not isinstance(item["b64"], str):
            raise TensorError(f'image {index}: an encoded image is {{"b64": "<base64>"}}')
        try:
            return base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise TensorError(f"image {index}: b64 is not standard base64 ({error})") from error
    try:
        pixels = np.asarray(item)
    except (ValueError, TypeError) as error:
        raise TensorError(f"image {index}: not a regular nested list ({error})") from error
    if pixels.shape != INPUT_SHAPE or not integral(pixels):
        raise TensorError(f"image {index}: expected a {list(INPUT_SHAPE)} list of integers, got {list(pixels.shape)}")
    if pixels.min() < 0 or pixels.max() > 255:
        raise TensorError(f"image {index}: pixel values must be 0 to 255")
    return pixels.astype(np.uint8)


def predict_response(outputs: dict[str, np.ndarray], row: bool) -> dict[str, Any]:
    """`outputs`: the Open Inference Protocol's `output_tensors`; one output alone answers bare values."""
    if NOVELTY_OUTPUT not in outputs:
        values = outputs[OUTPUT_NAME].tolist()
        return {"predictions": values} if row else {"outputs": values}
    columns = {name: tensor.tolist() for name, tensor in outputs.items()}
    if not row:
        return {"outputs": columns}
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return {"predictions": rows}


def version_status(versions: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """`model_version_status` from version -> (TF Serving state, error message)."""
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": state,
                "status": {"error_code": "OK" if not message else "UNKNOWN", "error_message": message},
            }
            for version, (state, message) in sorted(versions.items(), reverse=True)
        ]
    }


def metadata(name: str, version: int, novelty: bool) -> dict[str, Any]:
    """The GetModelMetadata answer: the serving_default signature_def (with ood_score when `novelty`)."""

    def tensor(dtype: str, shape: tuple[int, ...], tensor_name: str) -> dict[str, Any]:
        return {
            "dtype": dtype,
            "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in shape], "unknown_rank": False},
            "name": tensor_name,
        }

    outputs = {OUTPUT_NAME: tensor("DT_FLOAT", (-1, NUM_CLASSES), "StatefulPartitionedCall:0")}
    if novelty:
        outputs["class_index"] = tensor("DT_INT64", (-1,), "StatefulPartitionedCall:1")
        outputs[NOVELTY_OUTPUT] = tensor("DT_FLOAT", (-1,), "StatefulPartitionedCall:2")
    signature = {
        "inputs": {INPUT_NAME: tensor("DT_UINT8", (-1, *INPUT_SHAPE), f"serving_default_{INPUT_NAME}:0")},
        "outputs": outputs,
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }
