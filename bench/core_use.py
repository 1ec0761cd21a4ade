"""Where the cores go while the service answers /predict: CPU per request by thread, and the idle share.

Starts one server process (bench/serve_throughput.py's, over HTTP) and drives it with wrk at each
concurrency. Per cell it reads every thread's CPU time from /proc before and after, so it prints the
event loop's CPU per request (the main thread: HTTP, parsing, decoding, answers), each other busy
thread's (the inference thread and OpenVINO's, the prediction log's writer), wrk's, and the share of
the machine's cores nobody used, with the micro-batcher's mean batch, busy share and pass.

Why: on a machine as small as the service's, throughput against concurrency is decided by who waits
for whom. Idle cores at a concurrency mean the work there runs in turns (the clients of one batch and
its forward pass), not side by side; a thread near 100% of a core is what limits.

    python bench/core_use.py --model whitened_convnet --concurrency 1,8,32 --rounds 2
    python bench/core_use.py --tree /tmp/old --set INT8_FIXED_BATCHES=[]   # another tree, other settings
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402
from bench import serve_throughput as serving  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")  # /proc's unit of CPU time.
SHOWN_THREADS = 6  # The busiest threads of each cell, the event loop always among them.


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whitened_convnet")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="sweeps of every concurrency, each cell printed")
    parser.add_argument("--tree", type=Path, default=REPO, help="the source tree whose server is measured")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a server setting")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    settings = dict(setting.split("=", 1) for setting in args.set)
    print(machine.describe(), f"- one server process of {args.tree.resolve()}")
    image = REPO / "app" / "static" / "samples" / "test_00000_cat.png"
    request = serving.request_body("predict", image.read_bytes())
    with serving._server(args.model, args.port, "auto", tree=args.tree.resolve(), settings=settings) as base:
        server = _listening_process(args.port)
        url = base + serving.ENDPOINTS["predict"].format(model=args.model, version_query="")
        serving._run_wrk(url, request, 1, 2)  # Warm-up.
        for _ in range(args.rounds):
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                print(_cell(server, base, url, request, concurrency, args.seconds), flush=True)
    return 0


def _cell(server: int, base: str, url: str, request: tuple, concurrency: int, seconds: int) -> str:
    """One wrk run, and what each thread, wrk and the idle cores spent on it, per request."""
    threads, idle, client = _thread_cpu(server), _idle_seconds(), _children_cpu()
    batcher, start = serving._batcher_totals(base), time.perf_counter()
    result = serving._run_wrk(url, request, concurrency, seconds)
    wall = time.perf_counter() - start
    spent = {tid: cpu - threads.get(tid, 0.0) for tid, cpu in _thread_cpu(server).items()}
    idle_share = (_idle_seconds() - idle) / wall / (os.cpu_count() or 1)
    requests = result["rps"] * wall  # Over the same wall time as the CPU figures.
    batching = serving.batcher_figures(batcher, serving._batcher_totals(base), wall)
    working = [tid for tid in spent if tid == server or spent[tid] > 0]
    busiest = sorted(working, key=lambda tid: (tid == server, spent[tid]), reverse=True)[:SHOWN_THREADS]
    per_thread = " ".join(f"{'loop' if tid == server else tid}={1000 * spent[tid] / requests:.3f}" for tid in busiest)
    return (
        f"c={concurrency:<3} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.2f} ms  "
        f"batch {batching.get('batch', 0):4.1f}  pass {batching.get('pass_ms', 0):5.2f} ms  "
        f"busy {batching.get('busy', 0):4.0%}  idle {idle_share:4.0%}  "
        f"CPU ms/request: {per_thread} wrk={1000 * (_children_cpu() - client) / requests:.3f}"
    )


def _listening_process(port: int) -> int:
    """The server's pid: the uvicorn process started for `port` (one worker: it serves itself)."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # Not a process, or one that has exited.
            continue
        if b"uvicorn" in command and b"--port" in command and command[command.index(b"--port") + 1] == b"%d" % port:
            return int(entry.name)
    raise SystemExit(f"no server on port {port}")


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of process `pid`, from /proc."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # The thread ended.
            continue
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def _idle_seconds() -> float:
    """Seconds every core has been idle since boot, summed (/proc/stat)."""
    with open("/proc/stat") as stat:
        return int(stat.readline().split()[4]) / TICKS


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited.
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    raise SystemExit(main())
