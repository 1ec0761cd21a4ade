"""Hostile protocol requests against a real server: the numbers and JSON of the second probing round.

Unicode digits where a number belongs ('²' passes `str.isdigit()`, fails `int()`), integers
longer than Python reads (4,300 digits), JSON nested past the recursion limit, booleans where
integers belong, lengths that lie. Each class has a case that must get its 400 with a JSON
body; then a seeded fuzz of 5,000 requests mixing them into valid Open Inference Protocol and
TF Serving bodies must get no 5xx and no reset connection, and the server still answers.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest

from tests.utils.servers import ServerProcess

pytestmark = pytest.mark.reliability

FUZZ_REQUESTS = 5000
CONCURRENCY = 16
TIMEOUT = 60.0
PIXELS = np.zeros((1, 32, 32, 3), np.uint8).ravel().tolist()
V2_BODY: dict[str, Any] = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 32, 32, 3], "data": PIXELS}]}
V1_BODY: dict[str, Any] = {"instances": [np.zeros((32, 32, 3), np.uint8).tolist()]}
HUGE = "9" * 5000  # Past Python's 4,300-digit limit for int().
DEEP = "[" * 5000 + "]" * 5000

# (method path, headers, body) -> 400 each; before the fixes each was a 500 with the connection closed.
CASES: dict[str, tuple[str, dict[str, str], bytes]] = {
    "superscript version, v2": ("/v2/models/model_1/versions/\u00b2/infer", {}, json.dumps(V2_BODY).encode()),
    "arabic-indic version, v1": ("/v1/models/model_1/versions/\u0661:predict", {}, json.dumps(V1_BODY).encode()),
    "superscript header length": (
        "/v2/models/model_1/infer",
        {"Inference-Header-Content-Length": "\u00b2"},
        json.dumps(V2_BODY).encode(),
    ),
    "huge header length": ("/v2/models/model_1/infer", {"Inference-Header-Content-Length": HUGE}, b"{}"),
    "huge integer in the v2 body": (
        "/v2/models/model_1/infer",
        {},
        (
            '{"inputs": [{"name": "images", "datatype": "UINT8", "shape": [' + HUGE + ', 32, 32, 3], "data": []}]}'
        ).encode(),
    ),
    "huge integer in the v1 body": ("/v1/models/model_1:predict", {}, ('{"instances": [' + HUGE + "]}").encode()),
    "deep nesting, v2": ("/v2/models/model_1/infer", {}, DEEP.encode()),
    "deep nesting, v1": ("/v1/models/model_1:predict", {}, ('{"instances": ' + DEEP + "}").encode()),
    "boolean in the shape": (
        "/v2/models/model_1/infer",
        {},
        json.dumps({"inputs": [{**V2_BODY["inputs"][0], "shape": [True, 32, 32, 3]}]}).encode(),
    ),
    "boolean binary size": (
        "/v2/models/model_1/infer",
        {"Inference-Header-Content-Length": "120"},
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "UINT8",
                        "shape": [1, 32, 32, 3],
                        "parameters": {"binary_data_size": True},
                    }
                ]
            }
        ).encode(),
    ),
    "header length past the body": ("/v2/models/model_1/infer", {"Inference-Header-Content-Length": "999999"}, b"{}"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_class_of_odd_number_gets_a_400(live: ServerProcess, case: str) -> None:
    path, headers, body = CASES[case]
    response = httpx.post(f"{live.url}{path}", headers=utf8(headers), content=body, timeout=TIMEOUT)
    assert response.status_code in (400, 404), response.text  # 404: a version that is no number names none.
    assert response.json()
    assert response.headers["x-content-type-options"] == "nosniff"


def utf8(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as UTF-8 bytes: httpx sends str values only when they are ASCII."""
    return {name: value.encode() for name, value in headers.items()}


HOSTILE_VALUES: list[Any] = [True, False, None, -1, 2**64, 1e308, "\u00b2", "", [], {}, [[[[[]]]]], "A" * 1000]


def _mutated_json(body: dict[str, Any], rng: np.random.Generator) -> bytes:
    """Replace one value somewhere in the body with a hostile one, or splice in a raw hostile text."""
    text = json.dumps(_replace(json.loads(json.dumps(body)), rng))
    if rng.random() < 0.2:
        cut = int(rng.integers(0, len(text)))
        splice = [HUGE, DEEP[: int(rng.integers(1, 5000))], "\u00b2", "true", "]]]]", '"']
        text = text[:cut] + splice[int(rng.integers(0, len(splice)))] + text[cut:]
    return text.encode()


def _replace(node: Any, rng: np.random.Generator) -> Any:
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = list(node)[int(rng.integers(0, len(node)))]
        node[key] = _replace(node[key], rng)
        return node
    if isinstance(node, list) and node and rng.random() < 0.8:
        index = int(rng.integers(0, min(len(node), 8)))
        node[index] = _replace(node[index], rng)
        return node
    return HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]


def _request(rng: np.random.Generator) -> tuple[str, str, dict[str, str], bytes]:
    """(kind, path, headers, body) of one fuzzed request."""
    kind = int(rng.integers(0, 4))
    version = ["", "/versions/1", "/versions/\u00b2", f"/versions/{HUGE[:30]}", "/versions/0", "/versions/%C2%B2"][
        int(rng.integers(0, 6))
    ]
    if kind == 0:
        return "v2 body", f"/v2/models/model_1{version}/infer", {}, _mutated_json(V2_BODY, rng)
    if kind == 1:
        return "v1 body", f"/v1/models/model_1{version}:predict", {}, _mutated_json(V1_BODY, rng)
    if kind == 2:
        lengths = ["\u00b2", HUGE, "-1", "+12", "1e3", str(int(rng.integers(0, 100_000))), "0x10", "\u0661\u0662"]
        header = {"Inference-Header-Content-Length": lengths[int(rng.integers(0, len(lengths)))]}
        return "v2 header length", "/v2/models/model_1/infer", header, json.dumps(V2_BODY).encode()
    depth = int(rng.integers(100, 20_000))
    return "deep nesting", "/v2/models/model_1/infer", {}, ("[" * depth + "]" * int(rng.integers(0, depth))).encode()


async def _send_all(url: str, requests: list[tuple[str, str, dict[str, str], bytes]]) -> list[tuple[str, str]]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:

        async def send(kind: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
            async with limit:
                try:
                    response = await client.post(f"{url}{path}", headers=utf8(headers), content=body)
                except httpx.TimeoutException:
                    return kind, "hang"
                except httpx.TransportError as error:  # A reset or closed connection.
                    return kind, f"connection: {type(error).__name__}"
                response.json()  # Every answer is JSON.
                return kind, str(response.status_code)

        return await asyncio.gather(*(send(*request) for request in requests))


def test_protocol_fuzz_gets_no_5xx_and_no_reset(live: ServerProcess) -> None:
    rng = np.random.default_rng(31)
    requests = [_request(rng) for _ in range(FUZZ_REQUESTS)]
    outcomes = asyncio.run(_send_all(live.url, requests))
    table = Counter(outcomes)
    for (kind, status), count in sorted(table.items()):
        print(f"protocol fuzz: {kind:18} {status}: {count}")
    assert len(outcomes) == FUZZ_REQUESTS
    unexpected = {key: count for key, count in table.items() if key[1] not in {"200", "400", "404", "413", "422"}}
    assert not unexpected, f"5xx, resets or hangs: {unexpected}"
    good = httpx.post(f"{live.url}/v2/models/model_1/infer", json=V2_BODY, timeout=TIMEOUT)
    assert good.status_code == 200
