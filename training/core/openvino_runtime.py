"""How a served procedure runs on OpenVINO: one home for the compile settings.

Publishing (`training.export`) and quantizing (`training.quantize`) measure a model
compiled here; the service (`app/backends.py`) serves it compiled here too, so the
answers recorded at publish time are the answers served. OpenVINO is imported lazily, and
only through `openvino()`: importing this module costs nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 32, 32, 3) -> float32 probabilities (N, 10).


def openvino() -> Any:
    """The openvino module, with OpenVINO's usage reporting off in this process.

    Importing openvino loads its model converter, which reports usage to Google Analytics unless the
    user has run `opt_in_out --opt_out`, and each report forks the whole importing process to post it:
    a server at start-up, a publish ~27 times (~2 s of CPU), towards a network a training machine or a
    serving container may not reach. The converter and NNCF both fall back to a silent stub when the
    telemetry package cannot be imported; hiding it before the first import chooses that fallback.
    """
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]  # None: "cannot import".
    import openvino as ov

    return ov


def runtime_version() -> str:
    return f"openvino {openvino().__version__}"


def convert(forward: Any) -> Any:
    """An OpenVINO model of a traced forward pass (`training.core.forward`'s tf.function).

    The weights are frozen into the graph as constants first. Handed the function itself, the
    converter finds each weight by walking the graph's captured variables and reading them eagerly,
    several times per weight: ~2.7 s per model against ~1 s frozen, slower still in a process that
    has traced many functions (stop 41, usage reports still on; frozen and without them, ~0.15 s).
    The IR computes the same probabilities either way (checked at publish).
    """
    ov = openvino()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    model = ov.convert_model(frozen.graph.as_graph_def())
    model.inputs[0].get_tensor().set_names({"images"})  # The function's argument name, as unfrozen.
    return model


def read_model(path: Path) -> Any:
    return openvino().Core().read_model(path)


def save_model(model: Any, path: Path) -> None:
    """Write IR (model.xml + model.bin) with fp32 weights: fp16 would move probabilities past 1e-4."""
    openvino().save_model(model, path, compress_to_fp16=False)


def compile_model(model: Any, threads: int | None = None) -> Any:
    """The CompiledModel every CPU pass runs: the settings in one place (`compile_for_cpu` serves it)."""
    config: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        # CPUs with bf16 or AMX default to bf16, which moves probabilities by up to ~0.04 here;
        # in an int8 model this applies to the layers left unquantized.
        "INFERENCE_PRECISION_HINT": "f32",
        # Pinning helps a process whose threads cover every core (1.08-1.10x at c=2-16), but each
        # process pins to the same first cores: two one-thread workers passed 341 images/s each on
        # one core, 747 and 659 unpinned (docs/benchmarks.md, stop 55).
        "ENABLE_CPU_PINNING": threads is None or threads >= (os.cpu_count() or 1),
    }
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    return openvino().Core().compile_model(model, "CPU", config)


def compile_for_cpu(model: Any, threads: int | None = None) -> Predict:
    """A model (or IR path) compiled for CPU: one latency-oriented stream, the batcher sending one
    batch at a time. The returned function is for one thread at a time (one infer request)."""
    request = compile_model(model, threads).create_infer_request()

    def predict(images: np.ndarray) -> np.ndarray:
        return np.array(request.infer([np.ascontiguousarray(images, np.uint8)])[0], np.float32)

    return predict
