"""Bad input gets a clear JSON error with the right status, and the server keeps serving."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.utils.images import png_declaring


def _detail(response) -> str:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["detail"]


def test_text_file_is_415(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert response.status_code == 415
    assert "not a supported image" in _detail(response)


def test_empty_file_is_400(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("empty.png", b"", "image/png")})
    assert response.status_code == 400
    assert "empty" in _detail(response)


def test_truncated_image_is_400(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((200, 200), 50).convert("RGB").save(buffer, format="PNG")
    response = client.post("/predict", files={"file": ("cut.png", buffer.getvalue()[:3000])})
    assert response.status_code == 400
    assert "truncated or corrupt" in _detail(response)


def test_missing_file_field_is_422(client: TestClient) -> None:
    response = client.post("/predict", files={"image": ("a.png", b"x")})
    assert response.status_code == 422


def test_body_over_the_limit_is_413_from_content_length(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("big.png", b"\0" * (10 * 1024 * 1024 + 1))})
    assert response.status_code == 413
    assert "MAX_UPLOAD_BYTES" in _detail(response)


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks():
        boundary = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        yield boundary
        for _ in range(12):
            yield b"\0" * (1024 * 1024)

    response = client.post("/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413


def test_decompression_bomb_is_413(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("bomb.png", png_declaring(50_000, 50_000))})
    assert response.status_code == 413
    assert "2500000000 pixels" in _detail(response)


def test_image_over_max_image_pixels_is_413(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("big.png", png_declaring(8000, 6000))})
    assert response.status_code == 413
    assert "8000x6000" in _detail(response)


def test_unknown_model_is_404(client: TestClient, png_bytes: bytes) -> None:
    response = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"model": "nope"})
    assert response.status_code == 404
    assert "nope" in _detail(response)


def test_unknown_version_is_404(client: TestClient, png_bytes: bytes) -> None:
    response = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"version": 99})
    assert response.status_code == 404


@pytest.mark.parametrize("top_k", [0, 11, "three"])
def test_bad_top_k_is_422(client: TestClient, png_bytes: bytes, top_k: object) -> None:
    response = client.post("/predict", files={"file": ("a.png", png_bytes)}, params={"top_k": top_k})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/models/%2E%2E",
        "/models/..%2F..%2Fetc/summary",
        "/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd/metrics",
        "/models/model_1/plots/..%2F..%2Fmetadata.json",
        "/models/model_1/plots/metadata.json",
        "/models/.checkpoints/metrics",
    ],
)
def test_path_tricks_are_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_server_keeps_serving_after_bad_input(client: TestClient, png_bytes: bytes) -> None:
    for payload in (b"", b"junk", png_declaring(60_000, 60_000)):
        client.post("/predict", files={"file": ("x", payload)})
    assert client.post("/predict", files={"file": ("a.png", png_bytes)}).status_code == 200
