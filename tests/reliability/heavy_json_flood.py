"""The heavy-JSON flood, run as a process of its own (`python -m tests.reliability.heavy_json_flood URL
SECONDS`), as the clients would be on other machines: CLIENTS threads post 9.9 MB bodies of `[[], [], ...]`
until SECONDS pass, then print a JSON count of the answers' statuses (and of errors by type).

It imports httpx only: importing the service as well would cost the clients' process memory and start-up
time on the two cores it shares with the server under test.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

import httpx

# 9.9 MB of `[[], [], ...]`, the worst case the first probing round found: 3.85 s stalls with four clients.
HEAVY = b'{"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3], "data": [' + b"[]," * 3_300_000
HEAVY += b"[]]}]}"
HEAVY_V1 = b'{"instances": [' + b"[]," * 3_300_000 + b"[]]}"
CLIENTS = 8
TARGETS = [("/v2/models/model_1/infer", HEAVY), ("/v1/models/model_1:predict", HEAVY_V1)]


def flood(url: str, deadline: float, path: str, body: bytes, statuses: Counter[str]) -> None:
    with httpx.Client(timeout=60) as client:
        while time.monotonic() < deadline:
            try:
                statuses[str(client.post(url + path, content=body).status_code)] += 1
            except httpx.HTTPError as error:  # A reset connection, a lost answer: counted, and the test fails.
                statuses[type(error).__name__] += 1


def main(url: str, seconds: float) -> None:
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=flood, args=(url, deadline, *TARGETS[i % len(TARGETS)], statuses))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(statuses))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
