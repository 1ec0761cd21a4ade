"""Heavy JSON bodies cannot hold the event loop: each is refused with a 413 as soon as its first ~750 KB
pass MAX_JSON_VALUES (never parsed; the connection closed rather than the rest read), and the service
keeps answering everyone else meanwhile."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.utils.servers import server_process

pytestmark = pytest.mark.reliability

# 9.9 MB of `[[], [], ...]`, the worst case the first probing round found: 3.85 s stalls with four clients.
HEAVY = b'{"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3], "data": [' + b"[]," * 3_300_000
HEAVY += b"[]]}]}"
HEAVY_V1 = b'{"instances": [' + b"[]," * 3_300_000 + b"[]]}"
CLIENTS = 8
PROBES = 300  # Every 50 ms: over 100 probes the p99 is a single sample.
FLOOD_SECONDS = 30  # Longer than the probes take.
# The flooding clients run in a process of their own, as they would on other machines: in the test's
# process their eight threads would hold its GIL and delay the probe itself, not the service.
FLOOD = """
import json, sys, threading, time
from collections import Counter
import httpx
from tests.reliability.test_heavy_json import CLIENTS, HEAVY, HEAVY_V1
url, seconds = sys.argv[1], float(sys.argv[2])
statuses = Counter()
def flood(path, body):
    with httpx.Client(timeout=60) as client:
        while time.monotonic() < deadline:
            try:
                statuses[client.post(url + path, content=body).status_code] += 1
            except httpx.HTTPError as error:  # A reset connection, a lost answer: counted, and the test fails.
                statuses[type(error).__name__] += 1
deadline = time.monotonic() + seconds
targets = [("/v2/models/model_1/infer", HEAVY), ("/v1/models/model_1:predict", HEAVY_V1)]
threads = [threading.Thread(target=flood, args=targets[i % 2]) for i in range(CLIENTS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(statuses))
"""


def test_heavy_json_gets_413_unparsed_and_health_stays_fast(tiny_store: Path, tmp_path: Path) -> None:
    with server_process(tiny_store, tmp_path / "server.log") as server:
        command = [sys.executable, "-c", FLOOD, server.url, str(FLOOD_SECONDS)]
        flood = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
        time.sleep(1.5)
        latencies = []
        with httpx.Client(timeout=30) as probe:
            for _ in range(PROBES):
                started = time.perf_counter()
                assert probe.get(f"{server.url}/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        output, _ = flood.communicate(timeout=120)
    statuses = Counter(json.loads(output))
    p99 = statistics.quantiles(latencies, n=100)[98]
    p50 = statistics.median(latencies)
    print(f"/healthz under {CLIENTS} heavy-JSON clients: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; {statuses}")
    assert statuses and set(statuses) == {"413"}, statuses
    # Before the cap, parsing them held the loop for seconds (3.85 s with four clients); reading every body
    # before refusing it, p99 85-112 ms. Now 42.9 and 43.3 ms here over 300 probes, on two cores shared with
    # the clients (the goal: 50 ms; over 100 probes the p99 is one sample and ranged 41-73 ms in 7 runs);
    # the bound leaves a busier CI machine room and still fails the code without the cap.
    assert p99 < 0.25, f"/healthz p99 {p99 * 1000:.0f} ms while heavy JSON arrives"
