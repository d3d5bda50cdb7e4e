"""deploy/kubernetes/: every manifest validates against a pinned Kubernetes version's schemas
(kubernetes-validate bundles them: offline), and the fields that matter agree with the service:
probes on its endpoints, the memory limit recomputed from the env the manifest sets, the image's
user, the shutdown timings."""

from __future__ import annotations

import math
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import service
from service.config import Settings
from service.server import SHUTDOWN_SECONDS, memory_bound

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"  # the oldest release with the preStop sleep action on by default is 1.30

UNITS = {"Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "": 1}


def quantity(text: str) -> float:
    """A Kubernetes resource quantity ("2Gi", "500m", "1") as a number (bytes or cores)."""
    text = str(text)
    if text.endswith("m"):
        return int(text[:-1]) / 1000
    number = text.rstrip("KMGTikmgt")
    return float(number) * UNITS[text[len(number):]]


def resources() -> dict[str, dict]:
    found = {}
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                assert document["kind"] not in found, f"two {document['kind']}s"
                found[document["kind"]] = document
    return found


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_the_kinds_are_all_there():
    assert set(resources()) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schemas(path):
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        # strict: an unknown or misspelt field is an error, as kubectl apply --validate=strict makes it
        assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True) == "1.33"


def test_the_validator_refuses_a_misspelt_field():
    """What the test above relies on: the bundled schemas do catch mistakes."""
    deployment = resources()["Deployment"]
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_probes_use_the_service_endpoints():
    spec = container(resources()["Deployment"])
    port = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert port["http"] == 8000  # the image's CMD listens there
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert spec["startupProbe"]["httpGet"]["path"] == "/healthz"
    # liveness is slower to give up than readiness: a busy pod leaves the endpoints, it is not restarted
    liveness, readiness = spec["livenessProbe"], spec["readinessProbe"]
    patience = {name: probe["periodSeconds"] * probe["failureThreshold"]
                for name, probe in (("liveness", liveness), ("readiness", readiness))}
    assert patience["liveness"] > patience["readiness"], patience


def test_memory_limit_is_the_bound_for_the_env_the_manifest_sets():
    spec = container(resources()["Deployment"])
    env = {item["name"]: item["value"] for item in spec["env"]}
    prefix = Settings.model_config["env_prefix"]
    settings = Settings(**{name[len(prefix):].lower(): value for name, value in env.items()})
    assert settings.workers == 1, "one process per pod: the bound is per process"
    needed = memory_bound(settings)["total"]
    limit = quantity(spec["resources"]["limits"]["memory"])
    assert needed <= limit <= 1.1 * needed, (needed, limit)  # room for the bound, not far over it
    assert quantity(spec["resources"]["requests"]["memory"]) == limit
    cpus = quantity(spec["resources"]["limits"]["cpu"])
    assert cpus >= settings.max_concurrency and quantity(spec["resources"]["requests"]["cpu"]) <= cpus


def test_memory_limit_check_catches_a_raised_budget():
    """A larger work budget in the env without a larger limit is caught by the recomputation above."""
    spec = container(resources()["Deployment"])
    env = {item["name"]: item["value"] for item in spec["env"]}
    env["LOSS_SERVICE_WORK_BUDGET"] = str(int(env["LOSS_SERVICE_WORK_BUDGET"]) * 2)
    prefix = Settings.model_config["env_prefix"]
    settings = Settings(**{name[len(prefix):].lower(): value for name, value in env.items()})
    assert memory_bound(settings)["total"] > quantity(spec["resources"]["limits"]["memory"])


def test_pod_runs_as_the_image_user_with_nothing_writable_but_tmp():
    deployment = resources()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    spec = container(deployment)
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")][-1]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    assert pod["automountServiceAccountToken"] is False
    security = spec["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]} and not security.get("privileged")
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == {"/tmp"} and "emptyDir" in volumes[mounts["/tmp"]]
    assert spec["image"] == f"loss-service:{service.__version__}"


def test_termination_grace_outlasts_prestop_drain_and_in_flight_requests():
    deployment = resources()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 2, "endpoints need a moment to drop the pod before SIGTERM"
    assert pod["terminationGracePeriodSeconds"] > pre_stop + SHUTDOWN_SECONDS
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_service_hpa_and_pdb_select_the_deployment():
    found = resources()
    deployment = found["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service_spec = found["Service"]["spec"]
    assert service_spec["selector"].items() <= labels.items()
    assert service_spec["ports"][0]["targetPort"] == "http"
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = found["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    # the budget allows a disruption only while another pod answers
    assert hpa["spec"]["minReplicas"] >= 2 and found["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert math.isclose(deployment["spec"]["replicas"], hpa["spec"]["minReplicas"])
