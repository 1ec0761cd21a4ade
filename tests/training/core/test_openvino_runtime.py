"""The one door to OpenVINO: imported through it, openvino reports nothing and forks nothing; its compile
settings hold."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.utils.data import REPO
from training.core.openvino_runtime import compile_model, openvino

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")

# A fresh interpreter: in the test process openvino may already have been imported some other way.
SCRIPT = """
import atexit, json, os
import numpy as np

forks = []
os.register_at_fork(before=lambda: forks.append(1))
from training.core.openvino_runtime import openvino

ov = openvino()
import openvino.tools.ovc.telemetry_utils as converter_telemetry

ops = ov.opset13
images = ops.parameter([1, 3], ov.Type.f32)
answer = ov.Core().compile_model(ov.Model([ops.relu(images)], [images]), "CPU")(np.float32([[-1, 0, 2]]))[0]
report = {"answer": answer.tolist(), "telemetry": converter_telemetry.tm.__name__}
# At exit: after the interpreter has waited for any thread still sending a report.
atexit.register(lambda: print(json.dumps({**report, "forks": len(forks)})))
"""


def test_openvino_imported_through_the_runtime_sends_no_usage_reports() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["answer"] == [[0.0, 0.0, 2.0]]
    assert report["telemetry"] == "openvino.tools.ovc.telemetry_stub"  # The converter's silent fallback.
    assert report["forks"] == 0  # Each report would fork the whole process to post it.


@pytest.mark.parametrize("threads", [None, 1, os.cpu_count()])
def test_threads_are_pinned_only_when_they_cover_every_core(threads: int | None) -> None:
    """Pinning helps one process that has every core, but every process pins to the same first cores:
    with WORKERS=2 (a thread each) both workers' passes ran on one core."""
    ov = openvino()
    ops = ov.opset13
    images = ops.parameter([1, 3], ov.Type.f32)
    compiled = compile_model(ov.Model([ops.relu(images)], [images]), threads)

    every_core = threads is None or threads == os.cpu_count()
    assert compiled.get_property("ENABLE_CPU_PINNING") is every_core
    if threads is not None:  # Else OpenVINO's own count (one per physical core).
        assert compiled.get_property("INFERENCE_NUM_THREADS") == threads
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
