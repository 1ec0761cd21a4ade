"""Serving benchmark: /predict against a naive model.predict endpoint and an upload-only ceiling.

Starts one uvicorn server on 127.0.0.1 (the service plus bench/baseline_app.py's two
reference endpoints), then drives each endpoint with wrk (Debian package `wrk`; a C
load generator with one thread, which leaves the server most of the CPU) at
concurrency 1, 8 and 32 with a 32x32 PNG, and prints requests per second, p50/p95/p99
latency and the ratios.

    python bench/serve_throughput.py [--model model_1] [--seconds 10]
    python bench/serve_throughput.py --endpoints predict,ceiling   # quicker, for tuning

Server settings come from the environment as usual (BATCH_MAX_WAIT_MS, TF_INTRA_OP_THREADS, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
ENDPOINTS = {"predict": "/predict?model={model}", "naive": "/bench/naive", "ceiling": "/bench/upload"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="model_1")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="which of predict, naive, ceiling")
    args = parser.parse_args()
    endpoints = {name: ENDPOINTS[name] for name in args.endpoints.split(",")}
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    image = REPO / "app" / "static" / "samples" / "test_00000_cat.png"
    env = {
        **os.environ,
        "BENCH_MODEL": args.model,
        "MODELS_DIR": str(REPO / "models"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "POLL_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "warning",
        "PYTHONPATH": str(REPO),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        _wait_ready(base)
        results = {}
        for name, path in endpoints.items():
            url = base + path.format(model=args.model)
            _run_wrk(url, image, 1, 3)  # Warm-up.
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                results[(name, concurrency)] = _run_wrk(url, image, concurrency, args.seconds)
                r = results[(name, concurrency)]
                print(
                    f"{name:8} c={concurrency:<3} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                    f"p95 {r['p95_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nmodel {args.model}; ratios of /predict throughput:")
    for concurrency in [int(c) for c in args.concurrency.split(",")]:
        ours = results.get(("predict", concurrency), {}).get("rps")
        line = f"  c={concurrency:<3}"
        if ours and ("naive", concurrency) in results:
            line += f" vs naive {ours / results[('naive', concurrency)]['rps']:5.1f}x  "
        if ours and ("ceiling", concurrency) in results:
            line += f" vs ceiling {ours / results[('ceiling', concurrency)]['rps']:6.1%}"
        print(line)
    return 0


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not become ready")


def _run_wrk(url: str, image: Path, concurrency: int, seconds: int) -> dict:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "bench" / "multipart.lua"),
            url,
        ],
        env={**os.environ, "BENCH_IMAGE": str(image)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


if __name__ == "__main__":
    raise SystemExit(main())
