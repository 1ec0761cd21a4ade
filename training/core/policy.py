"""serving.json: which versions of a model the service loads, which one answers by default, and labels.

TensorFlow Serving's `model_version_policy` and version labels, per model, kept in the
model store beside the versions. The service re-reads it at every scan; the CLI
(`python -m training serve-policy`) writes it atomically.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import ConfigDict, Field, field_validator

from training.core.artifacts import is_valid_name, model_path
from training.core.records import Record, read_record
from training.core.staging import staged_file

POLICY_FILE = "serving.json"


class LoadPolicy(StrEnum):
    ALL = "all"  # Every version in the store (the default, as without a policy file).
    LATEST = "latest"  # The newest `count` versions.
    SPECIFIC = "specific"  # Exactly `versions`.


class ServingPolicy(Record):
    """serving.json: which versions are loaded, which one is the default, and version labels.

    TensorFlow Serving's `model_version_policy` and version labels, per model. Pinned and
    labelled versions are always loaded, whatever `load` says.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)  # A typo must be reported, not ignored.

    load: LoadPolicy = LoadPolicy.ALL
    count: int = Field(1, ge=1, description="With load=latest: how many of the newest versions.")
    versions: list[int] = Field(default_factory=list, description="With load=specific: which versions.")
    default_version: int | None = Field(None, ge=1, description="Pin: answers when a request names no version.")
    labels: dict[str, int] = Field(default_factory=dict, description="Label -> version, e.g. stable, canary.")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, int]) -> dict[str, int]:
        for label, version in labels.items():
            if not is_valid_name(label) or version < 1:
                raise ValueError(f"label {label!r} -> {version}: labels are names, versions are positive integers")
        return labels

    def wanted(self, on_disk: list[int]) -> list[int]:
        """The versions to load, out of those in the store."""
        if self.load is LoadPolicy.LATEST:
            chosen = set(on_disk[-self.count :])
        elif self.load is LoadPolicy.SPECIFIC:
            chosen = set(self.versions)
        else:
            chosen = set(on_disk)
        chosen |= set(self.labels.values())
        if self.default_version is not None:
            chosen.add(self.default_version)
        return sorted(chosen & set(on_disk))


def load_policy(models_dir: Path, name: str) -> ServingPolicy | None:
    """The model's serving.json, or None without one; raises InvalidArtifact if it is invalid."""
    path = model_path(models_dir, name) / POLICY_FILE
    if not path.exists():
        return None
    return read_record(path.parent, POLICY_FILE, ServingPolicy)


def save_policy(models_dir: Path, name: str, policy: ServingPolicy) -> Path:
    """Write serving.json atomically: a temporary file, then one rename, so a reader never sees half."""
    if not is_valid_name(name):
        raise ValueError(f"invalid model name {name!r}")
    path = model_path(models_dir, name) / POLICY_FILE
    with staged_file(path) as temporary:
        temporary.write_text(policy.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
