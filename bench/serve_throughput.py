"""Serving benchmark: /predict against a naive model.predict endpoint, an upload-only ceiling,
and the standard protocols (v2 binary UINT8 tensor, v1 TF Serving b64 image).

Starts one uvicorn server on 127.0.0.1 (the service plus bench/baseline_app.py's two
reference endpoints), then drives each endpoint with wrk (Debian package `wrk`; a C
load generator with one thread, which leaves the server most of the CPU) at
concurrency 1, 8 and 32 with one 32x32 image per request, and prints requests per
second, p50/p95/p99 latency and the ratios. For /predict each cell also reads the server's
/metrics before and after: the mean batch, and the share of the cell's time the inference
thread spent computing (`busy`; near 100% the model limits the answers, well under it at
full load the event loop does), with the mean forward pass in ms.

    python bench/serve_throughput.py [--model model_1] [--seconds 10]
    python bench/serve_throughput.py --endpoints predict,ceiling   # quicker, for tuning
    python bench/serve_throughput.py --endpoints predict,v2_binary,v1_b64 --concurrency 32
    python bench/serve_throughput.py --model whitened_convnet --endpoints predict,v2_binary,v2_binary_py,grpc
        # REST multipart, REST v2 binary (wrk, and Triton's Python client) and gRPC (Triton's client)
    python bench/serve_throughput.py --model whitened_convnet --versions 2,3 --endpoints predict
        # /predict of each version in turn, same server, same run (an old path against a new one)
    python bench/serve_throughput.py --model whitened_convnet --versions 3,4 --backends tensorflow,openvino \
        --endpoints predict   # one server per backend, in turn; every cell against the first one

    python bench/serve_throughput.py --model whitened_convnet --trees /tmp/old,. --rounds 2 --concurrency 1,32
        # old code against new (a `git worktree` of an earlier commit), this checkout's store
    python bench/serve_throughput.py --model model_1 --policies fixed,eager,adaptive --rounds 2 \
        --concurrency 1,2,4,8,16,32,64 --seconds 4   # the micro-batcher's policies, all servers up at
        # once; each round sweeps every cell, servers and concurrencies in alternating order, so the
        # machine's drift hits each policy and each concurrency alike; each cell's median over the rounds
    python bench/serve_throughput.py --model model_1 --policies 'fixed BATCH_MAX_WAIT_MS=2,adaptive' --rounds 3 \
        --concurrency 1,2,4,8,16,32,64 --seconds 3   # the former rule with its former 2 ms wait, against today's
    python bench/serve_throughput.py --model whitened_convnet --policies adaptive --rounds 12 --concurrency 8,32 \
        --seconds 3 --ratio 8/32   # c=8 over c=32 taken round by round, with a bootstrap interval

Server settings come from the environment as usual (BATCH_MAX_WAIT_MS, TF_INTRA_OP_THREADS, ...);
`--backends` sets INFERENCE_BACKEND for each server (default: the environment's, else auto), and
`--policies` BATCH_POLICY (default: the environment's, else the service's default).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import bootstrap

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402

ENDPOINTS = {
    "predict": "/predict?model={model}{version_query}",
    "naive": "/bench/naive",
    "ceiling": "/bench/upload",
    "v2_binary": "/v2/models/{model}/infer",
    "v1_b64": "/v1/models/{model}:predict",
    # Driven by bench/protocol_load.py (Triton's Python client) instead of wrk: gRPC, and REST v2 binary
    # through the same client, so the two protocols pay the same client cost.
    "grpc": "",
    "v2_binary_py": "",
}
CLIENT_ENDPOINTS = {"grpc": "grpc", "v2_binary_py": "http"}
GRPC_PORT_OFFSET = 1000  # Each server's gRPC listener: its HTTP port + this.
BOUNDARY = "----benchboundary7d3b"
# The batcher's totals in /metrics from which batcher_figures() takes a cell's mean batch, busy share and pass.
BATCHER_TOTALS = ("cifar_batch_size_count", "cifar_batch_size_sum", "cifar_forward_pass_seconds_sum")


def request_body(endpoint: str, png: bytes) -> tuple[bytes, str, tuple[str, str] | None]:
    """(body, content type, extra header) for one image sent to `endpoint`."""
    if endpoint == "v2_binary":
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.uint8)
        tensor = {"name": "images", "datatype": "UINT8", "shape": [1, *pixels.shape]}
        header = json.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": pixels.size}}]}).encode()
        return header + pixels.tobytes(), "", ("Inference-Header-Content-Length", str(len(header)))
    if endpoint == "v1_b64":
        body = json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode()
        return body, "application/json", None
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return part + png + f"\r\n--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}", None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="model_1")
    parser.add_argument("--versions", help="comma-separated versions for /predict (default: the served one)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="which of predict, naive, ceiling")
    parser.add_argument("--backends", help="comma-separated INFERENCE_BACKEND values, one server each, in turn")
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS), sharing the CPUs")
    parser.add_argument(
        "--policies",
        help="comma-separated BATCH_POLICY values, one server each, in turn; each may carry settings of its own "
        "server after a space, as in 'fixed BATCH_MAX_WAIT_MS=2'",
    )
    parser.add_argument(
        "--trees", help="comma-separated source trees (git worktrees), one server each: old code against new"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="/predict only: start every server at once and sweep every concurrency ROUNDS times, alternating the "
        "servers' and the concurrencies' order each round, reporting each cell's median: a slow minute of the machine "
        "then hits every server and every concurrency alike",
    )
    parser.add_argument(
        "--ratio",
        help="with --rounds, A/B: each server's throughput at concurrency A over B, taken round by round (the "
        "machine's drift divides out), its median and 95%% bootstrap interval",
    )
    args = parser.parse_args()
    ratio = args.ratio.split("/") if args.ratio else []
    if args.ratio and not (args.rounds and len(ratio) == 2 and set(ratio) <= set(args.concurrency.split(","))):
        parser.error("--ratio A/B needs --rounds, and A and B among --concurrency")
    endpoints = {name: ENDPOINTS[name] for name in args.endpoints.split(",")}
    if args.rounds:
        endpoints = {"predict": ENDPOINTS["predict"]}
    elif args.versions:  # /predict once per version, named predict@N; the other endpoints as chosen.
        chosen = {name: path for name, path in endpoints.items() if name != "predict"}
        predict = ENDPOINTS["predict"]
        endpoints = {
            f"predict@{v}": predict.replace("{version_query}", f"&version={v}") for v in args.versions.split(",")
        }
        endpoints |= chosen
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    image = REPO / "app" / "static" / "samples" / "test_00000_cat.png"
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    backends = args.backends.split(",") if args.backends else [os.environ.get("INFERENCE_BACKEND", "auto")]
    policies = args.policies.split(",") if args.policies else [os.environ.get("BATCH_POLICY", "")]
    for setting in (word for policy in policies for word in policy.split()[1:]):
        if "=" not in setting:
            parser.error(f"--policies: {setting!r} is not a NAME=VALUE setting")
    trees = [Path(tree).resolve() for tree in args.trees.split(",")] if args.trees else [REPO]
    servers = {
        _label(backend, policy, tree if len(trees) > 1 else None): (backend, policy, tree)
        for tree in trees
        for backend in backends
        for policy in policies
    }
    print(machine.describe(), f"- {args.workers} server process(es)")
    results: dict[tuple[str, str, int], dict] = {}
    if args.rounds:
        _interleaved(args, servers, endpoints, request_body("predict", image.read_bytes()), concurrencies, results)
    else:
        for label, (backend, policy, tree) in servers.items():
            print(f"\n== {label}", flush=True)
            with _server(args.model, args.port, backend, args.workers, policy, tree) as base:
                for name, path in endpoints.items():
                    if name in CLIENT_ENDPOINTS:
                        for concurrency in concurrencies:
                            r = _run_client(name, base, args.port, args.model, concurrency, args.seconds)
                            _print_cell(name, concurrency, results.setdefault((label, name, concurrency), r))
                        continue
                    url = base + path.format(model=args.model, version_query="")
                    request = request_body(name.split("@")[0], image.read_bytes())
                    _run_wrk(url, request, 1, 3)  # Warm-up.
                    for concurrency in concurrencies:
                        cell = partial(_run_wrk, url, request, concurrency, args.seconds)
                        r = results[(label, name, concurrency)] = (
                            _with_batching(base, cell) if "predict" in name else cell()
                        )
                        _print_cell(name, concurrency, r)
    for label in servers:
        _print_ratios(args.model, label, concurrencies, results)
    if len(servers) > 1 or len(endpoints) > 1:
        _print_side_by_side(list(servers), list(endpoints), concurrencies, results)
    return 0


def _interleaved(
    args: argparse.Namespace,
    servers: dict[str, tuple[str, str, Path]],
    endpoints: dict[str, str],
    request: tuple[bytes, str, tuple[str, str] | None],
    concurrencies: list[int],
    results: dict,
) -> None:
    """Every server up at once (one port each; an idle one costs nothing). Rounds are the outer loop and
    each reverses the last one's order of servers and of concurrencies (ABBA both ways), so a slow
    minute costs every cell alike instead of one concurrency all its rounds (which reads as a dip in
    throughput against concurrency); each cell is its median over the rounds."""
    with contextlib.ExitStack() as stack:
        bases = {
            label: stack.enter_context(_server(args.model, args.port + i, backend, args.workers, policy, tree))
            for i, (label, (backend, policy, tree)) in enumerate(servers.items())
        }
        urls = {
            label: base + ENDPOINTS["predict"].format(model=args.model, version_query="")
            for label, base in bases.items()
        }
        for url in urls.values():
            _run_wrk(url, request, 1, 3)  # Warm-up.
        samples: dict[tuple[str, int], list[dict]] = {(label, c): [] for label in servers for c in concurrencies}
        for round_ in range(args.rounds):
            forward = round_ % 2 == 0
            for concurrency in concurrencies if forward else concurrencies[::-1]:
                for label in list(servers) if forward else list(servers)[::-1]:
                    cell = partial(_run_wrk, urls[label], request, concurrency, args.seconds)
                    samples[label, concurrency].append(_with_batching(bases[label], cell))
            print(f"round {round_ + 1} of {args.rounds} done", flush=True)
    for concurrency in concurrencies:
        for label in servers:
            runs = samples[label, concurrency]
            r = results[(label, "predict", concurrency)] = {
                key: float(np.median([run[key] for run in runs])) for key in runs[0]
            }
            r["spread"] = float(np.ptp([run["rps"] for run in runs]) / r["rps"])
            _print_cell(f"{label}", concurrency, r)
    if args.ratio:
        top, bottom = (int(c) for c in args.ratio.split("/"))
        for label in servers:
            _print_paired_ratio(label, top, bottom, samples[label, top], samples[label, bottom])


def _print_paired_ratio(label: str, top: int, bottom: int, tops: list[dict], bottoms: list[dict]) -> None:
    """One server's throughput at concurrency `top` over `bottom`, round by round, with `top`'s batch each round."""
    median, low, high = paired_ratio([run["rps"] for run in tops], [run["rps"] for run in bottoms])
    rounds = ", ".join(
        f"{a['rps'] / b['rps']:.0%} ({a['rps']:.0f}, {a.get('batch', float('nan')):.1f})"
        for a, b in zip(tops, bottoms, strict=True)
    )
    print(f"{label}: c={top} / c={bottom} {median:.1%} (95% interval {low:.1%}-{high:.1%})")
    print(f"  each round, with c={top}'s req/s and mean batch: {rounds}")


def paired_ratio(top: list[float], bottom: list[float]) -> tuple[float, float, float]:
    """The median over rounds of `top / bottom` taken round by round, and a 95% bootstrap interval for it.

    A round measures both cells minutes apart at most, so a drift of the machine's speed (up to 25% over
    minutes on some machines, docs/benchmarks.md) divides out of each round's ratio; the ratio of the two
    cells' medians keeps whatever drift fell between the rounds that happen to be the medians."""
    ratios = np.asarray(top) / np.asarray(bottom)
    if len(ratios) < 2:
        return float(ratios[0]), float("nan"), float("nan")
    interval = bootstrap((ratios,), np.median, confidence_level=0.95, method="percentile", random_state=0)
    ci = interval.confidence_interval
    return float(np.median(ratios)), float(ci.low), float(ci.high)


