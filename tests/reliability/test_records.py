"""What the service serves of a version's records names nothing of the machine that trained it."""

from __future__ import annotations

import json

import pytest

from tests.utils.data import COMMITTED_MODELS
from tests.utils.servers import running_client
from training.core import artifacts

pytestmark = pytest.mark.reliability


def test_no_served_record_carries_a_path_of_the_training_machine() -> None:
    recorded = [
        json.loads(path.read_text())["dataset"]["source"] for path in sorted(COMMITTED_MODELS.glob("*/*/metrics.json"))
    ]
    assert any("/" in source for source in recorded), "older versions recorded the extraction cache's path"
    with running_client(COMMITTED_MODELS) as client:
        for name in artifacts.list_models(COMMITTED_MODELS):
            for version in artifacts.list_versions(COMMITTED_MODELS, name):
                response = client.get(f"/models/{name}/metrics", params={"version": version})
                if response.status_code != 200:  # Not served by the policy: nothing to leak.
                    continue
                source = response.json()["dataset"]["source"]
                assert "/" not in source and "/root" not in response.text and "/home" not in response.text, source
