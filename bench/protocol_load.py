"""Closed-loop load over the Open Inference Protocol with Triton's own Python client, gRPC or REST.

wrk speaks HTTP only, so the gRPC path is driven by tritonclient.grpc.aio (raw binary
tensors, as Triton's clients send them); the REST v2 binary path can be driven by
tritonclient.http.aio the same way, so the two protocols are compared with the same client
cost on the machine's CPUs. `bench/serve_throughput.py` runs it (endpoints `grpc` and
`v2_binary_py`); on its own:

    python bench/protocol_load.py --protocol grpc --address 127.0.0.1:9765 --model model_1 \\
        --concurrency 32 --seconds 10

Prints one line, `RESULT {"rps": ..., "p50_ms": ..., "p95_ms": ..., "p99_ms": ..., "errors": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SAMPLE = Path(__file__).resolve().parent.parent / "app" / "static" / "samples" / "test_00000_cat.png"


async def load(protocol: str, address: str, model: str, concurrency: int, seconds: float) -> dict[str, float]:
    client_module: Any = importlib.import_module(f"tritonclient.{protocol}.aio")
    client = client_module.InferenceServerClient(address, **({} if protocol == "grpc" else {"conn_limit": 256}))
    pixels = np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.uint8)[None]
    tensor = client_module.InferInput("images", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    outputs = [client_module.InferRequestedOutput("probabilities")]
    latencies: list[float] = []
    errors = 0

    async def worker(until: float, record: bool) -> None:
        nonlocal errors
        while time.monotonic() < until:
            start = time.perf_counter()
            try:
                await client.infer(model, [tensor], outputs=outputs)
            except Exception:  # Counted, as wrk counts non-2xx answers.
                errors += 1
                continue
            if record:
                latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker(time.monotonic() + 1.0, record=False) for _ in range(concurrency)))  # Warm-up.
    started = time.monotonic()
    await asyncio.gather(*(worker(started + seconds, record=True) for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await client.close()
    milliseconds = np.array(latencies) * 1000
    p50, p95, p99 = np.percentile(milliseconds, [50, 95, 99]) if len(milliseconds) else (0.0, 0.0, 0.0)
    return {"rps": len(latencies) / elapsed, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--address", required=True, help="host:port of the gRPC or HTTP listener")
    parser.add_argument("--model", default="model_1")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    result = asyncio.run(load(args.protocol, args.address, args.model, args.concurrency, args.seconds))
    print("RESULT " + json.dumps({key: float(value) for key, value in result.items()}))


if __name__ == "__main__":
    main()
