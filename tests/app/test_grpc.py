"""The Open Inference Protocol over gRPC: the same answers as REST /v2, its errors as status codes,
health that follows readiness, and no UNKNOWN or INTERNAL for any malformed message.

The app runs in process over the committed store with gRPC on a free port; calls go
through a plain grpcio channel with this project's messages (the real Triton and KServe
clients are in tests/app/test_grpc_clients.py).
"""

from __future__ import annotations

import random
import shutil
import struct
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from app.config import Settings
from app.main import create_app
from app.protocols import inference_pb2 as pb
from tests.utils.data import COMMITTED_MODELS, SAMPLES
from tests.utils.images import png_declaring
from tests.utils.servers import free_port, running_client

SAMPLE_FILES = sorted(SAMPLES.glob("*.png"))
SERVICE = "/inference.GRPCInferenceService/"
Tensor = pb.ModelInferRequest.InferInputTensor


def rpc(channel: grpc.Channel, method: str, request: Message, answer: type[Message]) -> Message:
    call = channel.unary_unary(
        SERVICE + method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=answer.FromString
    )
    return call(request, timeout=30)


def infer(channel: grpc.Channel, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    answer = rpc(channel, "ModelInfer", request, pb.ModelInferResponse)
    assert isinstance(answer, pb.ModelInferResponse)
    return answer


def pixels_request(model: str, pixels: np.ndarray, **fields: object) -> pb.ModelInferRequest:
    tensor = Tensor(name="images", datatype="UINT8", shape=pixels.shape)
    return pb.ModelInferRequest(model_name=model, inputs=[tensor], raw_input_contents=[pixels.tobytes()], **fields)


def files_raw(files: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(data)) + data for data in files)


def outputs(answer: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    dtypes = {"FP32": "<f4", "INT64": "<i8", "BOOL": "?"}
    return {
        tensor.name: np.frombuffer(raw, dtypes[tensor.datatype]).reshape(tuple(tensor.shape))
        for tensor, raw in zip(answer.outputs, answer.raw_output_contents, strict=True)
    }


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TestClient, grpc.Channel]]:
    port = free_port()
    with (
        running_client(COMMITTED_MODELS, grpc_port=port) as client,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield client, channel


@pytest.fixture(scope="module")
def channel(served: tuple[TestClient, grpc.Channel]) -> grpc.Channel:
    return served[1]


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in SAMPLE_FILES])


def status_of(channel: grpc.Channel, request: pb.ModelInferRequest) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        infer(channel, request)
    return caught.value.code(), caught.value.details()


