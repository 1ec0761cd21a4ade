"""The real gRPC clients against a running service, one per process, printing what they saw as JSON.

    python tests/utils/grpc_clients.py triton|kserve HOST:PORT PIXELS.npy

A process of its own because Triton's and KServe's client packages each register the
protocol's messages under the same names in protobuf's process-wide pool, which refuses
the second: they cannot both be imported into one process (the test process has KServe).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np


def triton(address: str, pixels: np.ndarray) -> dict[str, Any]:
    import tritonclient.grpc as client_module
    from tritonclient.utils import InferenceServerException

    client = client_module.InferenceServerClient(address)
    tensor = client_module.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    result = client.infer("whitened_convnet", [tensor])
    metadata = client.get_model_metadata("model_1", as_json=True)
    try:
        client.infer("no_such_model", [tensor])
        error = None
    except InferenceServerException as failure:
        error = failure.status()
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready("model_1"),
        "metadata_inputs": [item["name"] for item in metadata["inputs"]],
        "probabilities": result.as_numpy("probabilities").tolist(),
        "class_index": result.as_numpy("class_index").tolist(),
        "version": result.get_response().model_version,
        "unknown_model": error,
    }


def kserve(address: str, pixels: np.ndarray) -> dict[str, Any]:
    import grpc
    from kserve import InferenceGRPCClient, InferInput, InferRequest
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as messages
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    # KServe's client object has no metadata call; its package's generated stub does.
    with grpc.insecure_channel(address) as channel:
        stub = GRPCInferenceServiceStub(channel)
        metadata = stub.ModelMetadata(messages.ModelMetadataRequest(name="model_1"), timeout=30)
        server = stub.ServerMetadata(messages.ServerMetadataRequest(), timeout=30)

    async def ask() -> dict[str, Any]:
        client = InferenceGRPCClient(address)
        tensor = InferInput("images", list(pixels.shape), "UINT8")
        tensor.set_data_from_numpy(pixels, binary_data=True)
        answer = await client.infer(InferRequest(model_name="whitened_convnet", infer_inputs=[tensor]))
        outputs = {output.name: output.as_numpy() for output in answer.outputs}
        return {
            "live": await client.is_server_live(),
            "ready": await client.is_server_ready(),
            "model_ready": await client.is_model_ready("model_1"),
            "probabilities": outputs["probabilities"].tolist(),
            "class_index": outputs["class_index"].tolist(),
            "version": answer.model_version,
            "metadata_inputs": [tensor.name for tensor in metadata.inputs],
            "server": server.name,
        }

    return asyncio.run(ask())


if __name__ == "__main__":
    name, address, pixels_path = sys.argv[1:4]
    clients = {"triton": triton, "kserve": kserve}
    print(json.dumps(clients[name](address, np.load(pixels_path))))
