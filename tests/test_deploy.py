"""The Kubernetes and KServe manifests in deploy/, validated offline against the API schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.utils.data import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
CORE_MANIFESTS = ["deployment.yaml", "service.yaml", "hpa.yaml", "models-pvc.yaml"]


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return document


@pytest.mark.parametrize("name", CORE_MANIFESTS)
def test_core_manifests_validate_strictly(name: str) -> None:
    kubernetes_validate.validate(_load(name), KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    broken = _load("deployment.yaml")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("kserve-inferenceservice.yaml", {"httpGet": {"path": "/v2/health/ready", "port": 8000}}),
        ("kserve-inferenceservice-grpc.yaml", {"grpc": {"port": 8081}}),
    ],
)
def test_kserve_predictor_is_a_valid_pod_spec_speaking_v2(name: str, probe: dict[str, Any]) -> None:
    """KServe's CRD schema is not bundled; its predictor is a PodSpec, which is."""
    service = _load(name)
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = {key: value for key, value in service["spec"]["predictor"].items() if not key.endswith("Replicas")}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": predictor}
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    container = predictor["containers"][0]
    assert container["readinessProbe"] == probe
    assert [port["containerPort"] for port in container["ports"]] == [next(iter(probe.values()))["port"]]


def test_probes_and_ports_match_the_app(tmp_path: Path) -> None:
    container = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    with TestClient(create_app(Settings(models_dir=tmp_path, poll_interval_seconds=0))) as client:
        for probe in ("startupProbe", "livenessProbe"):
            # An empty store is live but not ready: 200 or 503, never an unknown route.
            assert client.get(container[probe]["httpGet"]["path"]).status_code in (200, 503)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    grpc_port = Settings.model_fields["grpc_port"].default
    assert ports == {"http": 8000, "grpc": grpc_port}
    # Readiness asks the gRPC health service (tests/app/test_grpc.py: it follows readiness).
    assert container["readinessProbe"]["grpc"]["port"] == grpc_port
    assert {"name": "GRPC_PORT", "value": str(grpc_port)} in container["env"]
    assert f"EXPOSE 8000 {grpc_port}" in (REPO / "Dockerfile").read_text()
    mount = container["volumeMounts"][0]
    assert mount["readOnly"] is True and {"name": "MODELS_DIR", "value": mount["mountPath"]} in container["env"]


def test_compose_publishes_both_ports_and_keeps_the_log_on_a_volume() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    assert [port.rsplit(":", 1)[1] for port in api["ports"]] == ["8000", "8081"]
    assert api["environment"]["GRPC_PORT"] == "8081" and "WORKERS" in api["environment"]
    assert "monitoring:/srv/data" in api["volumes"] and "monitoring" in compose["volumes"]
    assert any(volume.endswith(":/srv/models") for volume in api["volumes"])
