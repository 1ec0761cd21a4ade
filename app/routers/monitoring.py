"""Live monitoring: feedback on logged predictions, and what the prediction log says (drift, live accuracy)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BeforeValidator
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app import metrics
from app.config import Settings
from app.deps import DataPlaneDep, SettingsDep
from app.errors import ModelNotFound, ModelNotReady
from app.monitoring.log import PredictionLog, UnknownPrediction
from app.monitoring.report import DriftRule, Reference, summarize
from app.registry import ModelRegistry
from app.schemas import FeedbackAnswer, FeedbackRequest, MonitoringReport

router = APIRouter(tags=["monitoring"])
GAUGE_REFRESH_SECONDS = 30.0
# The refresh scans the whole window (~3.4 us a row on SQLite here), which grows with traffic: 24 hours at
# 350 answers a second would take minutes. So the pause after a refresh grows with what it took, keeping
# the refreshing to this share of the time; the gauges are staler on a busy log, the service unharmed.
GAUGE_REFRESH_SHARE = 0.02
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
logger = logging.getLogger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON."},
    404: {"description": "No logged prediction has that id."},
    503: {"description": "Monitoring is off (MONITORING_ENABLED=false) or its database does not answer."},
}


def _iso_8601(value: Any) -> Any:
    """Only ISO 8601 text is a time here (pydantic alone would also read "0.5" as seconds since 1970)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@router.post("/feedback", response_model=FeedbackAnswer, responses=ERRORS)
async def post_feedback(body: FeedbackRequest, dataplane: DataPlaneDep) -> FeedbackAnswer:
    """Say what the image of a logged prediction really was; the latest label for a prediction wins."""
    log = _log(dataplane.log)
    try:
        prediction = await run_in_threadpool(log.set_feedback, body.prediction_id, body.label)
    except UnknownPrediction as error:
        raise ModelNotFound(str(error)) from error
    except SQLAlchemyError as error:
        raise HTTPException(503, f"the prediction log does not answer ({type(error).__name__})") from error
    return FeedbackAnswer(
        prediction_id=body.prediction_id,
        label=body.label,
        predicted=prediction.class_name,
        correct=prediction.class_name == body.label,
    )


@router.get("/monitoring", response_model=MonitoringReport, responses=ERRORS)
async def read_monitoring(
    dataplane: DataPlaneDep,
    settings: SettingsDep,
    model: Annotated[str | None, Query(max_length=64, description="Only this model.")] = None,
    version: Annotated[int | None, Query(ge=1, le=999_999_999, description="Only this version.")] = None,
    since: Annotated[
        datetime | None,
        BeforeValidator(_iso_8601),
        Query(description="Window start (ISO 8601); default: MONITORING_WINDOW_HOURS ago."),
    ] = None,
) -> MonitoringReport:
    """Per model and version since `since`: volume, predicted classes against the test set's (drift),
    mean top probability, and the live accuracy of the labelled predictions."""
    log = _log(dataplane.log)
    start = _aware(since) if since else datetime.now(UTC) - timedelta(hours=settings.monitoring_window_hours)
    try:
        return await run_in_threadpool(build_report, log, dataplane.registry, settings, start, model, version)
    except SQLAlchemyError as error:
        raise HTTPException(503, f"the prediction log does not answer ({type(error).__name__})") from error


def build_report(
    log: PredictionLog,
    registry: ModelRegistry,
    settings: Settings,
    since: datetime,
    model: str | None = None,
    version: int | None = None,
    with_timelines: bool = True,
) -> MonitoringReport:
    """The report behind `GET /monitoring` and the gauges (blocking: run it in a worker thread)."""
    rule = DriftRule(settings.drift_psi_threshold, settings.drift_min_predictions)
    with log.session() as session:
        versions = summarize(session, since, rule, _references(registry), model, version, with_timelines)
    return MonitoringReport(since=since, versions=versions)


def _references(registry: ModelRegistry) -> Callable[[str, int], Reference | None]:
    def reference_of(model: str, version: int) -> Reference | None:
        try:
            return Reference.of(registry.artifact(model, version))
        except (LookupError, ModelNotReady):  # Gone from the store, or failed: no test-set record to compare.
            return None

    return reference_of


async def refresh_gauges_forever(log: PredictionLog, registry: ModelRegistry, settings: Settings) -> None:
    """Keep the monitoring gauges on /metrics current: the report over the last MONITORING_WINDOW_HOURS."""
    pause = GAUGE_REFRESH_SECONDS
    while True:
        await asyncio.sleep(pause)
        since = datetime.now(UTC) - timedelta(hours=settings.monitoring_window_hours)
        started = time.monotonic()
        try:
            # No timelines: no gauge shows them, and they cost the most.
            report = await asyncio.to_thread(build_report, log, registry, settings, since, with_timelines=False)
        except SQLAlchemyError as error:
            logger.debug("monitoring gauges not refreshed: %s", error)
            continue
        finally:
            pause = pause_after_refresh(time.monotonic() - started)
        for item in report.versions:
            labels = (item.model, str(item.version))
            metrics.LIVE_PREDICTIONS.labels(*labels).set(item.predictions)
            metrics.LIVE_LABELLED.labels(*labels).set(item.labelled)
            metrics.MEAN_TOP_PROBABILITY.labels(*labels).set(item.mean_top_probability)
            if item.live_accuracy is not None:
                metrics.LIVE_ACCURACY.labels(*labels).set(item.live_accuracy)
            if item.drift is not None:
                metrics.CLASS_PSI.labels(*labels).set(item.drift.population_stability_index)
                metrics.DRIFTED.labels(*labels).set(1 if item.drift.drifted else 0)


def pause_after_refresh(took: float) -> float:
    """Seconds until the next refresh of the gauges, given how long the last one took."""
    return max(GAUGE_REFRESH_SECONDS, took / GAUGE_REFRESH_SHARE)


def _log(log: PredictionLog | None) -> PredictionLog:
    if log is None:
        raise HTTPException(503, "monitoring is off (MONITORING_ENABLED=false)")
    return log


def _aware(moment: datetime) -> datetime:
    """A time without a zone is read as UTC, as the log stores it; nothing is logged before 1970."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(aware, EPOCH)
