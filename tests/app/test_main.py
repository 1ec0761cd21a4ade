"""The app's lifespan: what it changes in the serving process, and puts back when serving ends."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_while_serving_the_young_generation_is_collected_at_the_configured_threshold(tmp_path: Path) -> None:
    before = gc.get_threshold()
    settings = Settings(models_dir=tmp_path, poll_interval_seconds=0, gc_young_threshold=before[0] + 12_345)
    with TestClient(create_app(settings)):
        assert gc.get_threshold() == (before[0] + 12_345, *before[1:])  # The older generations as they were.
    assert gc.get_threshold() == before
