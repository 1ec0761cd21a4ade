"""App fixtures: a running app (lifespan included) over a tiny store or the committed store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.utils.data import COMMITTED_MODELS, SAMPLES
from tests.utils.servers import running_client


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
    return (SAMPLES / "test_00000_cat.png").read_bytes()
