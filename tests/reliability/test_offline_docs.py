"""The API documentation works on a deployment without internet: /docs and /redoc name only files the
service itself serves (Swagger UI and ReDoc from fastapi-offline), every one of them is there, and
they carry the security headers (and no `server` banner) like every other response.
Before, both pages loaded their viewers from a CDN and were blank offline (tests/test_browser.py renders
them in Chromium with every request off the service aborted)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.utils.servers import server_process

pytestmark = pytest.mark.reliability


def test_the_documentation_pages_and_everything_they_load_come_from_the_service(
    tiny_store: Path, tmp_path: Path
) -> None:
    with server_process(tiny_store, tmp_path / "server.log") as server, httpx.Client(base_url=server.url) as client:
        for path, viewer in (("/docs", "swagger-ui"), ("/redoc", "redoc")):
            page = client.get(path)
            assert page.status_code == 200 and viewer in page.text
            # No `server: uvicorn` banner; the security headers here too, with the documentation's own policy.
            assert "server" not in page.headers and page.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert assets and all(url.startswith("/") for url in assets), f"{path} loads {assets}"
            for url in assets:
                if url != "/openapi.json":
                    response = client.get(url)
                    assert response.status_code == 200 and len(response.content) > 1000, url
