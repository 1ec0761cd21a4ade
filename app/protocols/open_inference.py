"""The Open Inference Protocol (KServe V2) REST data plane, without HTTP: parse a request body
into images, and turn probabilities into a response body.

Follows kserve/open-inference-protocol `inference_rest.md` and Triton's binary tensor
data extension: a JSON header, optionally followed by raw tensor bytes whose sizes the
header gives (`binary_data_size`); the HTTP layer passes the header's length from
`Inference-Header-Content-Length`. Every failure is a `TensorError` (a 400).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import InvalidRequest
from app.parsing import is_count, load_json
from training.core.classes import NUM_CLASSES
from training.core.preprocessing import INPUT_SHAPE

PIXELS = "images"  # UINT8 [N, 32, 32, 3]: the network's own input.
FILES = "image_files"  # BYTES [N]: encoded image files, decoded like a /predict upload.
PROBABILITIES = "probabilities"  # FP32 [N, 10]
CLASS_INDEX = "class_index"  # INT64 [N]
OOD_SCORE = "ood_score"  # FP32 [N]: the novelty score, higher = less like the training images.
IN_DISTRIBUTION = "in_distribution"  # BOOL [N]: ood_score at or below the version's threshold.
OUTPUTS = (PROBABILITIES, CLASS_INDEX, OOD_SCORE, IN_DISTRIBUTION)
NOVELTY_OUTPUTS = (OOD_SCORE, IN_DISTRIBUTION)  # Only from versions with a novelty score.
OUTPUT_DATATYPES = {PROBABILITIES: "FP32", CLASS_INDEX: "INT64", OOD_SCORE: "FP32", IN_DISTRIBUTION: "BOOL"}
INPUT_DATATYPES = {PIXELS: "UINT8", FILES: "BYTES"}
PLATFORM = "tensorflow_keras"
SERVER_NAME = "cifar10-service"
EXTENSIONS = ("binary_tensor_data",)
PIXELS_PER_IMAGE = int(np.prod(INPUT_SHAPE))

# The JSON inference header as JSON Schema, for the OpenAPI document. What it cannot say (that
# `data` holds shape's product of values, that files decode) is checked by the parser, with 400.
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "enum": [PIXELS, FILES]},
                    "datatype": {"type": "string", "enum": ["UINT8", "BYTES"]},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "data": {"type": "array"},
                    "parameters": {"type": "object"},
                },
                "required": ["name", "datatype", "shape"],
            },
        },
        "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
    },
    "required": ["inputs"],
}


class TensorError(InvalidRequest):
    """A tensor that does not fit the model's signature: wrong name, datatype, shape or size."""


def input_metadata() -> list[dict[str, Any]]:
    return [
        {"name": PIXELS, "datatype": INPUT_DATATYPES[PIXELS], "shape": [-1, *INPUT_SHAPE]},
        {"name": FILES, "datatype": INPUT_DATATYPES[FILES], "shape": [-1]},
    ]


def output_metadata(novelty: bool) -> list[dict[str, Any]]:
    """The outputs a version offers: the novelty ones only when it has a novelty score."""
    names = OUTPUTS if novelty else tuple(name for name in OUTPUTS if name not in NOVELTY_OUTPUTS)
    shapes = {PROBABILITIES: [-1, NUM_CLASSES]}
    return [{"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": shapes.get(name, [-1])} for name in names]


@dataclass(frozen=True)
class InferenceRequest:
    """What a request asks for: exactly one of pixels (uint8 N x 32 x 32 x 3) or encoded files."""

    pixels: np.ndarray | None
    files: list[bytes] | None
    outputs: dict[str, bool] = field(default_factory=dict)  # Output name -> as binary data? Empty: all.
    request_id: str | None = None
    binary_default: bool = False  # For outputs not named (all of them, when none is).

    @property
    def count(self) -> int:
        return len(self.pixels) if self.pixels is not None else len(self.files or [])


