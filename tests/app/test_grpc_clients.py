"""gRPC with the real clients against `python -m app` (uvicorn, its event loop, the committed store):
Triton's and KServe's clients infer, read metadata and readiness and get the REST answers; a
SIGTERM during a burst of calls still answers every call in flight.

Triton's client reads metadata through its client object; KServe's has no metadata call, so the
test reads it through the generated stub KServe's package ships."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from PIL import Image

from app.protocols import inference_pb2 as pb
from tests.utils.data import COMMITTED_MODELS, REPO, SAMPLES
from tests.utils.servers import ServerProcess, free_port, server_process
from training.core import artifacts

pytestmark = pytest.mark.slow

PIXELS = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(SAMPLES.glob("*.png"))[:8]])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    port = free_port()
    log = tmp_path_factory.mktemp("grpc") / "server.log"
    with server_process(COMMITTED_MODELS, log, GRPC_PORT=str(port)) as running:
        yield running, f"127.0.0.1:{port}"


def rest_probabilities(base_url: str, pixels: np.ndarray) -> np.ndarray:
    body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": list(pixels.shape), "data": pixels.tolist()}]}
    answer = httpx.post(f"{base_url}/v2/models/whitened_convnet/infer", json=body, timeout=60).json()
    return np.array(answer["outputs"][0]["data"], np.float32).reshape(len(pixels), 10)


def run_client(name: str, address: str, tmp_path: Path) -> dict[str, object]:
    pixels_path = tmp_path / "pixels.npy"
    np.save(pixels_path, PIXELS)
    script = REPO / "tests" / "utils" / "grpc_clients.py"
    done = subprocess.run(
        [sys.executable, str(script), name, address, str(pixels_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("client", ["triton", "kserve"])
def test_the_real_client_infers_and_reads_readiness(
    client: str, server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    running, address = server
    seen = run_client(client, address, tmp_path)
    assert seen["live"] is True and seen["ready"] is True and seen["model_ready"] is True
    probabilities = np.array(seen["probabilities"], np.float32)
    assert np.abs(probabilities - rest_probabilities(running.url, PIXELS)).max() == 0
    assert seen["class_index"] == probabilities.argmax(axis=1).tolist()
    assert seen["version"] == str(artifacts.list_versions(COMMITTED_MODELS, "whitened_convnet")[-1])  # The default.
    assert seen["metadata_inputs"] == ["images", "image_files"]
    if client == "triton":
        assert seen["unknown_model"] == "StatusCode.NOT_FOUND"
    else:
        assert seen["server"] == "cifar10-service"


def test_sigterm_during_a_burst_answers_every_call_in_flight(tmp_path: Path) -> None:
    port = free_port()
    request = pb.ModelInferRequest(
        model_name="whitened_convnet",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="images", datatype="UINT8", shape=PIXELS.shape)],
        raw_input_contents=[PIXELS.tobytes()],
    )
    with server_process(COMMITTED_MODELS, tmp_path / "server.log", GRPC_PORT=str(port)) as running:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            call(request, timeout=30)  # Connected and warm.
            in_flight: list[Future[pb.ModelInferResponse]] = [call.future(request, timeout=60) for _ in range(24)]
            time.sleep(0.05)
            pending = sum(not future.done() for future in in_flight)
            running.process.send_signal(signal.SIGTERM)
            answers = [future.result() for future in in_flight]  # Raises for any call that was dropped.
        # uvicorn re-raises the signal once its graceful shutdown is done.
        assert running.process.wait(timeout=60) in (0, -signal.SIGTERM)
    every_output = ["probabilities", "class_index", "ood_score", "in_distribution"]  # The default has a score.
    assert pending > 0 and all([tensor.name for tensor in answer.outputs] == every_output for answer in answers)
    assert all(len(answer.raw_output_contents) == len(every_output) for answer in answers)
    log = running.log_path.read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log, log[-3000:]
