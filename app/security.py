"""Response headers that keep a browser from misreading what the service sends.

Pure ASGI (it only edits the response's first message), so the prediction path pays
next to nothing for it. Every response gets `nosniff`, no referrer and cannot be framed;
the web page gets a strict Content-Security-Policy (it loads only its own script, styles
and images, plus the `blob:` preview of the user's own file, nothing inline) and every
other response (JSON, images, metrics) one that allows nothing, except the API
documentation pages: Swagger UI and ReDoc come from the service itself (fastapi-offline's
copies, under DOCS_ASSETS_URL) and start from FastAPI's inline script, so they may run
that and their own files, nothing from elsewhere.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_PATHS = ("/",)
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
DOCS_ASSETS_URL = "/static/api-docs"
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
RESPONSE_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", OTHER_POLICY),
)


def policy_for(path: str) -> str:
    if path in PAGE_PATHS:
        return PAGE_POLICY
    return DOCS_POLICY if path in DOCS_PATHS else OTHER_POLICY


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
        extra.append((b"content-security-policy", policy.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
