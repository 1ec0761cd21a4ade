"""Hostile uploads against a real server: a generated bad-input corpus and a seeded mutation fuzz.

Every answer must be a 2xx or a 4xx with a JSON body, within the client's timeout:
no 5xx, no hang, and the server still classifies a good image afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import zlib
from collections import Counter
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.utils.data import SAMPLES
from tests.utils.servers import ServerProcess

pytestmark = pytest.mark.reliability

CASES_PER_MUTATION = 400  # x 5 mutations = 2,000 fuzzed uploads.
CONCURRENCY = 16
HANG_SECONDS = 60.0  # An answer slower than this counts as a hang.
CLIENT_ERRORS = {400, 413, 415, 422}


def _encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def _valid_images() -> list[bytes]:
    """Real test images in the formats users send, plus a larger photo-sized JPEG."""
    samples = sorted(SAMPLES.glob("*.png"))[:10]
    images = [Image.open(path).convert("RGB") for path in samples]
    found = [path.read_bytes() for path in samples]
    found += [_encoded(image, "JPEG", quality=90) for image in images]
    found += [_encoded(images[0], kind) for kind in ("GIF", "BMP", "WEBP", "TIFF")]
    found.append(_encoded(images[1].resize((640, 480)), "JPEG", quality=85, progressive=True))
    return found


def _png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def _png(width: int, height: int, *, crc: int | None = None, mode: int = 2) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    rows = zlib.compress(b"".join(b"\0" + b"\x80" * (width * 3) for _ in range(min(height, 4))))
    chunks = _png_chunk(b"IHDR", header, crc) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


# What users (and attackers) send that is not a usable image, each with the status it must get.
CORPUS: dict[str, tuple[bytes, int]] = {
    "empty": (b"", 400),
    "one byte": (b"\xff", 415),
    "plain text": (b"hello, this is not an image\n" * 10, 415),
    "html": (b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", 415),
    "json": (json.dumps({"instances": [[0, 1, 2]]}).encode(), 415),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32"/></svg>', 415),
    "zip": (b"PK\x03\x04" + b"\0" * 100, 415),
    "png signature only": (b"\x89PNG\r\n\x1a\n", 400),
    "png with a corrupt IHDR checksum": (_png(32, 32, crc=0), 400),
    "png declaring 100000 x 100000": (_png(100_000, 100_000), 413),
    "png declaring 0 x 0": (_png(0, 0), 400),
    "jpeg header only": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", 400),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_input_corpus_gets_its_4xx(live: ServerProcess, case: str) -> None:
    body, status = CORPUS[case]
    response = httpx.post(f"{live.url}/predict", files={"file": ("upload", body)}, timeout=HANG_SECONDS)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


def _bit_flips(data: bytes, rng: np.random.Generator) -> bytes:
    mutated = bytearray(data)
    for position in rng.integers(0, len(mutated), rng.integers(1, 20)):
        mutated[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(mutated)


def _truncation(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def _splice(data: bytes, rng: np.random.Generator, others: list[bytes]) -> bytes:
    other = others[int(rng.integers(0, len(others)))]
    cut, start = int(rng.integers(0, len(data))), int(rng.integers(0, len(other)))
    return data[:cut] + other[start : start + int(rng.integers(1, 4096))]


def _header_overwrite(data: bytes, rng: np.random.Generator) -> bytes:
    """Random bytes over the first 64: dimensions, colour types, markers, lengths."""
    mutated = bytearray(data)
    position = int(rng.integers(0, min(64, len(mutated) - 4)))
    mutated[position : position + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
    return bytes(mutated)


def _chunk_repeat(data: bytes, rng: np.random.Generator) -> bytes:
    start = int(rng.integers(0, len(data)))
    chunk = data[start : start + int(rng.integers(1, 512))]
    return data[:start] + chunk * int(rng.integers(2, 50)) + data[start:]


def _mutations(valid: list[bytes]) -> dict[str, Callable[[bytes, np.random.Generator], bytes]]:
    return {
        "bit flips": _bit_flips,
        "truncation": _truncation,
        "splice": lambda data, rng: _splice(data, rng, valid),
        "header overwrite": _header_overwrite,
        "chunk repeat": _chunk_repeat,
    }


async def _send_all(url: str, cases: list[tuple[str, bytes]]) -> list[tuple[str, int | str]]:
    """(mutation, status or 'hang'/'error: ...') for every case, CONCURRENCY at a time."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=HANG_SECONDS) as client:

        async def send(index: int, mutation: str, body: bytes) -> tuple[str, int | str]:
            async with limit:
                try:
                    if index % 4 == 3:  # Every fourth through the TF Serving protocol's b64 decoding.
                        payload = {"instances": [{"b64": base64.b64encode(body).decode()}]}
                        response = await client.post(f"{url}/v1/models/model_1:predict", json=payload)
                    else:
                        response = await client.post(f"{url}/predict", files={"file": ("fuzz", body)})
                except httpx.TimeoutException:
                    return mutation, "hang"
                response.json()  # Every answer is JSON, errors included.
                return mutation, response.status_code

        return await asyncio.gather(*(send(index, *case) for index, case in enumerate(cases)))


def test_seeded_mutation_fuzz_gets_no_5xx_and_no_hang(live: ServerProcess) -> None:
    rng = np.random.default_rng(2026)
    valid = _valid_images()
    cases = [
        (name, mutate(valid[int(rng.integers(0, len(valid)))], rng))
        for name, mutate in _mutations(valid).items()
        for _ in range(CASES_PER_MUTATION)
    ]

    outcomes = asyncio.run(_send_all(live.url, cases))

    table = Counter(outcomes)
    for (mutation, status), count in sorted(table.items(), key=str):
        print(f"fuzz: {mutation:16} {status}: {count}")
    assert len(outcomes) >= 2000
    unexpected = {key: count for key, count in table.items() if key[1] not in CLIENT_ERRORS | {200}}
    assert not unexpected, f"5xx, hangs or odd statuses: {unexpected}"
    good = httpx.post(f"{live.url}/predict", files={"file": ("cat.png", valid[0])}, timeout=HANG_SECONDS)
    assert good.status_code == 200
