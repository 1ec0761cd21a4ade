"""What the prediction log says, per model and version over a window: volume, the predicted classes
against the test set's (population stability index, chi-square), the mean top probability and its
shift, and the live accuracy of the predictions users labelled (Wilson's 95% interval).

The reference for drift is the version's own test-set record: the column sums of its confusion
matrix (how often it predicted each class on the test set) and the mean top probability of its
served probabilities there. The test set's labels are balanced, but a model's predictions are
not exactly, so this compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Integer, case, cast, func, literal, select
from sqlalchemy.orm import Session

from app.schemas import Drift, TimelinePoint, VersionMonitoring
from training.core import artifacts, statistics
from training.core.prediction_log import Feedback, Prediction


@dataclass(frozen=True)
class Reference:
    """A version's behaviour on the test set, what live traffic is compared with."""

    class_names: list[str]
    class_shares: list[float]
    mean_top_probability: float | None

    @classmethod
    def of(cls, artifact: artifacts.Artifact) -> Reference:
        predicted = np.asarray(artifact.metrics.confusion_matrix, dtype=np.float64).sum(axis=0)
        scores = artifact.metrics.probability_scores
        return cls(
            class_names=list(artifact.metadata.class_names),
            class_shares=(predicted / predicted.sum()).tolist(),
            mean_top_probability=scores.mean_confidence if scores is not None else None,
        )


@dataclass(frozen=True)
class DriftRule:
    psi_threshold: float  # Above it the class distribution has drifted.
    min_predictions: int  # Below it no verdict: too few predictions to tell.


TIMELINE_POINTS = 24  # The window is cut into this many equal buckets for the page's time plot.


def summarize(
    session: Session,
    since: datetime,
    rule: DriftRule,
    reference_of: Callable[[str, int], Reference | None],
    model: str | None = None,
    version: int | None = None,
    with_timelines: bool = True,
) -> list[VersionMonitoring]:
    """One report per (model, version) that answered since `since`; the timelines (the costliest query: every
    row of the window joined with the feedback and bucketed) only when asked for."""
    where = [Prediction.created_at >= since]
    if model is not None:
        where.append(Prediction.model == model)
    if version is not None:
        where.append(Prediction.version == version)
    key = (Prediction.model, Prediction.version)
    counts: dict[tuple[str, int], dict[int, int]] = {}
    probability_sums: dict[tuple[str, int], float] = {}
    query = select(*key, Prediction.class_index, func.count(), func.sum(Prediction.probability)).where(*where)
    for name, number, class_index, count, probability in session.execute(query.group_by(*key, Prediction.class_index)):
        counts.setdefault((name, number), {})[class_index] = count
        probability_sums[(name, number)] = probability_sums.get((name, number), 0.0) + float(probability)
    correct = func.sum(case((Feedback.label == Prediction.class_name, 1), else_=0))
    labelled_query = select(*key, func.count(), correct).join(Feedback, Feedback.prediction_id == Prediction.id)
    labelled = {
        (name, number): (int(total), int(right or 0))
        for name, number, total, right in session.execute(labelled_query.where(*where).group_by(*key))
    }
    unknown = case((Prediction.in_distribution.is_(False), 1), else_=0)
    scored_query = select(*key, func.count(Prediction.in_distribution), func.sum(unknown)).where(*where).group_by(*key)
    scored = {(name, number): (int(total), int(out or 0)) for name, number, total, out in session.execute(scored_query)}
    timelines = _timelines(session, since, where) if with_timelines else {}
    return [
        _version_report(
            name,
            number,
            by_class,
            probability_sums[(name, number)],
            labelled.get((name, number), (0, 0)),
            scored.get((name, number), (0, 0)),
            reference_of(name, number),
            rule,
        ).model_copy(update={"timeline": timelines.get((name, number), [])})
        for (name, number), by_class in sorted(counts.items())
    ]


