"""A real uvicorn process on 127.0.0.1, talked to over TCP with httpx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(models_dir: Path, log_path: Path) -> Iterator[str]:
    """uvicorn on a free 127.0.0.1 port over `models_dir`; yields its base URL once /readyz says 200."""
    port = free_port()
    environment = {**os.environ, "MODELS_DIR": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log_path.open("w") as log:  # A file, not a pipe: a full pipe would stall the server.
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base_url, process, log_path)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_until_ready(
    base_url: str, process: subprocess.Popen | None = None, log_path: Path | None = None, timeout: float = 180.0
) -> None:
    """Poll /readyz until 200; fail early, with the server's log, if its process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()[-3000:] if log_path else ''}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in time")


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tiny_store, tmp_path_factory.mktemp("server") / "uvicorn.log") as base_url:
        yield base_url


def test_real_server_classifies_over_tcp(server: str, png_bytes: bytes) -> None:
    response = httpx.post(f"{server}/predict", files={"file": ("cat.png", png_bytes, "image/png")}, timeout=30)
    assert response.status_code == 200
    assert response.json()["model"] == "model_1"


def test_real_server_refuses_oversized_bodies_early(server: str) -> None:
    response = httpx.post(f"{server}/predict", files={"file": ("big.bin", b"\0" * (11 * 1024 * 1024))}, timeout=30)
    assert response.status_code == 413


def test_real_server_serves_the_page_and_docs(server: str) -> None:
    assert "CIFAR-10" in httpx.get(f"{server}/", timeout=10).text
    assert httpx.get(f"{server}/docs", timeout=10).status_code == 200


def test_raw_dot_dot_paths_never_leave_the_store(server: str) -> None:
    """httpx normalises `..` away, so send the request line byte for byte."""
    host, port = server.removeprefix("http://").split(":")
    for target in ("/models/../../etc/passwd", "/models/..%2F..%2Fetc%2Fpasswd/metrics", "/models/../summary"):
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := connection.recv(65536):
                reply += chunk
        status_line = reply.split(b"\r\n", 1)[0]
        assert b" 404 " in status_line, (target, status_line)
        assert b"root:" not in reply
