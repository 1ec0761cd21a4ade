"""Uploads: body-size limits enforced while the body streams in, and decoding within a memory budget."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import heap
from app.decoding import PixelBudget, decode_image
from app.parsing import ascii_integer

PROTOCOL_PREFIXES = ("/v1/", "/v2/")


class BodySizeLimit:
    """Answer 413 for bodies over `max_bytes`: at once when Content-Length says so,
    otherwise as soon as the streamed (for example chunked) body crosses the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = ascii_integer(dict(scope["headers"]).get(b"content-length"))
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, scope["path"])
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI re-raises HTTPException from body parsing, so this becomes a 413.
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request body is larger than the {self.max_bytes}-byte limit (MAX_UPLOAD_BYTES)"

    async def _refuse(self, send: Send, path: str) -> None:
        # The standard protocols (v1 TF Serving, v2 Open Inference) name the field "error".
        key = "error" if path.startswith(PROTOCOL_PREFIXES) else "detail"
        body = json.dumps({key: self._message()}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def decode_and_release(data: bytes, max_pixels: int, budget: PixelBudget | None = None) -> np.ndarray:
    """Decode, then hand the freed decode buffers back to the operating system (app/heap.py): a
    large image's buffers would otherwise keep the server at its peak."""
    try:
        return decode_image(data, max_pixels, None if budget is None else budget.charge)
    finally:
        heap.release_freed()


class Decoder:
    """Upload bytes to pixels within a memory budget.

    A CIFAR-sized PNG decodes in well under a millisecond, so small files decode inline (a
    thread hop would cost more). Larger ones go to the thread pool, never stalling the event
    loop, and at most `slots` of them at once: one near-limit image is about 160 MB while it
    decodes, so without a bound a burst of them (or one /predict/batch full of them) could
    take the process past its memory limit.
    """

    INLINE_BYTES = 16 * 1024

    def __init__(self, max_pixels: int, slots: int, max_request_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.max_request_pixels = max_request_pixels
        self._slots = asyncio.Semaphore(slots)

    def budget(self) -> PixelBudget:
        """A fresh budget for one request's images (pass it to each of its `decode` calls)."""
        return PixelBudget(self.max_request_pixels)

    async def decode(self, data: bytes, budget: PixelBudget | None = None) -> np.ndarray:
        if len(data) <= self.INLINE_BYTES:
            return decode_image(data, self.max_pixels, None if budget is None else budget.charge)
        async with self._slots:
            return await run_in_threadpool(decode_and_release, data, self.max_pixels, budget)
