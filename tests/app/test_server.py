"""A real uvicorn process on 127.0.0.1, talked to over TCP with httpx."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils.servers import serving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tiny_store, tmp_path_factory.mktemp("server") / "uvicorn.log") as base_url:
        yield base_url


def test_real_server_classifies_over_tcp(server: str, png_bytes: bytes) -> None:
    response = httpx.post(f"{server}/predict", files={"file": ("cat.png", png_bytes, "image/png")}, timeout=30)
    assert response.status_code == 200
    assert response.json()["model"] == "model_1"


def test_real_server_refuses_oversized_bodies_early(server: str) -> None:
    response = httpx.post(f"{server}/predict", files={"file": ("big.bin", b"\0" * (11 * 1024 * 1024))}, timeout=30)
    assert response.status_code == 413


def test_real_server_sends_no_banner(server: str) -> None:
    assert "server" not in httpx.get(f"{server}/healthz", timeout=10).headers


def test_real_server_serves_the_page_and_docs(server: str) -> None:
    assert "CIFAR-10" in httpx.get(f"{server}/", timeout=10).text
    assert httpx.get(f"{server}/docs", timeout=10).status_code == 200


def test_raw_dot_dot_paths_never_leave_the_store(server: str) -> None:
    """httpx normalises `..` away, so send the request line byte for byte."""
    host, port = server.removeprefix("http://").split(":")
    for target in ("/models/../../etc/passwd", "/models/..%2F..%2Fetc%2Fpasswd/metrics", "/models/../summary"):
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := connection.recv(65536):
                reply += chunk
        status_line = reply.split(b"\r\n", 1)[0]
        assert b" 404 " in status_line, (target, status_line)
        assert b"root:" not in reply
