"""The event loop's share of a /predict request, measured without HTTP or a load generator.

Drives the app in this process through ASGI: C clients at once, each sending the multipart body
bench/serve_throughput.py sends as soon as its last answer came back, for a few seconds per cell.
Prints req/s, the event loop's CPU per request (the loop thread's own CPU time: routing, the
upload's parsing and decoding, batching, building and counting the answer, queueing its log
record, and the driving clients' few microseconds; not the forward pass, nor the log's writer),
the rest of the process's CPU per request, and the micro-batcher's mean batch, busy share and
mean pass.

Why: on two cores the micro-batcher can only hide the loop's work behind a forward pass when
two groups of clients alternate. With C clients in one batch they take turns: C answers and C
new requests on the loop, then one pass while the loop idles, so req/s <= C / (pass + C x loop),
whatever the batching rule. Run with and without HTTP (bench/serve_throughput.py), the two
figures also show what uvicorn and the load generator add.

    python bench/loop_cost.py --model whitened_convnet --concurrency 1,8,32 --seconds 3 --rounds 3
    python bench/loop_cost.py --model model_1 --tree /tmp/old   # another source tree's app (a git worktree)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="model_1")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3, help="sweeps of every concurrency; each cell's median")
    parser.add_argument("--tree", type=Path, default=REPO, help="the source tree whose app is measured")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    sys.path.insert(1, str(REPO))
    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ |= {
        "MODELS_DIR": str(REPO / "models"),
        "HOME": home,
        "MONITORING_DB": f"sqlite:///{home}/monitoring.db",  # A new log, not the tree's data/monitoring.db.
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "POLL_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "warning",
        "GRPC_PORT": "0",
    }
    # Imported only now: the app and bench modules come from the trees just put on the path.
    import uvloop

    from bench import machine

    print(machine.describe(), f"- the app of {args.tree.resolve()}, in process")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    uvloop.run(_sweep(args.model, concurrencies, args.seconds, args.rounds))
    return 0


async def _sweep(model: str, concurrencies: list[int], seconds: float, rounds: int) -> None:
    from app.main import create_app  # Reads its settings from the environment main() set.
    from bench.serve_throughput import request_body

    app = create_app()
    body, content_type, _ = request_body("predict", (REPO / "app/static/samples/test_00000_cat.png").read_bytes())
    request = _Request(app, f"model={model}", body, content_type)
    async with app.router.lifespan_context(app):
        await request.until_ready()
        await _cell(request, 1, 2.0)  # Warm-up.
        cells: dict[int, list[dict[str, float]]] = {c: [] for c in concurrencies}
        for round_ in range(rounds):
            for concurrency in concurrencies if round_ % 2 == 0 else concurrencies[::-1]:
                cells[concurrency].append(await _cell(request, concurrency, seconds))
    print("| clients | req/s | loop CPU ms/request | other threads CPU ms/request | batch | busy | pass ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for concurrency, runs in cells.items():
        median = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
        print(
            f"| {concurrency} | {median['rps']:,.1f} | {median['loop_ms']:.3f} | {median['other_ms']:.3f} "
            f"| {median['batch']:.1f} | {median['busy']:.0%} | {median['pass_ms']:.2f} |"
        )


class _Request:
    """One POST /predict, sent straight to the ASGI app."""

    def __init__(self, app: Any, query: str, body: bytes, content_type: str) -> None:
        self.app, self.body = app, body
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/predict",
            "raw_path": b"/predict",
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }

    async def until_ready(self, timeout: float = 120.0) -> None:
        """Waits for what /readyz waits for (the store scanned, the models loaded in the background)."""
        deadline = time.perf_counter() + timeout
        while not self.app.state.dataplane.server_ready() and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        await self.send_one()

    async def send_one(self) -> None:
        if (status := await self.status()) != 200:
            raise RuntimeError(f"/predict answered {status}")

    async def status(self) -> int:
        unsent = [{"type": "http.request", "body": self.body, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            if unsent:
                return unsent.pop()
            return await asyncio.Future()  # After the body: a client that stays until its answer.

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await self.app(dict(self.scope, state={}), receive, send)
        return status[0]


async def _cell(request: _Request, concurrency: int, seconds: float) -> dict[str, float]:
    from prometheus_client import REGISTRY

    from bench.serve_throughput import BATCHER_TOTALS, batcher_figures

    def totals() -> dict[str, float]:
        return {name: REGISTRY.get_sample_value(name) or 0.0 for name in BATCHER_TOTALS}

    deadline = time.perf_counter() + seconds
    answered = 0

    async def client() -> None:
        nonlocal answered
        while time.perf_counter() < deadline:
            await request.send_one()
            answered += 1

    before, loop_cpu, cpu, start = totals(), time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall, loop_cpu, cpu = time.perf_counter() - start, time.thread_time() - loop_cpu, time.process_time() - cpu
    return {
        "rps": answered / wall,
        "loop_ms": 1000 * loop_cpu / answered,
        "other_ms": 1000 * (cpu - loop_cpu) / answered,
    } | batcher_figures(before, totals(), wall)


if __name__ == "__main__":
    sys.exit(main())
