"""TensorFlow Serving REST routes under /v1: model status, metadata and :predict.

Versions are addressed as TF Serving does: `/v1/models/{name}`, `.../versions/{v}` or
`.../labels/{label}` (labels from the model's serving.json). Images go through the
same registry and micro-batcher as `/predict`; errors are `{"error": "..."}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.dataplane import PREDICTION_IDS, parse_version
from app.deps import DataPlaneDep, RegistryDep, SettingsDep
from app.disconnects import unless_disconnected
from app.errors import InvalidRequest, ModelNotFound, protocol_answer
from app.parsing import load_json, receive_json_body
from app.protocols import tf_serving
from app.protocols.open_inference import TensorError, output_tensors
from app.registry import LoadState, ModelRegistry

router = APIRouter(prefix="/v1/models", tags=["TensorFlow Serving REST (v1)"])
ERROR_SCHEMA = {"content": {"application/json": {"example": {"error": "Servable not found for request"}}}}
ERRORS: dict[int | str, dict[str, Any]] = {status: ERROR_SCHEMA for status in (400, 404, 413, 415, 503)}
# The body is read by hand (to answer in TF Serving's error shape), so FastAPI cannot describe it.
PREDICT_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": tf_serving.REQUEST_SCHEMA}}}
}
TF_STATES = {
    LoadState.LOADING: "LOADING",
    LoadState.LOADED: "AVAILABLE",
    LoadState.AVAILABLE: "AVAILABLE",  # Served: it loads on its first request.
    LoadState.FAILED: "END",
    LoadState.UNLOADED: "END",
}


# The :predict routes come first: `/{name}` would also match "model_1:predict", and an OPTIONS or
# wrong-method request must be told the methods of the route it meant (Allow: POST).
@router.post("/{name}:predict", responses=ERRORS, openapi_extra=PREDICT_BODY)
@router.post("/{name}/versions/{version}:predict", responses=ERRORS, openapi_extra=PREDICT_BODY)
@router.post("/{name}/labels/{label}:predict", responses=ERRORS, openapi_extra=PREDICT_BODY)
async def predict(
    name: str,
    request: Request,
    dataplane: DataPlaneDep,
    settings: SettingsDep,
    version: str | None = None,
    label: str | None = None,
) -> Response:
    """Classify `instances` (row format) or `inputs` (columnar): b64 image files or 32x32x3 pixel lists."""

    async def work() -> Response:
        number = parse_version(version)
        dataplane.resolve(name, number, label)  # An unknown model is a 404 before its body is read.
        try:
            received = await receive_json_body(request.stream(), "the request body", settings.max_json_values)
            body = load_json(received, "the request body")
        except InvalidRequest as error:
            raise TensorError(str(error)) from error
        images, row = tf_serving.parse_predict(body, settings.max_infer_batch)
        answer = await unless_disconnected(request, dataplane.infer(images, name, number, label, endpoint="v1"))
        headers = {PREDICTION_IDS: ",".join(answer.prediction_ids)}
        outputs = output_tensors(answer.probabilities, answer.ood_scores, answer.in_distribution)
        return JSONResponse(tf_serving.predict_response(outputs, row), headers=headers)

    return await protocol_answer(work)


@router.get("/{name}", responses=ERRORS)
@router.get("/{name}/versions/{version}", responses=ERRORS)
@router.get("/{name}/labels/{label}", responses=ERRORS)
async def read_model_status(
    name: str, registry: RegistryDep, version: str | None = None, label: str | None = None
) -> Response:
    """`model_version_status`: every version's state, or the one addressed."""

    async def work() -> Response:
        states = registry.states(name)
        if not states:
            raise ModelNotFound(f"Servable not found for request: model {name!r}")
        chosen = sorted(states)
        if version is not None or label is not None:
            chosen = [_resolve(registry, name, version, label)]
        return JSONResponse(
            tf_serving.version_status(
                {v: (TF_STATES[states[v].state], states[v].error or "") for v in chosen if v in states}
            )
        )

    return await protocol_answer(work)


@router.get("/{name}/metadata", responses=ERRORS)
@router.get("/{name}/versions/{version}/metadata", responses=ERRORS)
@router.get("/{name}/labels/{label}/metadata", responses=ERRORS)
async def read_model_metadata(
    name: str, registry: RegistryDep, version: str | None = None, label: str | None = None
) -> Response:
    """The serving_default signature: uint8 images [-1, 32, 32, 3] in, probabilities [-1, 10] out."""

    async def work() -> Response:
        model, number = registry.resolve(name, parse_version(version), label)
        novelty = registry.artifact(model, number).metadata.novelty is not None
        return JSONResponse(tf_serving.metadata(model, number, novelty))

    return await protocol_answer(work)


def _resolve(registry: ModelRegistry, name: str, version: str | None, label: str | None) -> int:
    """The version a /versions/ or /labels/ path names (it need not be loaded, to report its state)."""
    if label is not None:
        return registry.resolve(name, label=label)[1]
    number = parse_version(version)
    if number is None or number not in registry.states(name):
        raise ModelNotFound(f"Servable not found for request: model {name!r} version {version}")
    return number