def parse_request(body: bytes, header_length: int | None, max_batch: int) -> InferenceRequest:
    """Parse an infer request body; `header_length` is Inference-Header-Content-Length (None without it).
    Its JSON header's size was capped as it arrived (`app.parsing.receive_json_body`)."""
    if header_length == 0:  # No JSON at all: the whole body is the one input's raw bytes.
        return InferenceRequest(_raw_pixels(body, max_batch), None, binary_default=True)
    split = len(body) if header_length is None else header_length
    if split < 0 or split > len(body):
        raise TensorError(f"Inference-Header-Content-Length {header_length} does not fit a {len(body)}-byte body")
    header = _json_object(body[:split])
    binary = memoryview(body)[split:]
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise TensorError(f"send exactly one input: {PIXELS!r} (UINT8 pixels) or {FILES!r} (BYTES image files)")
    tensor, used = _input(inputs[0], binary, max_batch)
    if used != len(binary):
        raise TensorError(f"the body carries {len(binary)} bytes of binary data, the inputs declare {used}")
    pixels, files = (tensor, None) if inputs[0].get("name") == PIXELS else (None, tensor)
    request_id = header.get("id")
    outputs, binary_default = _outputs(header)
    return InferenceRequest(pixels, files, outputs, str(request_id) if request_id is not None else None, binary_default)


def _json_object(data: bytes | memoryview) -> dict[str, Any]:
    try:
        parsed = load_json(data, "the inference header")
    except InvalidRequest as error:
        raise TensorError(str(error)) from error
    if not isinstance(parsed, dict):
        raise TensorError("the inference header must be a JSON object")
    return parsed


def _input(spec: dict[str, Any], binary: memoryview, max_batch: int) -> tuple[Any, int]:
    """The decoded tensor and how many binary bytes it used."""
    name, shape = spec.get("name"), spec.get("shape")
    check_input(name, spec.get("datatype"), shape, max_batch)
    assert isinstance(shape, list)  # check_input made sure; this tells the type checker.
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not is_count(size) or size > len(binary):
            raise TensorError(f"binary_data_size {size!r} does not fit the {len(binary)} bytes after the header")
        raw = binary[:size]
        return (pixels_from_bytes(raw, shape) if name == PIXELS else files_from_bytes(raw, shape[0])), size
    if "data" not in spec:
        raise TensorError(f"input {name!r} has neither data nor binary_data_size")
    return (pixels_from_values(spec["data"], shape) if name == PIXELS else _files_from_json(spec["data"], shape[0])), 0


def check_input(name: Any, datatype: Any, shape: Any, max_batch: int) -> None:
    """The one input's name, datatype, shape and batch size against the signature (REST and gRPC alike)."""
    if not isinstance(name, str) or name not in INPUT_DATATYPES:
        raise TensorError(f"unknown input {name!r}; inputs: {PIXELS} (UINT8), {FILES} (BYTES)")
    if datatype != INPUT_DATATYPES[name]:
        raise TensorError(f"input {name!r} must be {INPUT_DATATYPES[name]}, got {datatype!r}")
    if not isinstance(shape, list) or not all(is_count(size) for size in shape):
        raise TensorError(f"input {name!r} needs a shape of non-negative integers, got {shape!r}")
    wanted = [-1, *INPUT_SHAPE] if name == PIXELS else [-1]
    if len(shape) != len(wanted) or any(w != -1 and w != s for w, s in zip(wanted, shape, strict=True)):
        raise TensorError(f"input {name!r} must have shape {wanted} (-1: any batch size), got {shape}")
    if not 1 <= shape[0] <= max_batch:
        raise TensorError(f"a batch of {shape[0]} images; send 1 to {max_batch} per request")


