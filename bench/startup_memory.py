"""Start-up and memory of `python -m app`: ready time, resident memory, and both as the store grows.

    python bench/startup_memory.py                          # this checkout, the committed store
    python bench/startup_memory.py --trees /tmp/old,.       # another checkout (git worktree) first: before/after

For each source tree (each runs its own `python -m app` with its own code), twice over:
the committed store, then a copy with `--extra` more versions of the default model
(copies of its newest version). Each start gets an empty home (no cache from an earlier
start) and this interpreter; it measures seconds from process start to the first 200 of
/readyz, resident memory (VmRSS) once ready and after `--predictions` /predict calls,
the peak (VmHWM), and whether TensorFlow was imported (its shared library mapped in the
process). Prints the CPU flags, since machines differ between runs.
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
    args = parser.parse_args()
    print(machine.describe(), flush=True)
    print("\n| tree | store | ready s | RSS ready MB | RSS after predictions MB | peak MB | tensorflow loaded |")
    print("|---|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as scratch:
        grown = Path(scratch) / "grown"
        shutil.copytree(args.models_dir, grown, ignore=shutil.ignore_patterns(".*"))
        newest = max(int(p.name) for p in (grown / args.model).iterdir() if p.name.isdigit())
        for offset in range(1, args.extra + 1):
            shutil.copytree(grown / args.model / str(newest), grown / args.model / str(newest + offset))
        for tree in args.trees.split(","):
            for label, store in (("committed", args.models_dir), (f"+{args.extra} versions", grown)):
                row = measure(Path(tree).resolve(), store, args.predictions, Path(scratch))
                print(
                    f"| {tree} | {label} | {row['ready_s']:.2f} | {row['rss_ready_mb']:.0f} | "
                    f"{row['rss_after_mb']:.0f} | {row['peak_mb']:.0f} | {row['tensorflow']} |",
                    flush=True,
                )
    return 0


def measure(tree: Path, store: Path, predictions: int, scratch: Path) -> dict:
    home = Path(tempfile.mkdtemp(dir=scratch, prefix="home-"))  # No cache left by an earlier start.
    port = _free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "MODELS_DIR": str(store),
        "PORT": str(port),
        "POLL_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "warning",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(tree),
    }
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "app"], cwd=tree, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(base, process) - start
        rss_ready = _status(process.pid)["VmRSS"]
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(predictions):
                client.post("/predict", files={"file": ("x.png", SAMPLE.read_bytes())}).raise_for_status()
        status = _status(process.pid)
        tensorflow = "libtensorflow" in Path(f"/proc/{process.pid}/maps").read_text()
        return {
            "ready_s": ready,
            "rss_ready_mb": rss_ready / 1024,
            "rss_after_mb": status["VmRSS"] / 1024,
            "peak_mb": status["VmHWM"] / 1024,
            "tensorflow": "yes" if tensorflow else "no",
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> float:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return time.perf_counter()
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise SystemExit("server did not become ready")


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


if __name__ == "__main__":
    raise SystemExit(main())