def test_the_server_is_live_ready_and_describes_itself(channel: grpc.Channel) -> None:
    assert rpc(channel, "ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse).live
    assert rpc(channel, "ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse).ready
    metadata = rpc(channel, "ServerMetadata", pb.ServerMetadataRequest(), pb.ServerMetadataResponse)
    assert metadata.name == "cifar10-service" and list(metadata.extensions) == ["binary_tensor_data"]


def test_model_metadata_is_what_rest_answers(served: tuple[TestClient, grpc.Channel]) -> None:
    client, channel = served
    answer = rpc(channel, "ModelMetadata", pb.ModelMetadataRequest(name="model_1"), pb.ModelMetadataResponse)
    rest = client.get("/v2/models/model_1").json()
    assert answer.name == rest["name"] and list(answer.versions) == rest["versions"]
    assert answer.platform == rest["platform"]
    described = [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in answer.inputs]
    assert described == rest["inputs"]
    assert [t.name for t in answer.outputs] == [t["name"] for t in rest["outputs"]]


def test_model_ready_for_the_default_and_a_loaded_version(channel: grpc.Channel) -> None:
    ready = rpc(channel, "ModelReady", pb.ModelReadyRequest(name="model_1"), pb.ModelReadyResponse)
    assert ready.ready
    assert rpc(channel, "ModelReady", pb.ModelReadyRequest(name="model_1", version="2"), pb.ModelReadyResponse).ready


def test_answers_equal_the_rest_v2_path_on_the_committed_samples(
    served: tuple[TestClient, grpc.Channel], pixels: np.ndarray
) -> None:
    client, channel = served
    answer = outputs(infer(channel, pixels_request("whitened_convnet", pixels)))
    header = (
        b'{"inputs":[{"name":"images","datatype":"UINT8","shape":[%d,32,32,3],"parameters":{"binary_data_size":%d}}],'
    )
    header %= (len(pixels), pixels.nbytes)
    header += b'"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}'
    rest = client.post(
        "/v2/models/whitened_convnet/infer",
        content=header + pixels.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    length = int(rest.headers["inference-header-content-length"])
    expected = np.frombuffer(rest.content[length:], "<f4").reshape(len(pixels), 10)
    assert len(pixels) == 40
    assert np.abs(answer["probabilities"] - expected).max() == 0
    assert (answer["class_index"] == expected.argmax(axis=1)).all()


def test_files_and_typed_contents_answer_as_raw_pixels(channel: grpc.Channel, pixels: np.ndarray) -> None:
    files = [path.read_bytes() for path in SAMPLE_FILES[:4]]
    reference = outputs(infer(channel, pixels_request("model_1", pixels[:4])))["probabilities"]
    raw_files = pb.ModelInferRequest(
        model_name="model_1",
        inputs=[Tensor(name="image_files", datatype="BYTES", shape=[4])],
        raw_input_contents=[files_raw(files)],
    )
    typed_files = pb.ModelInferRequest(
        model_name="model_1",
        inputs=[Tensor(name="image_files", datatype="BYTES", shape=[4], contents={"bytes_contents": files})],
    )
    typed_pixels = pb.ModelInferRequest(
        model_name="model_1",
        inputs=[
            Tensor(
                name="images",
                datatype="UINT8",
                shape=[4, 32, 32, 3],
                contents={"uint_contents": pixels[:4].ravel().tolist()},
            )
        ],
    )
    for request in (raw_files, typed_files, typed_pixels):
        np.testing.assert_array_equal(outputs(infer(channel, request))["probabilities"], reference)


def test_the_requested_outputs_the_id_and_the_version_come_back(channel: grpc.Channel, pixels: np.ndarray) -> None:
    request = pixels_request("model_1", pixels[:2], model_version="2", id="req-7")
    request.outputs.add(name="class_index")
    answer = infer(channel, request)
    assert (answer.model_name, answer.model_version, answer.id) == ("model_1", "2", "req-7")
    ids = answer.parameters["Prediction-Id"].string_param.split(",")  # Each image's id in the prediction log.
    assert len(ids) == 2 and len(set(ids)) == 2
    assert [tensor.name for tensor in answer.outputs] == ["class_index"]
    assert outputs(answer)["class_index"].shape == (2,)


def test_a_bad_tensor_is_invalid_argument_with_the_message_rest_gives(
    served: tuple[TestClient, grpc.Channel], pixels: np.ndarray
) -> None:
    client, channel = served
    request = pixels_request("model_1", pixels[:1])
    request.inputs[0].datatype = "FP32"
    code, details = status_of(channel, request)
    body = {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 32, 32, 3], "data": [0] * 3072}]}
    rest = client.post("/v2/models/model_1/infer", json=body)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and rest.status_code == 400
    assert details == rest.json()["error"] == "input 'images' must be UINT8, got 'FP32'"


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"model_name": "no_such_model"}, grpc.StatusCode.NOT_FOUND, "not found"),
        ({"model_version": "99"}, grpc.StatusCode.NOT_FOUND, "no version 99"),
        ({"model_version": "v2"}, grpc.StatusCode.NOT_FOUND, "positive integers"),
        ({"shape": [1, 32, 32]}, grpc.StatusCode.INVALID_ARGUMENT, "must have shape"),
        ({"shape": [2, 32, 32, 3]}, grpc.StatusCode.INVALID_ARGUMENT, "takes 6144 bytes"),
        ({"raw_input_contents": []}, grpc.StatusCode.INVALID_ARGUMENT, "needs 3072 integers"),
        ({"output": "logits"}, grpc.StatusCode.INVALID_ARGUMENT, "unknown output 'logits'"),
        ({"files": [b"not an image"]}, grpc.StatusCode.INVALID_ARGUMENT, "not a supported image"),
        ({"files": [png_declaring(100_000, 100_000)]}, grpc.StatusCode.RESOURCE_EXHAUSTED, "pixels"),
    ],
)
def test_each_error_has_its_status_code(
    channel: grpc.Channel, pixels: np.ndarray, change: dict[str, object], code: grpc.StatusCode, says: str
) -> None:
    request = pixels_request("model_1", pixels[:1])
    if "files" in change:
        files = change.pop("files")
        assert isinstance(files, list)
        request = pb.ModelInferRequest(
            model_name="model_1",
            inputs=[Tensor(name="image_files", datatype="BYTES", shape=[len(files)])],
            raw_input_contents=[files_raw(files)],
        )
    if "shape" in change:
        request.inputs[0].ClearField("shape")
        request.inputs[0].shape.extend(change.pop("shape"))  # type: ignore[arg-type]
    if "output" in change:
        request.outputs.add(name=str(change.pop("output")))
    for field, value in change.items():
        request.ClearField(field)
        if value:
            setattr(request, field, value)
    answer_code, details = status_of(channel, request)
    assert answer_code is code and says in details


