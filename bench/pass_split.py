"""One forward pass on two threads against the same batch in chunks on two one-thread streams.

OpenVINO divides a pass's work between its threads in equal shares fixed in advance, so on two
cores shared with the event loop the pass ends when the thread that shared its core with the loop
does: a pass of 16 that takes 18 ms alone took 27-31 ms at 32 clients of the default model on an
AMD EPYC (docs/benchmarks.md, stop 58). Two streams of one thread each, fed chunks of the batch
from a queue, balance by themselves: the stream on the freer core takes more chunks. This times
both, on the newest int8 version of a model, alone and beside a thread of this process that runs
Python for 1 ms at a time, busy the given shares of the time (the event loop at 32 clients is busy
about half of it; as in the service, the switch interval is the short one of a chained pass).
Timed so, the chunks finished 8-14% sooner beside a half-busy thread; served so, at 32 clients,
they did not (docs/benchmarks.md, stop 58): the event loop is not a synthetic busy thread.

    python bench/pass_split.py --model whitened_convnet --batch 16 --chunks 2,4,8 --busy 0.5,1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.config import Settings  # noqa: E402
from bench import machine  # noqa: E402
from bench.gil_wait import newest_int8, python_running  # noqa: E402
from training.core import openvino_runtime  # noqa: E402
from training.core.preprocessing import INPUT_SHAPE  # noqa: E402

PASSES = 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whitened_convnet")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--chunks", default="2,4,8", help="chunk sizes for the two streams")
    parser.add_argument("--busy", default="0.5,1", help="shares of the time the Python thread runs")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    path = newest_int8(REPO / "models" / args.model)
    images = np.random.default_rng(0).integers(0, 256, (args.batch, *INPUT_SHAPE), np.uint8)
    passes = {"one call, two threads": one_call(path, images)}
    passes |= {f"chunks of {size}, two streams": chunked(path, images, size) for size in _ints(args.chunks)}
    reference = passes["one call, two threads"]()
    for name, run in passes.items():  # The same answers, or the timing means nothing.
        np.testing.assert_allclose(run(), reference, atol=1e-5, err_msg=name)
    shares = [float(share) for share in args.busy.split(",")]
    print(machine.describe(), f"- {path.relative_to(REPO)}, batch {args.batch}, median ms of {PASSES} passes")
    print("| round | pass | alone |", " | ".join(f"beside Python {share:.0%}" for share in shares), "|")
    print("|---:|---|---:|" + "---:|" * len(shares))
    for round_ in range(1, args.rounds + 1):  # Rounds alternate the passes: the machine's speed drifts.
        for name, run in passes.items():
            cells = [timed(run)] + [beside_python(run, share) for share in shares]
            print(f"| {round_} | {name} |", " | ".join(f"{ms:.2f}" for ms in cells), "|", flush=True)
    return 0


def one_call(path: Path, images: np.ndarray) -> Callable[[], np.ndarray]:
    """The pass as the service runs it: the batch's compiled size, two threads, one call."""
    model = openvino_runtime.read_model(path)
    model.reshape([len(images), *INPUT_SHAPE])
    request = openvino_runtime.compile_model(model, 2).create_infer_request()
    return lambda: np.array(request.infer([images])[0])


def chunked(path: Path, images: np.ndarray, size: int) -> Callable[[], np.ndarray]:
    """The batch in chunks of `size` on two one-thread streams, each taking the next chunk when free."""
    if len(images) % size:
        raise SystemExit(f"--batch {len(images)} is not a multiple of the chunk size {size}")
    ov = openvino_runtime.openvino()
    model = openvino_runtime.read_model(path)
    model.reshape([size, *INPUT_SHAPE])
    # Throughput streams instead of compile_model's one latency stream; its f32 precision kept.
    config = {"NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": 2, "ENABLE_CPU_PINNING": False}
    compiled = ov.Core().compile_model(model, "CPU", config | {"INFERENCE_PRECISION_HINT": "f32"})
    queue = ov.AsyncInferQueue(compiled, 2)
    starts = range(0, len(images), size)
    rows: dict[int, np.ndarray] = {}
    queue.set_callback(lambda request, start: rows.__setitem__(start, request.get_output_tensor(0).data.copy()))

    def run() -> np.ndarray:
        for start in starts:
            queue.start_async([images[start : start + size]], start)
        queue.wait_all()
        return np.concatenate([rows[start] for start in starts])

    return run


def timed(run: Callable[[], np.ndarray]) -> float:
    for _ in range(5):  # Warm-up.
        run()
    seconds = []
    for _ in range(PASSES):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds) * 1000)


def beside_python(run: Callable[[], np.ndarray], share: float) -> float:
    """`timed`, while another thread runs Python `share` of the time, at the interval of a chained pass."""
    with python_running(Settings().gil_switch_interval_ms / 1000, share):
        return timed(run)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


if __name__ == "__main__":
    sys.exit(main())
