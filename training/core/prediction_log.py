"""The prediction log's tables (SQLAlchemy 2): the service writes them (app/monitoring), training reads the
labelled images back (`python -m training feedback-dataset`). Changed only through a migration in
app/monitoring/migrations/versions/ (a test holds the two to each other)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Prediction(Base):
    """One image's answer, whichever endpoint gave it."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # The prediction_id the answer carried.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    endpoint: Mapped[str] = mapped_column(String(32))  # predict, predict_batch, v2, v1, grpc
    class_index: Mapped[int]
    class_name: Mapped[str] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Float)  # The top class's calibrated probability.
    latency_ms: Mapped[float] = mapped_column(
        Float
    )  # Decoded image to probabilities: queueing, batching and the forward pass.
    pixels_sha256: Mapped[str] = mapped_column(String(64))  # Of the 32x32x3 uint8 pixels the model saw.
    ood_score: Mapped[float | None] = mapped_column(Float)  # Filled once the out-of-distribution score exists.
    in_distribution: Mapped[bool | None]
    image_png: Mapped[bytes | None] = mapped_column(LargeBinary)  # Only with LOG_IMAGES=true.

    __table_args__ = (Index("ix_predictions_model_version_created_at", "model", "version", "created_at"),)


class Feedback(Base):
    """What a user says the image of a prediction really was; the latest label wins."""

    __tablename__ = "feedback"

    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
