"""The image, a training job in a container and the compose `api` service, against a real engine.

Runs last (`pytest -m container`). It needs a Docker engine: `.ci/run` starts one with
../shared/ci/container-engine.sh. Without an engine the module is skipped, with the
reason, unless REQUIRE_CONTAINER=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils.data import COMMITTED_MODELS, REPO, SHARED_ARCHIVE
from tests.utils.servers import free_port, wait_until_ready
from training.core import artifacts

pytestmark = pytest.mark.container
PROJECT = "cifar10test"
TIMINGS: dict[str, float] = {}


def _engine_available() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        return (
            f"no Docker engine answers ({probe.stderr.strip()[:200]}); start one with ../shared/ci/container-engine.sh"
        )
    if not SHARED_ARCHIVE.is_file():
        return f"the dataset is not at {SHARED_ARCHIVE}"
    return None


@pytest.fixture(scope="module")
def compose_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    reason = _engine_available()
    if reason:
        if os.environ.get("REQUIRE_CONTAINER") == "1":
            pytest.fail(f"container tests are required here but cannot run: {reason}")
        pytest.skip(reason)
    store = tmp_path_factory.mktemp("container-models")
    shutil.copytree(COMMITTED_MODELS / "model_1", store / "model_1")
    subprocess.run(["chown", "-R", "1000:1000", str(store)], check=False)
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "MODELS_HOST_DIR": str(store),
        "CIFAR10_DATA": str(SHARED_ARCHIVE),
        "API_PORT": str(free_port()),
        "GRPC_HOST_PORT": str(free_port()),
    }
    if os.getuid() != 0:  # Without root the store cannot be handed to uid 1000; run as ourselves.
        env |= {"MODELS_UID": str(os.getuid()), "MODELS_GID": str(os.getgid())}
    try:
        yield env
    finally:
        _compose(env, "down", "--volumes", "--remove-orphans", check=False)
        print("\ncontainer step timings (s):", {k: round(v, 1) for k, v in TIMINGS.items()})


def _compose(env: dict[str, str], *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", "compose", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker compose {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def _timed(name: str, env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    start = time.monotonic()
    result = _compose(env, *args, timeout=timeout)
    TIMINGS[name] = time.monotonic() - start
    return result


def _image_megabytes(image: str) -> float:
    inspected = subprocess.run(
        ["docker", "image", "inspect", image, "--format", "{{.Size}}"], capture_output=True, text=True, check=True
    )
    return int(inspected.stdout.strip()) / 1e6


def test_train_in_a_container_then_serve_the_new_version(compose_env: dict[str, str]) -> None:
    _timed("build", compose_env, "build", "api", "train")
    serve, train = _image_megabytes("cifar10-service:serve"), _image_megabytes("cifar10-service:train")
    print(f"\nimage sizes: serve {serve:.0f} MB, train {train:.0f} MB")
    assert serve <= 500, f"the serving image is {serve:.0f} MB"
    no_tensorflow = subprocess.run(
        ["docker", "run", "--rm", "cifar10-service:serve", "python", "-c", "import tensorflow"],
        capture_output=True,
        text=True,
    )
    assert no_tensorflow.returncode != 0 and "No module named 'tensorflow'" in no_tensorflow.stderr

    start = time.monotonic()
    _compose(compose_env, "up", "-d", "api")
    base = f"http://127.0.0.1:{compose_env['API_PORT']}"
    wait_until_ready(base, timeout=240)
    TIMINGS["api start to ready"] = time.monotonic() - start
    _grpc_answers_as_rest(f"127.0.0.1:{compose_env['GRPC_HOST_PORT']}", base)

    store = Path(compose_env["MODELS_HOST_DIR"])
    new = artifacts.list_versions(store, "model_1")[-1] + 1
    served_before = httpx.get(f"{base}/models", timeout=10).json()["models"][0]["served_version"]
    trained = _timed("train", compose_env, "run", "--rm", "train", "model_1", "--epochs", "1", "--limit", "2000")
    assert f"published /srv/models/model_1/{new}" in trained.stdout, trained.stdout[-2000:]
    assert (store / "model_1" / str(new) / "model.keras").is_file()

    # The running api loads the new version without a restart, but the quick trial run (one epoch on
    # 2,000 images) scores far below the served version, so the promotion gate holds it back.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        model = httpx.get(f"{base}/models", timeout=10).json()["models"][0]
        if any(v["version"] == new and v["held_back"] for v in model["versions"]):
            break
        time.sleep(1)
    assert model["served_version"] == served_before, model
    assert "held back" in next(v for v in model["versions"] if v["version"] == new)["held_back"]
    png = (REPO / "app" / "static" / "samples" / "test_00000_cat.png").read_bytes()
    answer = httpx.post(f"{base}/predict", files={"file": ("cat.png", png)}, timeout=30)
    assert answer.status_code == 200
    assert (answer.json()["model"], answer.json()["version"]) == ("model_1", served_before)
    explicit = httpx.post(f"{base}/predict", files={"file": ("cat.png", png)}, params={"version": new}, timeout=30)
    assert explicit.json()["version"] == new
    # The prediction log on the container's volume: the answers are there, and feedback lands.
    feedback = {"prediction_id": explicit.json()["prediction_id"], "label": "cat"}
    assert httpx.post(f"{base}/feedback", json=feedback, timeout=30).status_code == 200
    report = httpx.get(f"{base}/monitoring", params={"model": "model_1"}, timeout=30).json()
    assert sum(version["predictions"] for version in report["versions"]) >= 2

    # Pinning it with the CLI (in the train container, on the shared store) promotes it, without a restart.
    pinned = _compose(
        compose_env,
        "run",
        "--rm",
        "--entrypoint",
        "python",
        "train",
        "-m",
        "training",
        "serve-policy",
        "model_1",
        "--models-dir",
        "/srv/models",
        "--pin",
        str(new),
    )
    assert f'"default_version": {new}' in pinned.stdout
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and httpx.get(f"{base}/models", timeout=10).json()["models"][0]["served_version"] != new
    ):
        time.sleep(1)
    answer = httpx.post(f"{base}/predict", files={"file": ("cat.png", png)}, timeout=30)
    assert answer.json()["version"] == new

    health = subprocess.run(
        ["docker", "inspect", f"{PROJECT}-api-1", "--format", "{{.State.Health.Status}}"],
        capture_output=True,
        text=True,
    )
    print("api container health:", health.stdout.strip())


def _grpc_answers_as_rest(address: str, base: str) -> None:
    """The published gRPC port: health SERVING, and ModelInfer gives REST /v2's probabilities."""
    import grpc
    import numpy as np
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from app.protocols import inference_pb2 as pb

    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    tensor = pb.ModelInferRequest.InferInputTensor(name="images", datatype="UINT8", shape=pixels.shape)
    request = pb.ModelInferRequest(model_name="model_1", inputs=[tensor], raw_input_contents=[pixels.tobytes()])
    with grpc.insecure_channel(address) as channel:
        deadline = time.monotonic() + 30  # The health service follows readiness within its 0.5 s poll.
        while (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30).status
            != health_pb2.HealthCheckResponse.SERVING
        ):
            assert time.monotonic() < deadline, "the gRPC health service never said SERVING"
            time.sleep(0.2)
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        answer = infer(request, timeout=30)
    body = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [2, 32, 32, 3], "data": pixels.tolist()}]}
    rest = httpx.post(f"{base}/v2/models/model_1/infer", json=body, timeout=30).json()
    probabilities = np.frombuffer(answer.raw_output_contents[0], "<f4")
    assert np.abs(probabilities - np.array(rest["outputs"][0]["data"], np.float32)).max() == 0


