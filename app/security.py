"""Response headers that keep a browser from misreading what the service sends.

Pure ASGI (it only edits the response's first message), so the prediction path pays
next to nothing for it. Every response gets `nosniff`, no referrer and cannot be framed;
the web page gets a strict Content-Security-Policy (it loads only its own script, styles
and images, plus the `blob:` preview of the user's own file, nothing inline) and every
other response (JSON, images, metrics) one that allows nothing, except the API
documentation pages, which load FastAPI's viewers from their CDN.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_PATHS = ("/",)
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")  # Scripts from a CDN and inline: no policy.
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
RESPONSE_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", OTHER_POLICY),
)


def policy_for(path: str) -> str | None:
    if path in PAGE_PATHS:
        return PAGE_POLICY
    return None if path in DOCS_PATHS else OTHER_POLICY


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope["path"])
        extra = [
            (name.encode(), value.encode()) for name, value in RESPONSE_HEADERS if name != "content-security-policy"
        ]
        if policy is not None:
            extra.append((b"content-security-policy", policy.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
