"""Settings refuse values the service could not run with, when it starts rather than at the first request."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


@pytest.mark.parametrize("interval_ms", [0, -1, 5.01, 1e20])
def test_a_gil_switch_interval_not_positive_or_past_pythons_own_is_refused(interval_ms: float) -> None:
    with pytest.raises(ValidationError, match="gil_switch_interval_ms"):
        Settings(gil_switch_interval_ms=interval_ms)


def test_pythons_own_interval_is_accepted() -> None:
    assert Settings(gil_switch_interval_ms=5).gil_switch_interval_ms == 5
