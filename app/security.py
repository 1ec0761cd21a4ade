"""Response headers that keep a browser from misreading what the service sends.

Pure ASGI (it only edits the response's first message), so the prediction path pays
next to nothing for it. Every response gets `nosniff`; the web page also gets a strict
Content-Security-Policy: it loads only its own script, styles and images (plus the
`blob:` preview of the user's own file), nothing inline, and cannot be framed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_PATHS = ("/",)
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff")]
        if scope["path"] in PAGE_PATHS:
            extra += [
                (b"content-security-policy", PAGE_POLICY.encode()),
                (b"referrer-policy", b"no-referrer"),
                (b"x-frame-options", b"DENY"),
            ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
