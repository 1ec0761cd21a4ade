"""Running the app: in process (TestClient, lifespan included) or as a real uvicorn over TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.utils.data import REPO


def wait_ready(client: TestClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/readyz').json()}")


@contextmanager
def running_client(models_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(models_dir=models_dir, poll_interval_seconds=0.2, **overrides)
    with TestClient(create_app(settings)) as client:  # The context manager runs the lifespan.
        wait_ready(client)
        yield client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def memory_kb(self) -> dict[str, int]:
        """Current (VmRSS) and peak (VmHWM) resident memory of the server process, in KB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


@contextmanager
def server_process(models_dir: Path, log_path: Path, **environment: str) -> Iterator[ServerProcess]:
    """`python -m app` on a free 127.0.0.1 port over `models_dir`, once /readyz says 200."""
    port = free_port()
    env = {**os.environ, "MODELS_DIR": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2", "PORT": str(port), **environment}
    with log_path.open("w") as log:  # A file, not a pipe: a full pipe would stall the server.
        process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base_url, process, log_path)
            yield ServerProcess(base_url, process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise


@contextmanager
def serving(models_dir: Path, log_path: Path, **environment: str) -> Iterator[str]:
    """Like `server_process`, for tests that only need the base URL."""
    with server_process(models_dir, log_path, **environment) as server:
        yield server.url


def wait_until_ready(
    base_url: str,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    timeout: float = 180.0,
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


@contextmanager
def threaded_server(models_dir: Path, **overrides: Any) -> Iterator[str]:
    """The app under a real uvicorn on a free 127.0.0.1 port, in a thread of this process (no second
    TensorFlow start-up); yields its base URL once /readyz says 200. For clients that need a socket."""
    import threading

    import uvicorn

    settings = Settings(models_dir=models_dir, poll_interval_seconds=0.2, **overrides)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, timeout=120)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
