"""Numbers and JSON that arrive as text from the wire, read strictly: one home, so that every surface
answers a bad one with a 400 that says what is wrong, never a 500.

Python is generous where a server must not be: `str.isdigit()` accepts '²' (which `int()`
refuses), `int()` refuses more than 4,300 digits with a ValueError, `json.loads` raises
RecursionError on deep nesting and ValueError on such integers, and `True` is an `int`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from typing import Any

from app.errors import InvalidRequest, JsonTooLarge

MAX_DIGITS = 18  # Enough for any count or size a request can honestly carry (< 10^18).


def ascii_integer(raw: str | bytes | None, max_digits: int = MAX_DIGITS) -> int | None:
    """A non-negative integer written in ASCII digits only (no sign, no '²', surrounding spaces allowed),
    at most `max_digits` long; None for anything else."""
    if raw is None:
        return None
    text = (raw.decode("latin-1") if isinstance(raw, bytes) else raw).strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def is_count(value: Any, limit: int = 2**31) -> bool:
    """A JSON integer (not a boolean) between 0 and `limit`: a size, a count, a dimension."""
    return type(value) is int and 0 <= value <= limit


def json_values(data: bytes) -> int:
    """About how many values a JSON text holds: its commas, brackets and braces (strings such as base64
    image files hold none of them), counted at C speed without parsing (one pass of `translate`, about
    twice as fast as three `count`s)."""
    return len(data) - len(data.translate(None, b",[{"))


async def receive_json_body(
    chunks: AsyncIterable[bytes], what: str, max_values: int, json_bytes: int | None = None
) -> bytes:
    """A request body as it arrives, refused (JsonTooLarge) as soon as its JSON part (the first `json_bytes`
    bytes; the whole body for None) passes `max_values`: a flood of `[[],[],...]` is turned away after its
    first ~750 KB instead of after all 10 MB, and the 413 closes the connection (`errors.protocol_answer`),
    so the rest is never read."""
    received = bytearray()
    values = 0
    async for chunk in chunks:
        json_part = chunk if json_bytes is None else chunk[: max(0, json_bytes - len(received))]
        received += chunk
        values += json_values(json_part)
        if values > max_values:
            raise JsonTooLarge(
                f"{what} holds more than {max_values} JSON values (MAX_JSON_VALUES): send larger batches as "
                "binary tensor data (Open Inference Protocol) or as base64 image files"
            )
    return bytes(received)


def load_json(data: bytes | memoryview, what: str) -> Any:
    """Parse JSON, turning every way it can fail into an InvalidRequest naming `what` was sent.

    Parsing runs on the event loop and holds the GIL (a thread would not free the loop), and its
    time grows with the number of values, not of bytes: 250,000 values of the worst JSON
    (`[[],[],...]`) parse and convert in ~45 ms here, while a base64 photo of megabytes is one
    value. So the values are capped (MAX_JSON_VALUES) before this runs, by `receive_json_body` as
    the body arrives; larger batches of pixel lists belong in the binary tensor extension, photos
    as base64 image files.
    """
    data = bytes(data)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequest(f"{what} is not valid JSON ({error})") from error
    except RecursionError as error:
        raise InvalidRequest(f"{what} is nested too deeply") from error
    except ValueError as error:  # An integer literal over Python's 4,300-digit limit.
        raise InvalidRequest(f"{what} holds a number too long to read ({error})") from error
