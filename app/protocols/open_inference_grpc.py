"""The Open Inference Protocol v2 over gRPC, without gRPC: `ModelInferRequest` in, images out;
output tensors in, `ModelInferResponse` out.

The tensors are the REST protocol's (`app.protocols.open_inference`), checked by the same
functions with the same messages: UINT8 pixels [N, 32, 32, 3] or BYTES image files [N], in
`raw_input_contents` (what tritonclient and KServe's client send) or typed `contents`.
Outputs go back as raw little-endian bytes in `raw_output_contents`, as Triton answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.protocols import inference_pb2 as pb
from app.protocols import open_inference as oip
from app.protocols.open_inference import TensorError


def images(request: pb.ModelInferRequest, max_batch: int) -> np.ndarray | list[bytes]:
    """The request's one input: pixels (uint8 N x 32 x 32 x 3) or encoded image files."""
    if len(request.inputs) != 1:
        raise TensorError(f"send exactly one input: {oip.PIXELS!r} (UINT8 pixels) or {oip.FILES!r} (BYTES image files)")
    tensor = request.inputs[0]
    shape = list(tensor.shape)
    oip.check_input(tensor.name, tensor.datatype, shape, max_batch)
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1 or tensor.HasField("contents"):
            raise TensorError("raw_input_contents must hold one entry, for the one input, which then has no contents")
        raw = request.raw_input_contents[0]
        return oip.pixels_from_bytes(raw, shape) if tensor.name == oip.PIXELS else oip.files_from_bytes(raw, shape[0])
    if tensor.name == oip.PIXELS:
        return oip.pixels_from_values(np.asarray(tensor.contents.uint_contents, dtype=np.int64), shape)
    files = list(tensor.contents.bytes_contents)
    if len(files) != shape[0]:
        raise TensorError(f"BYTES {shape} needs {shape[0]} elements in bytes_contents, got {len(files)}")
    return files


def requested_outputs(request: pb.ModelInferRequest) -> list[str]:
    """The outputs asked for, in order; none asked for (an empty list) means all the version offers."""
    names = [output.name for output in request.outputs]
    for name in names:
        if name not in oip.OUTPUTS:
            raise TensorError(f"unknown output {name!r}; outputs: {', '.join(oip.OUTPUTS)}")
    return names


def response(
    request: pb.ModelInferRequest, values: dict[str, np.ndarray], model: str, version: int
) -> pb.ModelInferResponse:
    """`values`: `open_inference.output_tensors`, every output the version offers."""
    answer = pb.ModelInferResponse(model_name=model, model_version=str(version), id=request.id)
    for name in requested_outputs(request) or list(values):
        tensor = oip.offered(values, name, version)
        answer.outputs.add(name=name, datatype=oip.OUTPUT_DATATYPES[name], shape=tensor.shape)
        answer.raw_output_contents.append(oip.little_endian_bytes(tensor))
    return answer


def model_metadata(described: dict[str, Any]) -> pb.ModelMetadataResponse:
    """The data plane's model metadata (as REST answers it) as the gRPC message."""
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=described["name"],
        versions=described["versions"],
        platform=described["platform"],
        inputs=[tensor(**item) for item in described["inputs"]],
        outputs=[tensor(**item) for item in described["outputs"]],
    )
