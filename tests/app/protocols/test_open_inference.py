"""The Open Inference Protocol (v2), driven by Triton's own HTTP client and by raw requests."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.utils.data import SAMPLES
from tests.utils.servers import threaded_server

SAMPLE_FILES = sorted(SAMPLES.glob("*.png"))[:6]


@pytest.fixture(scope="module")
def server(tiny_store: Path) -> Iterator[str]:
    with threaded_server(tiny_store) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(server: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.removeprefix("http://"))


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return [path.read_bytes() for path in SAMPLE_FILES]


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.stack([np.asarray(Image.open(path)) for path in SAMPLE_FILES])


@pytest.fixture(scope="module")
def expected(server: str, pngs: list[bytes]) -> np.ndarray:
    """What /predict answers for the same images: the reference for every protocol."""
    rows = []
    for png in pngs:
        body = httpx.post(f"{server}/predict", files={"file": ("x.png", png)}, timeout=30).json()
        rows.append(list(body["probabilities"].values()))
    return np.array(rows, np.float32)


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("model_1")
    assert client.is_model_ready("model_1", "1")
    assert not client.is_model_ready("model_1", "9")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


def test_model_metadata_describes_inputs_and_outputs(client: triton.InferenceServerClient) -> None:
    metadata = client.get_model_metadata("model_1")
    assert metadata["name"] == "model_1" and metadata["versions"] == ["1"]
    inputs = {tensor["name"]: (tensor["datatype"], tensor["shape"]) for tensor in metadata["inputs"]}
    assert inputs == {"images": ("UINT8", [-1, 32, 32, 3]), "image_files": ("BYTES", [-1])}
    outputs = {tensor["name"]: (tensor["datatype"], tensor["shape"]) for tensor in metadata["outputs"]}
    assert outputs == {"probabilities": ("FP32", [-1, 10]), "class_index": ("INT64", [-1])}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_uint8_pixels_give_the_predict_endpoints_answers(
    client: triton.InferenceServerClient, pixels: np.ndarray, expected: np.ndarray, binary: bool
) -> None:
    tensor = triton.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("probabilities", "class_index")]
    result = client.infer("model_1", [tensor], outputs=outputs)
    assert result.as_numpy("probabilities") == pytest.approx(expected, abs=1e-5)
    assert result.as_numpy("class_index").tolist() == expected.argmax(axis=1).tolist()
    assert result.get_response()["model_version"] == "1"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bytes_image_files_give_the_predict_endpoints_answers(
    client: triton.InferenceServerClient, pngs: list[bytes], expected: np.ndarray, binary: bool
) -> None:
    # Binary BYTES carry the files as they are; JSON can only carry strings, so files go base64.
    files = pngs if binary else [base64.b64encode(png) for png in pngs]
    tensor = triton.InferInput("image_files", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=np.object_), binary_data=binary)
    result = client.infer("model_1", [tensor], model_version="1")
    assert result.as_numpy("probabilities") == pytest.approx(expected, abs=1e-5)


def test_raw_binary_body_for_the_single_input(server: str, pixels: np.ndarray, expected: np.ndarray) -> None:
    response = httpx.post(
        f"{server}/v2/models/model_1/infer",
        content=pixels.tobytes(),
        headers={"Inference-Header-Content-Length": "0"},
        timeout=30,
    )
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    assert header["outputs"][0]["name"] == "probabilities"
    size = header["outputs"][0]["parameters"]["binary_data_size"]
    probabilities = np.frombuffer(response.content[length : length + size], "<f4").reshape(-1, 10)
    assert probabilities == pytest.approx(expected, abs=1e-5)


def _infer(server: str, body: bytes, header_length: int | None = None, model: str = "model_1") -> httpx.Response:
    headers = {} if header_length is None else {"Inference-Header-Content-Length": str(header_length)}
    return httpx.post(f"{server}/v2/models/{model}/infer", content=body, headers=headers, timeout=30)


def _json_request(name: str, datatype: str, shape: list[int], data: object) -> bytes:
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}).encode()


BAD_REQUESTS = {
    "not json": (b"{nope", None, 400),
    "no inputs": (b'{"inputs": []}', None, 400),
    "unknown input": (_json_request("pixels", "UINT8", [1, 32, 32, 3], [0] * 3072), None, 400),
    "wrong datatype": (_json_request("images", "FP32", [1, 32, 32, 3], [0.0] * 3072), None, 400),
    "wrong shape": (_json_request("images", "UINT8", [1, 28, 28, 1], [0] * 784), None, 400),
    "too few values": (_json_request("images", "UINT8", [1, 32, 32, 3], [0] * 100), None, 400),
    "values over 255": (_json_request("images", "UINT8", [1, 32, 32, 3], [300] * 3072), None, 400),
    "ragged nesting": (_json_request("images", "UINT8", [1, 32, 32, 3], [[1, 2], [3]]), None, 400),
    "zero images": (_json_request("images", "UINT8", [0, 32, 32, 3], []), None, 400),
    "not base64": (_json_request("image_files", "BYTES", [1], ["%%%"]), None, 400),
    "not an image": (_json_request("image_files", "BYTES", [1], [base64.b64encode(b"text").decode()]), None, 415),
    "raw body of odd size": (b"\0" * 1000, 0, 400),
    "header longer than body": (b'{"inputs": []}', 500, 400),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_tensors_get_a_4xx_with_an_error_body(server: str, case: str) -> None:
    body, header_length, status = BAD_REQUESTS[case]
    response = _infer(server, body, header_length)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}


def _binary_request(size_declared: int, payload: bytes) -> tuple[bytes, int]:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "datatype": "UINT8",
                    "shape": [1, 32, 32, 3],
                    "parameters": {"binary_data_size": size_declared},
                }
            ]
        }
    ).encode()
    return header + payload, len(header)


def test_binary_size_mismatch_and_truncated_bodies_are_400(server: str) -> None:
    for declared, payload in ((3072, b"\0" * 3000), (3000, b"\0" * 3000), (3072, b"\0" * 4000)):
        body, length = _binary_request(declared, payload)
        response = _infer(server, body, length)
        assert response.status_code == 400 and "error" in response.json(), (declared, len(payload))


def test_truncated_bytes_element_is_400(server: str) -> None:
    element = struct.pack("<I", 500) + b"\x89PNG"  # Declares 500 bytes, carries 4.
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image_files",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(element)},
                }
            ]
        }
    ).encode()
    response = _infer(server, header + element, len(header))
    assert response.status_code == 400 and "BYTES element 0" in response.json()["error"]


def test_a_40_mb_tensor_is_refused_with_413(server: str) -> None:
    body = b"\0" * (40 * 1024 * 1024)
    response = _infer(server, body, 0)
    assert response.status_code == 413 and "error" in response.json()


def test_unknown_model_and_version_are_404(server: str, client: triton.InferenceServerClient) -> None:
    assert _infer(server, b"{}", None, model="nope").status_code == 404
    response = httpx.get(f"{server}/v2/models/model_1/versions/7", timeout=10)
    assert response.status_code == 404 and "no version 7" in response.json()["error"]
    with pytest.raises(InferenceServerException, match="not found"):
        client.get_model_metadata("nope")


def test_the_kserve_v2_rest_client(server: str, pixels: np.ndarray, expected: np.ndarray) -> None:
    """KServe's own InferenceRESTClient (protocol v2), unchanged, binary and JSON tensors."""
    import asyncio

    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def scenario() -> list[np.ndarray]:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        assert await client.is_server_live(server)
        assert await client.is_server_ready(server)
        assert await client.is_model_ready(server, "model_1")
        answers = []
        for binary in (False, True):
            tensor = InferInput("images", list(pixels.shape), "UINT8")
            tensor.set_data_from_numpy(pixels, binary_data=binary)
            response = await client.infer(server, InferRequest("model_1", [tensor]), model_name="model_1")
            answers.append(next(out for out in response.outputs if out.name == "probabilities").as_numpy())
        return answers

    for probabilities in asyncio.run(scenario()):
        assert probabilities.reshape(-1, 10) == pytest.approx(expected, abs=1e-5)
