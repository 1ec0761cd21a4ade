"""Start-up and memory of `python -m app`: ready time, resident memory, and both as the store grows.

    python bench/startup_memory.py                          # this checkout, the committed store
    python bench/startup_memory.py --trees /tmp/old,.       # another checkout (git worktree) first: before/after
    python bench/startup_memory.py --workers 1,2            # one server process, then two (WORKERS=2)

For each source tree (each runs its own `python -m app` with its own code), twice over:
the committed store, then a copy with `--extra` more versions of the default model
(copies of its newest version). Each start gets an empty home (no cache from an earlier
start) and this interpreter; it measures seconds from process start to the first 200 of
/readyz (with several workers, to ten 200s in a row on new connections: each worker answers
for itself), resident memory once ready and after `--predictions` /predict calls (each on
a new connection, so every worker serves), the peak, and whether TensorFlow was imported
(its shared library mapped). Memory is summed over the server and every process it
started: VmRSS, VmHWM, and PSS, which splits each shared page (Python's and OpenVINO's
libraries, mapped by every worker) between the processes that map it, so PSS is what
a second worker really adds. Prints the CPU flags, since machines differ between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import machine  # noqa: E402

SAMPLE = REPO / "app" / "static" / "samples" / "test_00000_cat.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", default=".", help="comma-separated source trees, each measured in turn")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model", default="whitened_convnet", help="the model given extra versions")
    parser.add_argument("--extra", type=int, default=20, help="extra versions in the grown store")
    parser.add_argument("--predictions", type=int, default=300)
    parser.add_argument("--workers", default="1", help="comma-separated WORKERS values, each measured in turn")
    args = parser.parse_args()
    print(machine.describe(), flush=True)
    print(
        "\n| tree | workers | store | ready s | RSS ready MB | RSS after predictions MB | PSS after MB | peak MB "
        "| tensorflow loaded |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as scratch:
        grown = Path(scratch) / "grown"
        shutil.copytree(args.models_dir, grown, ignore=shutil.ignore_patterns(".*"))
        newest = max(int(p.name) for p in (grown / args.model).iterdir() if p.name.isdigit())
        for offset in range(1, args.extra + 1):
            shutil.copytree(grown / args.model / str(newest), grown / args.model / str(newest + offset))
        for tree in args.trees.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                for label, store in (("committed", args.models_dir), (f"+{args.extra} versions", grown)):
                    row = measure(Path(tree).resolve(), store, args.predictions, Path(scratch), workers)
                    print(
                        f"| {tree} | {workers} | {label} | {row['ready_s']:.2f} | {row['rss_ready_mb']:.0f} | "
                        f"{row['rss_after_mb']:.0f} | {row['pss_after_mb']:.0f} | {row['peak_mb']:.0f} | "
                        f"{row['tensorflow']} |",
                        flush=True,
                    )
    return 0


def measure(tree: Path, store: Path, predictions: int, scratch: Path, workers: int = 1) -> dict:
    home = Path(tempfile.mkdtemp(dir=scratch, prefix="home-"))  # No cache left by an earlier start.
    port = _free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "MONITORING_DB": f"sqlite:///{home}/monitoring.db",  # A new log, not the tree's data/monitoring.db.
        "MODELS_DIR": str(store),
        "PORT": str(port),
        "POLL_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "warning",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(tree),
        "WORKERS": str(workers),
    }
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(base, process, in_a_row=1 if workers == 1 else 10) - start
        rss_ready = _memory(process.pid)["VmRSS"]
        new_connections = httpx.Limits(max_keepalive_connections=0)  # So that every worker serves some.
        with httpx.Client(base_url=base, timeout=30, limits=new_connections) as client:
            for _ in range(predictions):
                client.post("/predict", files={"file": ("x.png", SAMPLE.read_bytes())}).raise_for_status()
        memory = _memory(process.pid)
        tensorflow = any("libtensorflow" in Path(f"/proc/{pid}/maps").read_text() for pid in _family(process.pid))
        return {
            "ready_s": ready,
            "rss_ready_mb": rss_ready / 1024,
            "rss_after_mb": memory["VmRSS"] / 1024,
            "pss_after_mb": memory["Pss"] / 1024,
            "peak_mb": memory["VmHWM"] / 1024,
            "tensorflow": "yes" if tensorflow else "no",
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(base: str, process: subprocess.Popen[bytes], in_a_row: int) -> float:
    """When `in_a_row` 200s of /readyz in a row came back, each on a new connection (any worker may answer)."""
    deadline, streak = time.monotonic() + 300, 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            streak = streak + 1 if httpx.get(f"{base}/readyz", timeout=2).status_code == 200 else 0
        except httpx.TransportError:
            streak = 0
        if streak == in_a_row:
            return time.perf_counter()
        time.sleep(0.02 if streak == 0 else 0)
    raise SystemExit("server did not become ready")


def _memory(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and Pss in KB, each summed over the process and every process it started."""
    totals = dict.fromkeys(("VmRSS", "VmHWM", "Pss"), 0)
    for member in _family(pid):
        status = Path(f"/proc/{member}/status").read_text() + Path(f"/proc/{member}/smaps_rollup").read_text()
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in totals:
                totals[key] += int(value.split()[0])
    return totals


def _family(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's workers, multiprocessing's resource tracker)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # Gone since the listing.
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    family, frontier = [], [pid]
    while frontier:
        member = frontier.pop()
        family.append(member)
        frontier.extend(children.get(member, []))
    return family


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    raise SystemExit(main())
