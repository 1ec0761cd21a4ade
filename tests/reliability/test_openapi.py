"""Schemathesis, the real CLI, over the live server's OpenAPI document with all checks on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.servers import ServerProcess

pytestmark = pytest.mark.reliability

CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_every_operation_behaves_as_the_openapi_document_says(live: ServerProcess) -> None:
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run"),
        f"{live.url}/openapi.json",
        *("--checks", "all", "--max-examples", "30", "--seed", "2026", "--no-color"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    summary = result.stdout[result.stdout.rfind("SUMMARY") :]
    print(summary)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "failures" not in summary.splitlines()[-1]