def _with_batching(base: str, cell: Callable[[], dict]) -> dict:
    """`cell()`'s result plus what the server's batcher did meanwhile, from /metrics before and after: mean
    batch, `busy` (the share of the cell's time spent in forward passes; summed over workers) and the
    mean pass in ms. Without them when the server predates `cifar_forward_pass_seconds`."""
    before, start = _batcher_totals(base), time.perf_counter()
    result = cell()
    after, wall = _batcher_totals(base), time.perf_counter() - start
    seconds = result.get("seconds") or wall  # The load's own duration, without starting the client.
    return result | batcher_figures(before, after, seconds)


def batcher_figures(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Mean batch, busy share and mean pass (ms) between two readings of BATCHER_TOTALS `seconds` apart;
    none when no pass was timed (a server that predates `cifar_forward_pass_seconds`)."""
    passes = after["cifar_batch_size_count"] - before["cifar_batch_size_count"]
    computed = after["cifar_forward_pass_seconds_sum"] - before["cifar_forward_pass_seconds_sum"]
    if not (passes and computed):
        return {}
    images = after["cifar_batch_size_sum"] - before["cifar_batch_size_sum"]
    return {"batch": images / passes, "busy": computed / seconds, "pass_ms": 1000 * computed / passes}


def _batcher_totals(base: str) -> dict[str, float]:
    totals = dict.fromkeys(BATCHER_TOTALS, 0.0)
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


def _print_cell(name: str, concurrency: int, r: dict) -> None:
    spread = f"  spread {r['spread']:.1%}" if "spread" in r else ""
    batching = f"  batch {r['batch']:5.1f}  busy {r['busy']:4.0%}  pass {r['pass_ms']:6.2f} ms" if "busy" in r else ""
    print(
        f"{name:8} c={concurrency:<3} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.2f} ms  "
        f"p95 {r['p95_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']:.0f}{spread}{batching}",
        flush=True,
    )


def _label(backend: str, policy: str, tree: Path | None = None) -> str:
    label = f"{backend} / {policy}" if policy else backend
    return f"{tree.name} / {label}" if tree else label


@contextlib.contextmanager
def _server(
    model: str,
    port: int,
    backend: str,
    workers: int = 1,
    policy: str = "",
    tree: Path = REPO,
    settings: dict[str, str] | None = None,
) -> Iterator[str]:
    """The service plus bench/baseline_app.py's reference endpoints of source tree `tree` (its code, this
    checkout's model store), in uvicorn, until the block ends; `settings` adds environment variables."""
    home = tempfile.mkdtemp(prefix="bench-home-")  # No cache from an earlier start.
    env = {
        **os.environ,
        "BENCH_MODEL": model,
        "MODELS_DIR": str(REPO / "models"),
        "HOME": home,
        # Each server its own new prediction log: the default, data/monitoring.db in the tree, is shared by the
        # servers of one run and grows with every run (2.5 GB after stop 56's, written by two servers at once).
        "MONITORING_DB": f"sqlite:///{home}/monitoring.db",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "POLL_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "warning",
        "PYTHONPATH": str(tree),
        "INFERENCE_BACKEND": backend,
        "WORKERS": str(workers),  # Each worker's thread pools get CPUs / WORKERS threads.
        "GRPC_PORT": str(port + GRPC_PORT_OFFSET),
    }
    name, *assignments = policy.split() or [""]  # "fixed BATCH_MAX_WAIT_MS=2": a policy with its own settings.
    if name:
        env["BATCH_POLICY"] = name
    env |= dict(assignment.split("=", 1) for assignment in assignments) | (settings or {})
    workers = int(env["WORKERS"])  # A policy's own WORKERS=2 starts two processes, as `python -m app` does.
    if workers > 1:  # One set of metrics for the whole server, so the batch columns count every worker.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    command = [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    server = subprocess.Popen([*command, "--log-level", "warning", "--no-access-log"], cwd=tree, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _print_ratios(model: str, backend: str, concurrencies: list[int], results: dict) -> None:
    print(f"\nmodel {model}, backend {backend}; ratios of /predict throughput:")
    for concurrency in concurrencies:
        ours = results.get((backend, "predict", concurrency), {}).get("rps")
        line = f"  c={concurrency:<3}"
        if ours and (backend, "naive", concurrency) in results:
            line += f" vs naive {ours / results[(backend, 'naive', concurrency)]['rps']:5.1f}x  "
        if ours and (backend, "ceiling", concurrency) in results:
            line += f" vs ceiling {ours / results[(backend, 'ceiling', concurrency)]['rps']:6.1%}"
        for protocol in ("v2_binary", "v1_b64", "v2_binary_py", "grpc"):
            if ours and (backend, protocol, concurrency) in results:
                line += f"  {protocol} {results[(backend, protocol, concurrency)]['rps'] / ours:5.2f}x of /predict"
        print(line)


def _print_side_by_side(backends: list[str], endpoints: list[str], concurrencies: list[int], results: dict) -> None:
    """Every (backend, endpoint) cell as req/s, p99, and its ratio to the first cell at the same concurrency."""
    cells = [(backend, endpoint) for backend in backends for endpoint in endpoints]
    print(f"\n| backend | endpoint | {' | '.join(f'c={c} req/s (p99 ms)' for c in concurrencies)} |")
    print("|---|---|" + "---|" * len(concurrencies))
    for backend, endpoint in cells:
        row = []
        for concurrency in concurrencies:
            r, first = results[(backend, endpoint, concurrency)], results[(*cells[0], concurrency)]
            row.append(f"{r['rps']:.1f} ({r['p99_ms']:.1f}) = {r['rps'] / first['rps']:.2f}x")
        print(f"| {backend} | {endpoint} | {' | '.join(row)} |")
    batched = [cell for cell in cells if all("busy" in results[(*cell, c)] for c in concurrencies)]
    if batched:
        print(f"\n| backend | endpoint | {' | '.join(f'c={c} batch, busy' for c in concurrencies)} |")
        print("|---|---|" + "---|" * len(concurrencies))
        for backend, endpoint in batched:
            row = [
                f"{r['batch']:.1f}, {r['busy']:.0%}" for r in (results[(backend, endpoint, c)] for c in concurrencies)
            ]
            print(f"| {backend} | {endpoint} | {' | '.join(row)} |")


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


def _run_wrk(url: str, request: tuple[bytes, str, tuple[str, str] | None], concurrency: int, seconds: int) -> dict:
    body, content_type, header = request
    with tempfile.NamedTemporaryFile(suffix=".body") as handle:
        handle.write(body)
        handle.flush()
        environment = {
            **os.environ,
            "BENCH_BODY": handle.name,
            "BENCH_CONTENT_TYPE": content_type,
            "BENCH_HEADER_NAME": header[0] if header else "",
            "BENCH_HEADER_VALUE": header[1] if header else "",
        }
        output = _wrk(url, concurrency, seconds, environment)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict = json.loads(line.removeprefix("RESULT "))
    return result


def _run_client(endpoint: str, base: str, port: int, model: str, concurrency: int, seconds: int) -> dict:
    """One cell driven by bench/protocol_load.py (its own process, like wrk)."""
    protocol = CLIENT_ENDPOINTS[endpoint]
    address = f"127.0.0.1:{port + GRPC_PORT_OFFSET}" if protocol == "grpc" else base.removeprefix("http://")
    command = [sys.executable, str(REPO / "bench" / "protocol_load.py"), "--protocol", protocol, "--address", address]
    command += ["--model", model, "--concurrency", str(concurrency), "--seconds", str(seconds)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict = json.loads(line.removeprefix("RESULT "))
    return result


def _wrk(url: str, concurrency: int, seconds: int, environment: dict[str, str]) -> str:
    return subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(REPO / "bench" / "request.lua"),
            url,
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


if __name__ == "__main__":
    raise SystemExit(main())