def test_the_train_cluster_profile_trains_on_two_containers(compose_env: dict[str, str]) -> None:
    """Chief and worker containers, TF_CONFIG naming each other by service name; one version, by the chief."""
    store = Path(compose_env["MODELS_HOST_DIR"])
    new = artifacts.list_versions(store, "model_1")[-1] + 1
    env = compose_env | {"CLUSTER_TRAIN_ARGS": "model_1 --epochs 1 --limit 2000"}
    # Not --abort-on-container-exit: the worker is done once training is, while the chief still evaluates
    # and publishes; aborting then killed the chief before it wrote the version.
    result = _timed(
        "train-cluster", env, "--profile", "train-cluster", "up", "--abort-on-container-failure",
        "train-chief", "train-worker-1",
    )  # fmt: skip
    members = ("train-chief", "train-worker-1")
    exits = _compose(env, "--profile", "train-cluster", "ps", "-a", "--format", "{{.Service}} {{.ExitCode}}", *members)
    assert sorted(exits.stdout.split()) == sorted(["train-chief", "0", "train-worker-1", "0"]), exits.stdout
    assert "this process is the chief" in result.stdout and "this worker publishes nothing" in result.stdout
    assert f"published /srv/models/model_1/{new}" in result.stdout, result.stdout[-3000:]
    assert artifacts.list_versions(store, "model_1")[-1] == new
    artifacts.load_artifact(store / "model_1" / str(new))  # Complete.
