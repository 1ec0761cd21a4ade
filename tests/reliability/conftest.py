"""The reliability suite's server: `python -m app` over a copy of the tiny store, as in production."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.servers import ServerProcess, server_process


@pytest.fixture(scope="module")
def live(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("reliability")
    store = folder / "models"
    shutil.copytree(tiny_store, store)
    with server_process(store, folder / "server.log", POLL_INTERVAL_SECONDS="1") as server:
        yield server
