"""What the prediction log costs, and whether it loses rows: /predict with logging off, to SQLite and to
PostgreSQL, the servers up at once and the cells alternated (ABBA), then a long run per database
counting the rows against the answers.

    python bench/monitoring_overhead.py --postgres postgresql+pg8000://postgres@127.0.0.1:5433/postgres \\
        [--model whitened_convnet] [--rounds 4] [--seconds 5] [--count-seconds 25]

PostgreSQL is yours to start (Debian: `pg_ctlcluster 15 main start`, or initdb + pg_ctl in a temporary
folder, as tests/utils/postgres.py does); without `--postgres` only SQLite is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, func, select, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from bench import serve_throughput as serving  # noqa: E402
from training.core import statistics  # noqa: E402
from training.core.prediction_log import Prediction  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whitened_convnet")
    parser.add_argument("--postgres", help="a PostgreSQL URL (postgresql+pg8000://...); its tables are emptied")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--count-seconds", type=int, default=25, help="the long run that counts rows")
    parser.add_argument("--port", type=int, default=8865)
    args = parser.parse_args()
    sqlite = f"sqlite:///{tempfile.mkdtemp(prefix='bench-log-')}/monitoring.db"
    logs = {"off": None, "sqlite": sqlite} | ({"postgres": args.postgres} if args.postgres else {})
    if args.postgres:
        _empty(args.postgres)
    print(machine.describe())
    request = serving.request_body("predict", (REPO / "app" / "static" / "samples" / "test_00000_cat.png").read_bytes())
    with contextlib.ExitStack() as stack:
        bases = {
            name: stack.enter_context(_server(args.model, args.port + index, url))
            for index, (name, url) in enumerate(logs.items())
        }
        urls = {name: f"{base}/predict?model={args.model}" for name, base in bases.items()}
        for url in urls.values():
            serving._run_wrk(url, request, 1, 2)  # Warm-up.
        samples: dict[str, list[dict]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            for name in list(urls) if round_ % 2 == 0 else list(urls)[::-1]:
                before = _cpu_seconds(args.port + list(urls).index(name))
                run = serving._run_wrk(urls[name], request, args.concurrency, args.seconds)
                run["cpu_ms"] = (_cpu_seconds(args.port + list(urls).index(name)) - before) / run["requests"] * 1000
                samples[name].append(run)
        print(f"\n/predict at c={args.concurrency}, {args.rounds} rounds of {args.seconds} s (mean; spread of req/s):")
        off = float(np.mean([run["rps"] for run in samples["off"]]))
        for name, runs in samples.items():
            rps, p99 = float(np.mean([r["rps"] for r in runs])), float(np.mean([r["p99_ms"] for r in runs]))
            spread = float(np.ptp([r["rps"] for r in runs]) / rps)
            print(f"  log {name:8} {rps:8.1f} req/s  p99 {p99:7.1f} ms  = {rps / off:.3f} of off  spread {spread:.1%}")
        _paired_costs(samples)
        print(f"\nLong runs ({args.count_seconds} s at c={args.concurrency}): answers against rows")
        for name, url in logs.items():
            if url is not None:
                _count(name, url, urls[name], bases[name], request, args)


def _cpu_seconds(port: int) -> float:
    """CPU time used so far by the server on `port` and by every PostgreSQL process (the database works for
    the log on the same two cores): what one request costs the machine, beside what req/s says."""
    pids = subprocess.run(["pgrep", "-f", f"uvicorn.*--port {port}"], capture_output=True, text=True).stdout.split()
    pids += subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _paired_costs(samples: dict[str, list[dict]]) -> None:
    """The cost as each round measured it (the logged cell against the one without, in the same round), with
    a 95% t-interval over the rounds: the machine's drift between rounds cancels out of each pair. Both as
    req/s lost (the machine saturated) and as CPU per request added (the server's and PostgreSQL's)."""
    print("\nCost per round, paired with that round's cell without logging (mean, 95% interval over rounds):")
    for name, runs in samples.items():
        if name == "off":
            continue
        pairs = list(zip(runs, samples["off"], strict=True))
        for what, costs in (
            ("req/s lost", [1 - run["rps"] / off["rps"] for run, off in pairs]),
            ("CPU added", [run["cpu_ms"] / off["cpu_ms"] - 1 for run, off in pairs]),
        ):
            cost = statistics.spread(costs)
            interval = "" if cost.ci_low is None else f"  ({cost.ci_low:+.1%} to {cost.ci_high:+.1%})"
            rounds = ", ".join(f"{c:+.1%}" for c in costs)
            print(f"  log {name:8} {what:10} {cost.mean:+.1%}{interval}  rounds: {rounds}")
    cpu = {name: float(np.mean([run["cpu_ms"] for run in runs])) for name, runs in samples.items()}
    print("  CPU per request (server and PostgreSQL): " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu.items()))


def _server(model: str, port: int, log_url: str | None) -> contextlib.AbstractContextManager[str]:
    """One server of bench/serve_throughput.py, logging to `log_url` (None: monitoring off)."""
    settings = {"MONITORING_ENABLED": "false"} if log_url is None else {"MONITORING_DB": log_url}
    backend = os.environ.get("INFERENCE_BACKEND", "auto")
    return serving._server(model, port, backend, settings=settings)


def _count(name: str, log_url: str, url: str, base: str, request: tuple, args: argparse.Namespace) -> None:
    time.sleep(3)  # Rows of the requests before are written first, so that they count before, not during.
    answered_before, rows_before = _answered(base, args.model), _rows(log_url)
    result = serving._run_wrk(url, request, args.concurrency, args.count_seconds)
    time.sleep(3)  # The writer inserts what is queued within about a second.
    answered, rows = _answered(base, args.model) - answered_before, _rows(log_url) - rows_before
    print(
        f"  log {name:8} {int(result['requests']):,} requests, {answered:,} answered, {rows:,} rows: "
        f"{answered - rows:,} lost, errors {int(result['errors'])}"
    )


def _answered(base: str, model: str) -> int:
    """Images the server answered for `model` (its cifar_predictions_total, every class)."""
    total = 0.0
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith("cifar_predictions_total{") and f'model="{model}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Prediction)) or 0)
    finally:
        engine.dispose()


def _empty(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in ("feedback", "predictions", "alembic_version"):
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


if __name__ == "__main__":
    main()
