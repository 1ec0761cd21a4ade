"""Classify uploaded images."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel

from app.dataplane import Inference
from app.decoding import ImageError, PixelBudget
from app.deps import DataPlaneDep, LabelQuery, SettingsDep, VersionQuery
from app.disconnects import unless_disconnected
from app.errors import InvalidRequest, status_for
from app.schemas import BatchItem, BatchPrediction, ClassProbability, ErrorResponse, Prediction
from app.uploads import Decoder

router = APIRouter(tags=["predict"])

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The file is empty, truncated or corrupt, or the request contradicts itself (version and label).",
        404: "Unknown model or version.",
        413: "The body or the image's declared size is over the limit.",
        415: "Not a supported image format.",
        503: "The model is still loading or failed to load.",
    }.items()
}
ModelQuery = Annotated[str | None, Query(description="Model name; default: DEFAULT_MODEL or the most accurate.")]
TopKQuery = Annotated[int, Query(ge=1, le=10, description="How many of the most probable classes to list.")]


@router.post("/predict", response_model=Prediction, responses=ERRORS)
async def predict_image(
    request: Request,
    dataplane: DataPlaneDep,
    file: Annotated[
        UploadFile, File(description="An image: PNG, JPEG, GIF, BMP or WebP.", json_schema_extra={"minLength": 1})
    ],
    model: ModelQuery = None,
    version: VersionQuery = None,
    label: LabelQuery = None,
    top_k: TopKQuery = 3,
) -> Response:
    """Classify one image into one of the ten CIFAR-10 classes."""
    upload = await file.read()
    answer = await unless_disconnected(request, dataplane.infer([upload], model, version, label, endpoint="predict"))
    return _json(_prediction(answer, 0, top_k))


@router.post("/predict/batch", response_model=BatchPrediction, responses=ERRORS)
async def predict_batch(
    request: Request,
    dataplane: DataPlaneDep,
    settings: SettingsDep,
    files: Annotated[
        list[UploadFile],
        File(description="Several images; each gets its own result or error.", json_schema_extra={"minItems": 1}),
    ],
    model: ModelQuery = None,
    version: VersionQuery = None,
    label: LabelQuery = None,
    top_k: TopKQuery = 3,
) -> Response:
    """Classify several images in one request; a bad file gets an error entry, not a failed request."""
    if len(files) > settings.max_batch_files:
        raise InvalidRequest(f"{len(files)} files sent; at most {settings.max_batch_files} per request")
    name, number = dataplane.resolve(model, version, label)  # An unknown model is a 404 before any decoding.
    budget = dataplane.decoder.budget()
    decoded = await unless_disconnected(
        request, asyncio.gather(*(_decode(upload, dataplane.decoder, budget) for upload in files))
    )
    images = [item for item in decoded if isinstance(item, np.ndarray)]
    # One call, so the micro-batcher runs the good images together, as one forward pass.
    work = dataplane.infer(images, name, number, endpoint="predict_batch")
    answer = await unless_disconnected(request, work) if images else None
    results: list[BatchItem] = []
    rows = iter(range(len(images)))  # The answer's rows, in the order of the good files.
    for upload, item in zip(files, decoded, strict=True):
        if isinstance(item, BatchItem):
            results.append(item)
        elif answer is not None:
            results.append(BatchItem(filename=upload.filename, prediction=_prediction(answer, next(rows), top_k)))
    return _json(BatchPrediction(model=name, version=number, results=results))


def _json(body: BaseModel) -> Response:
    """Serialise the already-validated model once, in pydantic's Rust core.

    Returned as a model, FastAPI would dump it to a dict, validate that against the
    response model and encode it again: three passes for every prediction. The
    response_model on the route still documents the schema.
    """
    return Response(body.model_dump_json(), media_type="application/json")


async def _decode(upload: UploadFile, decoder: Decoder, budget: PixelBudget) -> np.ndarray | BatchItem:
    """The file's pixels, or its error entry (also for a file past the request's pixel budget)."""
    try:
        return await decoder.decode(await upload.read(), budget)
    except ImageError as error:
        return BatchItem(filename=upload.filename, error=str(error), status=status_for(error))


def _prediction(answer: Inference, row: int, top_k: int) -> Prediction:
    probabilities = answer.probabilities[row].tolist()
    names = answer.class_names
    ranked = sorted(range(len(names)), key=lambda index: -probabilities[index])  # Stable: ties keep label order.
    best = ranked[0]
    # Built from values this function produced itself, so pydantic's validation is skipped (model_construct).
    return Prediction.model_construct(
        prediction_id=answer.prediction_ids[row],
        model=answer.model,
        version=answer.version,
        class_index=best,
        class_name=names[best],
        probability=probabilities[best],
        top_k=[
            ClassProbability.model_construct(index=i, name=names[i], probability=probabilities[i])
            for i in ranked[:top_k]
        ],
        probabilities=dict(zip(names, probabilities, strict=True)),
        ood_score=None if answer.ood_scores is None else float(answer.ood_scores[row]),
        in_distribution=None if answer.in_distribution is None else bool(answer.in_distribution[row]),
    )