def _timelines(session: Session, since: datetime, where: list[Any]) -> dict[tuple[str, int], list[TimelinePoint]]:
    """Per version, TIMELINE_POINTS buckets from `since` to now: volume and live accuracy in each."""
    width = max((datetime.now(since.tzinfo) - since).total_seconds() / TIMELINE_POINTS, 1.0)
    # Grouped by its label: PostgreSQL would not see two copies of an expression with parameters as one.
    bucket = cast(func.floor(_seconds_since(session, since) / width), Integer).label("bucket")
    correct = func.sum(case((Feedback.label == Prediction.class_name, 1), else_=0))
    unknown = func.sum(case((Prediction.in_distribution.is_(False), 1), else_=0))
    scored = func.count(Prediction.in_distribution)
    query = (
        select(
            Prediction.model,
            Prediction.version,
            bucket,
            func.count(),
            func.count(Feedback.label),
            correct,
            scored,
            unknown,
        )
        .outerjoin(Feedback, Feedback.prediction_id == Prediction.id)
        .where(*where)
        .group_by(Prediction.model, Prediction.version, "bucket")
    )
    points: dict[tuple[str, int], list[TimelinePoint]] = {}
    for name, number, index, total, labelled, right, scored_count, unknown_count in session.execute(query):
        points.setdefault((name, number), []).append(
            TimelinePoint(
                start=since + timedelta(seconds=int(index) * width),
                predictions=int(total),
                labelled=int(labelled),
                live_accuracy=int(right or 0) / int(labelled) if labelled else None,
                unknown_rate=int(unknown_count or 0) / int(scored_count) if scored_count else None,
            )
        )
    return {key: sorted(series, key=lambda point: point.start) for key, series in points.items()}


def _seconds_since(session: Session, since: datetime) -> Any:
    """Seconds from `since` to each prediction, in the database's own date arithmetic."""
    if session.get_bind().dialect.name == "sqlite":
        naive = since.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        return (func.julianday(Prediction.created_at) - func.julianday(literal(naive))) * 86400.0
    return func.extract("epoch", Prediction.created_at - literal(since))


def _version_report(
    model: str,
    version: int,
    by_class: dict[int, int],
    probability_sum: float,
    labelled: tuple[int, int],
    scored: tuple[int, int],
    reference: Reference | None,
    rule: DriftRule,
) -> VersionMonitoring:
    """`labelled` and `scored`: (predictions labelled, of them right) and (predictions with a novelty
    verdict, of them out of distribution)."""
    total = sum(by_class.values())
    names = reference.class_names if reference else [str(index) for index in range(max(by_class) + 1)]
    observed = [by_class.get(index, 0) for index in range(len(names))]
    mean_top = probability_sum / total
    interval = statistics.wilson_interval(labelled[1], labelled[0])
    return VersionMonitoring(
        model=model,
        version=version,
        predictions=total,
        class_distribution={name: count / total for name, count in zip(names, observed, strict=True)},
        test_class_distribution=dict(zip(names, reference.class_shares, strict=True)) if reference else None,
        mean_top_probability=mean_top,
        test_mean_top_probability=reference.mean_top_probability if reference else None,
        unknown_rate=scored[1] / scored[0] if scored[0] else None,
        drift=_drift(observed, mean_top, reference, rule) if reference else None,
        labelled=labelled[0],
        live_accuracy=labelled[1] / labelled[0] if labelled[0] else None,
        live_accuracy_interval=interval,
        timeline=[],
    )


def _drift(observed: list[int], mean_top: float, reference: Reference, rule: DriftRule) -> Drift:
    psi = statistics.population_stability_index(observed, reference.class_shares)
    chi_square, p_value = statistics.chi_square_test(observed, reference.class_shares)
    enough = sum(observed) >= rule.min_predictions
    shift = mean_top - reference.mean_top_probability if reference.mean_top_probability is not None else None
    return Drift(
        population_stability_index=psi,
        chi_square=chi_square,
        p_value=p_value,
        mean_top_probability_shift=shift,
        psi_threshold=rule.psi_threshold,
        drifted=psi > rule.psi_threshold if enough else None,
    )