def pixels_from_bytes(raw: bytes | memoryview, shape: list[int]) -> np.ndarray:
    if len(raw) != int(np.prod(shape)):
        raise TensorError(f"UINT8 {shape} takes {int(np.prod(shape))} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def pixels_from_values(data: Any, shape: list[int]) -> np.ndarray:
    """UINT8 pixels sent as numbers (JSON `data`, gRPC `uint_contents`), checked to be 0-255 integers."""
    try:
        values = np.asarray(data)
    except (ValueError, TypeError, RecursionError) as error:
        raise TensorError(f"input data is not a regular (flat or nested) list of numbers ({error})") from error
    if not integral(values) or values.size != int(np.prod(shape)):
        raise TensorError(f"UINT8 {shape} needs {int(np.prod(shape))} integers, got {values.size} of {values.dtype}")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise TensorError("UINT8 values must be 0 to 255")
    return values.astype(np.uint8).reshape(shape)


def integral(values: np.ndarray) -> bool:
    """Integers, or JSON numbers like 159.0 (JSON Schema counts those as integers too)."""
    return values.dtype.kind in "iu" or (values.dtype.kind == "f" and bool(np.all(np.mod(values, 1) == 0)))


def _raw_pixels(body: bytes, max_batch: int) -> np.ndarray:
    count, remainder = divmod(len(body), PIXELS_PER_IMAGE)
    if remainder or not 1 <= count <= max_batch:
        raise TensorError(
            f"a raw body (Inference-Header-Content-Length: 0) is UINT8 images of {PIXELS_PER_IMAGE} bytes each, "
            f"1 to {max_batch} of them; got {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(count, *INPUT_SHAPE)


def files_from_bytes(raw: bytes | memoryview, count: int) -> list[bytes]:
    """BYTES elements as the extension lays them out: a 4-byte little-endian length, then the bytes."""
    files: list[bytes] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise TensorError(f"BYTES data ends after {len(files)} of {count} elements")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise TensorError(f"BYTES element {len(files)} declares {length} bytes; only {len(raw) - offset} remain")
        files.append(bytes(raw[offset : offset + length]))
        offset += length
    if offset != len(raw):
        raise TensorError(f"BYTES data has {len(raw) - offset} bytes after its {count} elements")
    return files


def _files_from_json(data: Any, count: int) -> list[bytes]:
    """In JSON, BYTES elements are strings; image files are binary, so they travel base64-encoded."""
    if not isinstance(data, list) or len(data) != count or not all(isinstance(item, str) for item in data):
        raise TensorError(f"BYTES [{count}] in JSON needs {count} strings (base64 of image files)")
    try:
        return [base64.b64decode(item, validate=True) for item in data]
    except (binascii.Error, ValueError) as error:
        raise TensorError(f"BYTES elements in JSON must be base64-encoded image files ({error})") from error


def _outputs(header: dict[str, Any]) -> tuple[dict[str, bool], bool]:
    """The outputs named (name -> as binary data?; empty: all) and the binary default."""
    parameters = header.get("parameters") or {}
    binary_default = bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False
    requested = header.get("outputs")
    if requested is None:
        return {}, binary_default
    if not isinstance(requested, list):
        raise TensorError("outputs must be a list")
    chosen: dict[str, bool] = {}
    for item in requested:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in OUTPUTS:
            raise TensorError(f"unknown output {name!r}; outputs: {', '.join(OUTPUTS)}")
        options = item.get("parameters") or {}
        chosen[name] = bool(options.get("binary_data", binary_default)) if isinstance(options, dict) else binary_default
    return chosen, binary_default


def response_body(
    request: InferenceRequest, values: dict[str, np.ndarray], model: str, version: int
) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary outputs follow it, else None); `values`: `output_tensors`."""
    outputs, chunks = [], []
    wanted = request.outputs or dict.fromkeys(values, request.binary_default)
    for name, binary in wanted.items():
        tensor = offered(values, name, version)
        described: dict[str, Any] = {"name": name, "datatype": OUTPUT_DATATYPES[name], "shape": list(tensor.shape)}
        if binary:
            chunk = little_endian_bytes(tensor)
            described["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            described["data"] = tensor.ravel().tolist()
        outputs.append(described)
    header: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if request.request_id is not None:
        header["id"] = request.request_id
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return encoded + b"".join(chunks), (len(encoded) if chunks else None)


def output_tensors(
    probabilities: np.ndarray, ood_scores: np.ndarray | None = None, in_distribution: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every output the version offers, from its probabilities (N x 10) and, if it has them, novelty answers."""
    values = {
        PROBABILITIES: probabilities.astype(np.float32),
        CLASS_INDEX: probabilities.argmax(axis=1).astype(np.int64),
    }
    if ood_scores is not None:
        values[OOD_SCORE] = ood_scores.astype(np.float32)
    if in_distribution is not None:
        values[IN_DISTRIBUTION] = in_distribution.astype(np.bool_)
    return values


def offered(values: dict[str, np.ndarray], name: str, version: int) -> np.ndarray:
    """The output asked for, or a 400 saying that this version does not offer it."""
    if name not in values:
        raise TensorError(
            f"version {version} has no novelty score, so no {name!r} output; outputs: {', '.join(values)}"
        )
    return values[name]


def little_endian_bytes(tensor: np.ndarray) -> bytes:
    """A tensor's raw bytes as the binary extension and gRPC's raw contents carry them."""
    return tensor.astype(tensor.dtype.newbyteorder("<")).tobytes()
