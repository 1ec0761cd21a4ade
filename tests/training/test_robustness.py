"""The robustness report's inputs: the benchmark's damaged copies are made once per subset and seed."""

from __future__ import annotations

import numpy as np
import pytest

from training import corruptions, robustness


def test_a_subset_is_damaged_once_per_seed_and_its_copies_are_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    images = np.random.default_rng(7).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    real_corrupt = corruptions.corrupt
    calls: list[tuple[str, int, int]] = []

    def counted(batch: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
        calls.append((name, severity, seed))
        return real_corrupt(batch, name, severity, seed)

    monkeypatch.setattr(corruptions, "corrupt", counted)
    cells = len(corruptions.CORRUPTIONS) * len(corruptions.SEVERITIES)
    first = robustness.damaged_copies(images, seed=0)
    assert robustness.damaged_copies(images.copy(), seed=0) is first and len(calls) == cells
    assert np.array_equal(first["fog", 3], real_corrupt(images, "fog", 3, 0))
    with pytest.raises(ValueError, match="read-only"):
        first["fog", 3][0, 0, 0, 0] = 1
    robustness.damaged_copies(images, seed=1)
    assert len(calls) == 2 * cells
