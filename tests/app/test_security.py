"""Security headers: nosniff everywhere, a strict Content-Security-Policy on the page."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_the_page_has_a_strict_content_security_policy(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_api_answers_are_not_sniffed(client: TestClient, png_bytes: bytes) -> None:
    for response in (client.get("/models"), client.post("/predict", files={"file": ("a.png", png_bytes)})):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers  # The docs page needs its own scripts.