def test_a_message_over_the_size_limit_is_resource_exhausted(tmp_path: Path) -> None:
    port = free_port()
    request = pixels_request("model_1", np.zeros((40, 32, 32, 3), np.uint8))  # 122,880 bytes of pixels.
    with (
        running_client(COMMITTED_MODELS, grpc_port=port, max_upload_bytes=100_000),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        code, _ = status_of(channel, request)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_bytes_that_are_no_message_are_invalid_argument(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(SERVICE + "ModelInfer")(b"\x0a\xff\xff\xff\x0f", timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ModelInferRequest" in caught.value.details()


def test_a_version_that_failed_to_load_is_unavailable(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    broken = store / "model_1" / "2"
    shutil.copytree(store / "model_1" / "1", broken)
    for weights in ("model.keras", "openvino", "saved_model.pb", "variables", "int8"):
        shutil.rmtree(broken / weights, ignore_errors=True)
        (broken / weights).unlink(missing_ok=True)
    port = free_port()
    request = pixels_request("model_1", np.zeros((1, 32, 32, 3), np.uint8), model_version="2")
    with running_client(store, grpc_port=port), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        code, details = status_of(channel, request)  # Ready means the scan is done: version 2 has failed.
    assert code is grpc.StatusCode.UNAVAILABLE and "version 2" in details


def test_the_health_service_follows_readiness(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    port = free_port()
    app = create_app(Settings(models_dir=store, grpc_port=port, poll_interval_seconds=0.2))
    with TestClient(app), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def status() -> int:
            return health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status

        wait_for(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING)
        assert not rpc(channel, "ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse).ready
        shutil.copytree(tiny_store / "model_1", store / "model_1")
        wait_for(lambda: status() == health_pb2.HealthCheckResponse.SERVING)
        named = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        assert health.Check(named, timeout=10).status == health_pb2.HealthCheckResponse.SERVING


def wait_for(condition: object, timeout: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def mutated(seed: int, originals: list[bytes], count: int) -> Iterator[bytes]:
    """Valid messages with bytes flipped, cut, inserted or repeated, and plain noise."""
    rng = random.Random(seed)
    for index in range(count):
        data = bytearray(rng.choice(originals))
        kind = index % 5
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            del data[rng.randrange(len(data)) :]
        elif kind == 2:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 3:
            start = rng.randrange(len(data))
            data[start:start] = data[start : start + rng.randint(1, 64)]
        else:
            data = bytearray(rng.randbytes(rng.randint(0, 200)))
        yield bytes(data)


def test_a_thousand_mutated_messages_get_no_unknown_or_internal(channel: grpc.Channel, pixels: np.ndarray) -> None:
    small = pixels_request("model_1", pixels[:1], model_version="2", id="x")
    small.outputs.add(name="probabilities")
    files = pb.ModelInferRequest(
        model_name="model_1",
        inputs=[Tensor(name="image_files", datatype="BYTES", shape=[1], contents={"bytes_contents": [b"\x89PNG"]})],
    )
    originals = [small.SerializeToString(), files.SerializeToString()]
    codes: Counter[grpc.StatusCode] = Counter()
    call = channel.unary_unary(SERVICE + "ModelInfer")
    for data in mutated(seed=20261201, originals=originals, count=1000):
        try:
            call(data, timeout=30)
            codes[grpc.StatusCode.OK] += 1
        except grpc.RpcError as error:
            codes[error.code()] += 1
    assert sum(codes.values()) == 1000
    assert codes[grpc.StatusCode.UNKNOWN] == 0 and codes[grpc.StatusCode.INTERNAL] == 0, codes
    # The mutations reach past parsing: some still infer, some are refused by the data plane.
    assert codes[grpc.StatusCode.OK] > 0 and codes[grpc.StatusCode.NOT_FOUND] > 0, codes
