"""Security headers on every response: nosniff, no referrer, no framing, a Content-Security-Policy that
is strict on the page and allows nothing elsewhere (but on the documentation pages)."""

from __future__ import annotations

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


def test_the_api_documentation_may_load_only_the_services_own_files(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        policy = client.get(path).headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy and "frame-ancestors 'none'" in policy
