"""Open Inference Protocol (KServe V2 / Triton) REST routes under /v2.

Thin: the protocol's parsing and encoding live in `app.protocols.open_inference`;
images go through the same registry and micro-batcher as `/predict`. Errors follow
the protocol: `{"error": "..."}` with the domain error's status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app import __version__
from app.dataplane import PREDICTION_IDS, parse_version
from app.deps import DataPlaneDep, SettingsDep
from app.disconnects import unless_disconnected
from app.errors import protocol_answer
from app.parsing import ascii_integer, receive_json_body
from app.protocols import open_inference as oip

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (v2)"])
HEADER_LENGTH = "inference-header-content-length"
ERROR_SCHEMA = {"content": {"application/json": {"example": {"error": "unknown model 'x'"}}}}
ERRORS: dict[int | str, dict[str, Any]] = {status: ERROR_SCHEMA for status in (400, 404, 413, 503)}
# The body is read by hand (JSON, or a JSON header followed by binary tensor data), so FastAPI cannot
# describe it; the binary form's header length travels in Inference-Header-Content-Length.
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": oip.REQUEST_SCHEMA},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get("/health/live", responses=ERRORS)
async def read_live() -> dict[str, bool]:
    """The server is up."""
    return {"live": True}


@router.get("/health/ready", responses=ERRORS)
async def read_ready(dataplane: DataPlaneDep) -> Response:
    """Ready once the initial scan loaded a model that answers by default (503 with ready: false before)."""
    ready = dataplane.server_ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("")
async def read_server_metadata() -> dict[str, Any]:
    """Server name, version and the protocol extensions it supports."""
    return {"name": oip.SERVER_NAME, "version": __version__, "extensions": list(oip.EXTENSIONS)}


@router.get("/models/{name}", responses=ERRORS)
@router.get("/models/{name}/versions/{version}", responses=ERRORS)
async def read_model_metadata(name: str, dataplane: DataPlaneDep, version: str | None = None) -> Response:
    """Inputs and outputs with datatypes and shapes (-1: any batch size)."""

    async def work() -> Response:
        return JSONResponse(dataplane.model_metadata(name, parse_version(version)))

    return await protocol_answer(work)


@router.get("/models/{name}/ready", responses=ERRORS)
@router.get("/models/{name}/versions/{version}/ready", responses=ERRORS)
async def read_model_ready(name: str, dataplane: DataPlaneDep, version: str | None = None) -> Response:
    """200 with ready: true when that version (default: the model's default) is loaded."""

    async def work() -> Response:
        ready = dataplane.model_ready(name, parse_version(version))
        return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)

    return await protocol_answer(work)


@router.post("/models/{name}/infer", responses=ERRORS, openapi_extra=INFER_BODY)
@router.post("/models/{name}/versions/{version}/infer", responses=ERRORS, openapi_extra=INFER_BODY)
async def infer(
    name: str,
    request: Request,
    dataplane: DataPlaneDep,
    settings: SettingsDep,
    version: str | None = None,
) -> Response:
    """Classify UINT8 pixels or BYTES image files; JSON or binary tensors (Triton's extension).

    The body is read raw: clients such as tritonclient send binary data after the JSON
    header and no Content-Type.
    """

    async def work() -> Response:
        number = parse_version(version)
        dataplane.resolve(name, number)  # An unknown model is a 404 before its body is read.
        header_length = _header_length(request.headers.get(HEADER_LENGTH))
        body = await receive_json_body(
            request.stream(), "the inference header", settings.max_json_values, header_length
        )
        parsed = oip.parse_request(body, header_length, settings.max_infer_batch)
        images = parsed.pixels if parsed.pixels is not None else parsed.files or []
        answer = await unless_disconnected(request, dataplane.infer(images, name, number, endpoint="v2"))
        values = oip.output_tensors(answer.probabilities, answer.ood_scores, answer.in_distribution)
        body, json_length = oip.response_body(parsed, values, answer.model, answer.version)
        headers = {PREDICTION_IDS: ",".join(answer.prediction_ids)}
        if json_length is None:
            return Response(body, media_type="application/json", headers=headers)
        headers["Inference-Header-Content-Length"] = str(json_length)
        return Response(body, media_type="application/octet-stream", headers=headers)

    return await protocol_answer(work)


def _header_length(raw: str | None) -> int | None:
    if raw is None:
        return None
    length = ascii_integer(raw)
    if length is None:
        raise oip.TensorError(f"Inference-Header-Content-Length must be a byte count, got {raw[:40]!r}")
    return length
