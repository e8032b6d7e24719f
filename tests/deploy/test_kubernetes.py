"""deploy/k8s renders to valid Kubernetes objects that run o2c the way it needs to run.

Rendered offline (tests/deploy/kustomize.py) and validated against the Kubernetes JSON
schemas shipped by ``kubernetes-validate`` (strict: unknown fields are errors). No cluster.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from typer.testing import CliRunner

from o2c.cli import app as cli
from tests.deploy.kustomize import UnsupportedKustomization, containers, render
from tests.deploy.support import (
    REQUIRED,
    SERVICES,
    known_variables,
    ops_port_of,
    port_of,
    settings_from,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUBERNETES = "1.30"
"""The oldest Kubernetes version the manifests must be valid for."""
SECRET = "o2c-secrets"
DOCS = ROOT / "docs" / "replicas.md"

Doc = dict[str, Any]


def _validate(document: Doc) -> None:
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def _by_kind(documents: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


@pytest.fixture(scope="module", params=[p.name for p in OVERLAYS])
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return render(K8S / "overlays" / request.param)


def test_there_is_an_overlay_and_it_builds_on_the_base() -> None:
    assert OVERLAYS, "no overlay under deploy/k8s/overlays"
    base = render(K8S / "base")
    for overlay in OVERLAYS:
        names = {(d["kind"], d["metadata"]["name"]) for d in render(overlay)}
        assert {(d["kind"], d["metadata"]["name"]) for d in base} <= names, overlay


def test_every_document_is_valid_kubernetes(rendered: list[Doc]) -> None:
    """Every object of the overlay, which holds every object of the base."""
    assert len(rendered) > 20
    for document in rendered:
        _validate(document)


@pytest.mark.parametrize("breakage", [
    lambda d: d["spec"].update(replicas="two"),
    lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenessProbes={}),
    lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="http"),
    lambda d: d["spec"].pop("selector"),
    lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"].update(limits={"memory": [512]}),
], ids=["replicas-string", "misspelt-field", "port-name-as-number", "no-selector", "limit-list"])
def test_a_broken_manifest_is_rejected(rendered: list[Doc], breakage: Any) -> None:
    broken = copy.deepcopy(_by_kind(rendered, "Deployment")["orders"])
    breakage(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../base]\npatches:\n  - path: more.yaml\n")
    with pytest.raises(UnsupportedKustomization, match="patches"):
        render(tmp_path)


def test_one_deployment_and_one_service_per_service_with_probes_and_resources(rendered: list[Doc]) -> None:
    deployments, services = _by_kind(rendered, "Deployment"), _by_kind(rendered, "Service")
    assert set(deployments) == set(SERVICES)
    assert set(services) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        assert container["args"] == [f"services.{name}"]
        port, ops = container["ports"]
        environment = _environment(rendered, container)
        assert port["containerPort"] == port_of(name, environment), name
        assert ops["containerPort"] == ops_port_of(name, environment), name
        # the operational endpoints are on the internal port, which no Service exposes
        for probe, path in (("startupProbe", "/health"), ("livenessProbe", "/health"),
                            ("readinessProbe", "/ready")):
            assert container[probe]["httpGet"] == {"path": path, "port": ops["name"]}, name
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ops["containerPort"]), name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, f"{name} {kind}"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        service = services[name]
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        (service_port,) = service["spec"]["ports"]
        assert service_port["targetPort"] in (port["name"], port["containerPort"])


def test_orders_scales_by_its_autoscaler_alone(rendered: list[Doc]) -> None:
    autoscalers = _by_kind(rendered, "HorizontalPodAutoscaler")
    assert list(autoscalers) == ["orders"]
    target = autoscalers["orders"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "orders")
    assert autoscalers["orders"]["spec"]["minReplicas"] >= 2
    assert "replicas" not in _by_kind(rendered, "Deployment")["orders"]["spec"]


def test_the_migration_job_runs_o2c_migrate_on_the_services_database(rendered: list[Doc]) -> None:
    (job,) = _by_kind(rendered, "Job").values()
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = containers(job)
    assert container["args"] == ["o2c", "migrate"]  # python -m o2c migrate (the image's entry point)
    assert CliRunner().invoke(cli, ["migrate", "--help"]).exit_code == 0
    orders = containers(_by_kind(rendered, "Deployment")["orders"])[0]
    assert container["image"] == orders["image"]
    assert _environment(rendered, container)["O2C_DATABASE_URL"] == \
        _environment(rendered, orders)["O2C_DATABASE_URL"]


def test_the_documented_first_apply_selects_the_job_and_its_settings_only(rendered: list[Doc]) -> None:
    match = re.search(r"kubectl apply -k \S+ -l 'app\.kubernetes\.io/component in \(([a-z,-]+)\)'",
                      DOCS.read_text())
    assert match, "docs/replicas.md shows no apply of the migration Job alone"
    chosen = set(match[1].split(","))
    selected = {(d["kind"], d["metadata"]["name"]) for d in rendered
                if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") in chosen}
    (job,) = _by_kind(rendered, "Job").values()
    read = {("ConfigMap", s["configMapRef"]["name"]) for c in containers(job) for s in c.get("envFrom", [])}
    assert selected == {("Job", job["metadata"]["name"]), *read}


def _environment(documents: list[Doc], container: Doc) -> dict[str, str]:
    """The container's O2C_ environment; secret values stand as ``secret:<name>/<key>``."""
    config_maps = _by_kind(documents, "ConfigMap")
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"ConfigMap {name} is not part of the rendered manifests"
        environment.update(config_maps[name]["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            environment[variable["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return environment


def test_every_service_gets_the_environment_it_needs(rendered: list[Doc]) -> None:
    for name, deployment in _by_kind(rendered, "Deployment").items():
        environment = _environment(rendered, containers(deployment)[0])
        missing = [variable for variable in REQUIRED if not environment.get(variable)]
        assert not missing, f"{name} lacks {missing}"
        unknown = set(environment) - known_variables()
        assert not unknown, f"{name} sets variables no service reads: {unknown}"
        assert environment["O2C_HOST"] == "0.0.0.0"
        for secret in ("O2C_DATABASE_URL", "O2C_ADMIN_TOKEN", "O2C_AUDIT_KEYS"):
            assert environment[secret].startswith(f"secret:{SECRET}/"), f"{name}: {secret} not from a Secret"


def test_service_urls_name_every_service_at_its_kubernetes_service(rendered: list[Doc]) -> None:
    services = _by_kind(rendered, "Service")
    for name, deployment in _by_kind(rendered, "Deployment").items():
        environment = _environment(rendered, containers(deployment)[0])
        plain = {k: v for k, v in environment.items() if not v.startswith("secret:")}
        urls = settings_from(plain).service_urls
        assert set(urls) == set(SERVICES), f"{name}: O2C_SERVICE_URLS names {sorted(urls)}"
        for target, url in urls.items():
            match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
            assert match, url
            assert match[1] in services, f"{url}: no Service {match[1]}"
            (port,) = services[match[1]]["spec"]["ports"]
            assert int(match[2]) == port["port"] and match[1] == target, url


def test_the_documented_secret_has_every_key_the_manifests_read(rendered: list[Doc]) -> None:
    keys = {value.split("/", 1)[1]
            for document in rendered for container in containers(document)
            for value in _environment(rendered, container).values() if value.startswith("secret:")}
    assert keys == {"database-url", "admin-token", "audit-keys"}
    command = re.search(rf"kubectl .*create secret generic {SECRET}(?:[^\n]*\\\n)*[^\n]*", DOCS.read_text())
    assert command, f"docs/replicas.md shows no `kubectl create secret generic {SECRET}`"
    assert {key for key in keys if f"--from-literal={key}=" in command[0]} == keys
