"""Connections that never finish their headers are closed; the service keeps answering meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.utils.servers import server_process

pytestmark = pytest.mark.reliability

STALLED = 200


def _closed_by_server(connection: socket.socket) -> bool:
    try:
        connection.send(b"X")  # Slowloris: one more header byte.
        return connection.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError, TimeoutError):
        return True
    except BlockingIOError:
        return False


def test_stalled_and_trickling_connections_are_closed_after_the_header_deadline(
    tiny_store: Path, tmp_path: Path
) -> None:
    with server_process(tiny_store, tmp_path / "server.log", HEADER_TIMEOUT_SECONDS="2") as server:
        port = int(server.url.rsplit(":", 1)[1])
        stalled = []
        for _ in range(STALLED):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            connection.setblocking(False)
            stalled.append(connection)
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200  # Not starved by them.
        open_after_one_second = [c for c in stalled if not _closed_by_server(c)]
        time.sleep(max(0.0, started + 4 - time.monotonic()))
        still_open = [c for c in stalled if not _closed_by_server(c)]
        for connection in stalled:
            connection.close()

    assert len(open_after_one_second) == STALLED, "closed before the deadline"
    assert still_open == [], f"{len(still_open)} of {STALLED} stalled connections outlived the 2 s deadline"


def test_shutdown_under_load_finishes_within_seconds(tiny_store: Path, tmp_path: Path) -> None:
    png = (Path(__file__).parents[2] / "app" / "static" / "samples" / "test_00000_cat.png").read_bytes()
    with server_process(tiny_store, tmp_path / "server.log") as server:
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    try:
                        client.post(f"{server.url}/predict", files={"file": ("x.png", png)})
                    except httpx.TransportError:
                        return

        threads = [threading.Thread(target=hammer) for _ in range(32)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        started = time.monotonic()
        server.process.terminate()
        server.process.wait(timeout=30)
        took = time.monotonic() - started
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert took < 10, f"SIGTERM under load took {took:.1f} s"


def test_a_trickled_body_is_answered_408_at_the_body_deadline(tiny_store: Path, tmp_path: Path) -> None:
    with server_process(tiny_store, tmp_path / "server.log", BODY_TIMEOUT_SECONDS="2") as server:
        port = int(server.url.rsplit(":", 1)[1])
        trickling = []
        for _ in range(20):
            connection = socket.create_connection(("127.0.0.1", port))
            connection.sendall(b"POST /v2/models/model_1/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            trickling.append(connection)
        started = time.monotonic()
        answers = []
        for connection in trickling:
            connection.settimeout(10)
            received = b""
            while True:
                try:
                    connection.send(b"B")  # One byte a second, for as long as the server listens.
                    chunk = connection.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    break
                except TimeoutError:
                    break
                if not chunk:
                    break
                received += chunk
            answers.append(received)
            connection.close()
        took = time.monotonic() - started
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    print(f"20 trickling clients answered 408 and closed {took:.1f} s after they started (deadline 2 s)")
    assert took < 8, f"trickling clients were held {took:.1f} s past a 2 s body deadline"
    assert all(answer.startswith(b"HTTP/1.1 408") and b"body deadline" in answer for answer in answers), answers[:2]
