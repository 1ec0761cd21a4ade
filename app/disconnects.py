"""Work for a client that went away stops: nothing keeps decoding or queueing for nobody.

A request's images are decoded one after another and then queued for the micro-batcher;
when its client disconnects (a timeout, a closed tab, a killed script), `unless_disconnected`
cancels that work: the image being decoded in a thread finishes (at most ~1 s for a 25 MP
photo), the rest are never decoded, and the batcher skips requests whose caller is gone.
gRPC needs none of this: grpc.aio cancels the handler itself when its caller cancels.

Watching costs two tasks per request on the hot path, so only bodies of WATCH_FROM_BYTES or
more are watched: a smaller one holds an image or a few, whose work ends within about a
second anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from app.errors import ClientDisconnected
from app.parsing import ascii_integer

logger = logging.getLogger(__name__)
T = TypeVar("T")
WATCH_FROM_BYTES = 256 * 1024


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it if the client disconnects first. The request's body must have been
    read already: from then on its next ASGI message can only be the disconnect."""
    declared = ascii_integer(request.headers.get("content-length"))
    if declared is not None and declared < WATCH_FROM_BYTES:
        return await work
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    logger.info("%s %s: the client went away; its remaining work was dropped", request.method, request.url.path)
    raise ClientDisconnected("the client disconnected before the answer was ready")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
