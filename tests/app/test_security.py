"""Security headers on every response: nosniff, no referrer, no framing, a Content-Security-Policy that
is strict on the page and allows nothing elsewhere (but on the documentation pages)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_the_page_has_a_strict_content_security_policy(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_every_api_answer_carries_the_headers(client: TestClient, png_bytes: bytes) -> None:
    answers = (
        client.get("/models"),
        client.post("/predict", files={"file": ("a.png", png_bytes)}),
        client.get("/no-such-path"),
        client.post("/v2/models/model_1/infer", content=b"{"),
        client.get("/metrics"),
    )
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY" and response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_api_documentation_loads_nothing_from_elsewhere(client: TestClient) -> None:
    """Swagger UI and ReDoc work on a deployment without internet: every script, style and icon they
    name is served by the service, and their policy lets the browser load nothing from anywhere else."""
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert assets and all(url.startswith("/") for url in assets), assets
        for url in assets:
            if url != "/openapi.json":
                assert client.get(url).status_code == 200, url
    assert "swagger-ui" in client.get("/docs").text and "redoc" in client.get("/redoc").text
