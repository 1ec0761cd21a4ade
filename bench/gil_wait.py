"""What a forward pass costs when the event loop holds Python's GIL: alone, and beside a busy Python thread.

A pass releases the GIL while OpenVINO computes and needs it back to hand over its answers. A thread
waiting for the GIL asks its holder to let go only after `sys.getswitchinterval()` (5 ms by default), and
the service's event loop, busy with other requests, holds it all that time. This times a pass of the
newest int8 version of a model, compiled as the service compiles it, with its images stacked as the
inference thread stacks them: alone, then beside a thread that runs Python without pause, at each interval.

    python bench/gil_wait.py --model whitened_convnet --batch 4,16 --threads 1,2 --intervals-ms 5,1,0.2
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app import batch_shapes  # noqa: E402
from app.batching import switch_interval  # noqa: E402
from bench import machine  # noqa: E402
from training.core.preprocessing import INPUT_SHAPE  # noqa: E402

PASSES = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whitened_convnet")
    parser.add_argument("--batch", default="4,16")
    parser.add_argument("--threads", default="1,2", help="OpenVINO threads per pass")
    parser.add_argument("--intervals-ms", default="5,1,0.2", help="switch intervals tried beside the busy thread")
    args = parser.parse_args()
    path = newest_int8(REPO / "models" / args.model)
    print(machine.describe(), f"- {path.relative_to(REPO)}, median (p90) ms of {PASSES} passes")
    intervals = [float(ms) for ms in args.intervals_ms.split(",")]
    print("| threads | batch | alone |", " | ".join(f"beside Python, {ms:g} ms" for ms in intervals), "|")
    print("|---:|---:|---:|" + "---:|" * len(intervals))
    for threads in [int(t) for t in args.threads.split(",")]:
        for size in [int(b) for b in args.batch.split(",")]:
            predict = batch_shapes.compile_fixed(path, threads, [size])[size]
            cells = [timed(predict, size)] + [beside_python(predict, size, ms / 1000) for ms in intervals]
            print(f"| {threads} | {size} |", " | ".join(cells), "|", flush=True)
    return 0


def newest_int8(model_dir: Path) -> Path:
    versions = sorted((int(v.name), v) for v in model_dir.iterdir() if (v / "openvino-int8" / "model.xml").exists())
    return versions[-1][1] / "openvino-int8" / "model.xml"


def timed(predict: batch_shapes.Predict, size: int) -> str:
    images = [np.random.default_rng(size).integers(0, 256, INPUT_SHAPE, np.uint8) for _ in range(size)]
    for _ in range(20):  # Warm-up.
        predict(np.stack(images))
    seconds = []
    for _ in range(PASSES):
        start = time.perf_counter()
        predict(np.stack(images))
        seconds.append(time.perf_counter() - start)
    median, p90 = np.percentile(seconds, [50, 90]) * 1000
    return f"{median:.2f} ({p90:.2f})"


def beside_python(predict: batch_shapes.Predict, size: int, interval: float) -> str:
    """`timed`, while another thread of this process runs Python without pause (the GIL's other holder)."""
    with python_running(interval):
        return timed(predict, size)


@contextmanager
def python_running(interval: float, share: float = 1.0) -> Iterator[None]:
    """Another thread of this process running Python `share` of the time (1 ms at a time when less than
    all of it), with the switch interval set to `interval` seconds, for the block."""
    running = True

    def busy() -> None:
        while running:
            until = time.perf_counter() + 0.001
            while time.perf_counter() < until:
                pass
            if share < 1:
                time.sleep(0.001 * (1 - share) / share)

    with switch_interval(interval):
        thread = threading.Thread(target=busy)
        thread.start()
        try:
            yield
        finally:
            running = False
            thread.join()


if __name__ == "__main__":
    sys.exit(main())
