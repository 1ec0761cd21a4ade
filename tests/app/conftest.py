"""App fixtures: a running app (lifespan included) over a tiny store or the committed store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import COMMITTED_MODELS


def wait_ready(client: TestClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/readyz').json()}")


@contextmanager
def running_client(models_dir: Path, **overrides: object) -> Iterator[TestClient]:
    settings = Settings(models_dir=models_dir, poll_interval_seconds=0.2, **overrides)
    with TestClient(create_app(settings)) as client:  # The context manager runs the lifespan.
        wait_ready(client)
        yield client


@pytest.fixture(scope="session")
def client(tiny_store: Path) -> Iterator[TestClient]:
    """The app over the tiny store (model_1 v1, one epoch on tiny data): fast, for API behaviour."""
    with running_client(tiny_store) as ready:
        yield ready


@pytest.fixture(scope="session")
def committed_client() -> Iterator[TestClient]:
    """The app over the committed models, as `make serve` runs it."""
    with running_client(COMMITTED_MODELS) as ready:
        yield ready


@pytest.fixture
def png_bytes() -> bytes:
    return (Path(__file__).resolve().parents[2] / "app" / "static" / "samples" / "test_00000_cat.png").read_bytes()
