"""Numbers and JSON from the wire: ASCII digits only, bounded; heavy JSON refused before it is parsed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.errors import InvalidRequest, JsonTooLarge
from app.parsing import ascii_integer, is_count, load_json, receive_json_body


@pytest.mark.parametrize(("raw", "expected"), [("12", 12), (b" 7 ", 7), ("²", None), ("-1", None), ("9" * 19, None)])
def test_only_short_ascii_digits_are_integers(raw: str | bytes, expected: int | None) -> None:
    assert ascii_integer(raw) == expected


def test_a_boolean_is_not_a_count() -> None:
    assert is_count(3) and not is_count(True) and not is_count(-1) and not is_count(3.0)


@pytest.mark.parametrize(("text", "message"), [(b"[" * 100_000, "nested too deeply"), (b"1" * 5000, "too long")])
def test_json_that_python_chokes_on_is_a_clear_invalid_request(text: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        load_json(text, "the body")


def test_a_heavy_body_is_refused_as_soon_as_its_json_passes_the_cap() -> None:
    """Chunks after the one that passes the cap are never asked for (uvicorn drops them unkept)."""
    delivered = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal delivered
        for _ in range(100):
            delivered += 1
            yield b"[]," * 1000

    with pytest.raises(JsonTooLarge, match="MAX_JSON_VALUES"):
        asyncio.run(receive_json_body(chunks(), "the body", max_values=5000))
    assert delivered == 3


def test_only_the_json_part_counts_and_a_binary_tail_passes() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": [1, 2]}'
        yield b",[{" * 10_000  # Binary tensor data after the JSON header: not JSON, not counted.

    body = asyncio.run(receive_json_body(chunks(), "the header", max_values=10, json_bytes=13))
    assert len(body) == 13 + 30_000
