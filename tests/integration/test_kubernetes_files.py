"""deploy/kubernetes/ is valid Kubernetes and agrees with the code: every document validates against
the Kubernetes JSON schemas (bundled in kubernetes-validate, offline), and probes, ports, scrape
annotations, configuration keys, settings and Secrets are cross-checked with the services."""

from __future__ import annotations

import copy
import functools
import importlib
import ipaddress
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from bothways import devstack
from bothways.retention import RetentionSettings
from bothways.web import health_router
from services.ingest.mapping import load_mapping

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
PROMETHEUS_KUBERNETES = ROOT / "deploy" / "prometheus" / "prometheus-kubernetes.yml"
SERVICES = tuple(devstack.SERVICES)
# The oldest Kubernetes release still maintained upstream when this was written, and the newest
# schema set kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
IMAGE_USER = 10001  # deploy/Dockerfile's USER


def manifest_files() -> list[Path]:
    return sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")


@functools.cache
def parsed() -> tuple[dict[str, Any], ...]:
    return tuple(doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc)


def documents() -> list[dict[str, Any]]:
    """Every manifest document, a fresh copy each time: a test may change what it gets."""
    return copy.deepcopy(list(parsed()))


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def deployment(service: str) -> dict[str, Any]:
    return of_kind("Deployment")[f"bothways-{service}"]


def pod_template(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template: dict[str, Any] = spec["template"]
    return template


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = pod_template(workload)["spec"]
    return spec


def workloads() -> Iterator[dict[str, Any]]:
    for doc in documents():
        if doc["kind"] in ("Deployment", "Job", "CronJob"):
            yield doc


def container(workload: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(workload)["containers"]
    return dict(only)


def settings_class(service: str) -> type[BaseSettings]:
    settings: type[BaseSettings] = importlib.import_module(f"services.{service}.app").SETTINGS
    return settings


def env_names(settings: type[BaseSettings]) -> dict[str, set[str]]:
    """Each field's environment variable names: BOTHWAYS_<FIELD>, or its aliases (e.g. DATABASE_URL)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = {}
    for name, info in settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None)
        names[name] = {c.upper() for c in choices} if choices else {f"{prefix}{name}".upper()}
    return names


def container_env(
    workload: Mapping[str, Any], secret_values: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The environment a container starts with: envFrom ConfigMaps and Secrets, then env."""
    configmaps, secrets = of_kind("ConfigMap"), of_kind("Secret")
    spec = container(workload)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            name = source["secretRef"]["name"]
            env.update(secret_values.get(name, secrets[name]["stringData"]))
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_values.get(ref["name"], secrets[ref["name"]]["stringData"])[ref["key"]]
    return env


def filled_secrets() -> dict[str, dict[str, str]]:
    """The example Secrets with real-looking values in place of the placeholders."""
    return {
        "bothways-secrets": {
            "BOTHWAYS_DATABASE_URL": "postgresql://bothways:pw@db.example.com:5432/bothways",
            "BOTHWAYS_API_KEYS": '{"an-admin-key": ["read", "admin"], "the-metrics-key": ["read"]}',
        },
        "bothways-ingest-secrets": {
            **of_kind("Secret")["bothways-ingest-secrets"]["stringData"],
            "BOTHWAYS_GENERIC_WEBHOOK_SECRETS": '["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]',
        },
        "bothways-survey-secrets": {
            **of_kind("Secret")["bothways-survey-secrets"]["stringData"],
            "BOTHWAYS_SURVEY_TOKEN_SECRETS": '["a-survey-link-secret-of-32-characters-or-more"]',
        },
    }


def load_settings(
    monkeypatch: pytest.MonkeyPatch, settings: type[BaseSettings], env: Mapping[str, str]
) -> BaseSettings:
    for names in env_names(settings).values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings()


# --- schemas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    assert documents(), "deploy/kubernetes/ holds manifests"
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def misspell_a_probe_field(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = 8001


def give_replicas_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["replicas"] = "two"


def drop_the_containers(doc: dict[str, Any]) -> None:
    del doc["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("break_it", [misspell_a_probe_field, give_replicas_as_text, drop_the_containers])
def test_the_schema_check_catches_a_broken_deployment(break_it: Any) -> None:
    broken = copy.deepcopy(deployment("ingest"))
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_kustomization_applies_every_manifest_but_the_migration_job() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {path.name for path in manifest_files()} - {"migrate-job.yaml"}


def test_everything_lives_in_the_bothways_namespace() -> None:
    for doc in documents():
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "bothways"
        else:
            assert doc["metadata"]["namespace"] == "bothways", doc["metadata"]["name"]


# --- the services -----------------------------------------------------------------------------------


def test_there_is_one_deployment_per_service_running_its_command_on_its_port() -> None:
    assert set(of_kind("Deployment")) == {f"bothways-{name}" for name in SERVICES}
    for name, port in devstack.SERVICES.items():
        spec = container(deployment(name))
        assert spec["command"] == ["python", "-m", f"services.{name}"]
        assert (ROOT / "services" / name / "__main__.py").is_file()
        assert spec["ports"] == [{"name": "http", "containerPort": port}]
        assert {"name": "BOTHWAYS_PORT", "value": str(port)} in spec["env"]


def test_probes_ask_the_real_health_endpoints_on_the_service_port() -> None:
    for name in SERVICES:
        spec = container(deployment(name))
        routes = {route.path for route in health_router(settings_spec(name)).routes}
        assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"/healthz", "/readyz"} <= routes
        assert spec["startupProbe"]["httpGet"]["path"] in routes
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert spec[probe]["httpGet"]["port"] in ("http", devstack.SERVICES[name]), f"{name} {probe}"


def settings_spec(service: str) -> Any:
    return importlib.import_module(f"services.{service}.app").SPEC


def test_each_service_selects_its_own_pods_and_forwards_to_the_container_port() -> None:
    services = of_kind("Service")
    for name, port in devstack.SERVICES.items():
        service, pods = (
            services[f"bothways-{name}"],
            deployment(name)["spec"]["template"]["metadata"]["labels"],
        )
        assert service["spec"]["selector"] == deployment(name)["spec"]["selector"]["matchLabels"]
        assert service["spec"]["selector"].items() <= pods.items()
        assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    selectors = [tuple(sorted(s["spec"]["selector"].items())) for s in services.values()]
    assert len(selectors) == len(set(selectors)), "two Services select the same pods"


def test_every_container_has_requests_and_limits_and_runs_unprivileged_as_the_image_user() -> None:
    for workload in workloads():
        name, spec, pod = workload["metadata"]["name"], container(workload), pod_spec(workload)
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(spec["resources"][kind]), f"{name}: {kind}"
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == IMAGE_USER, name
        assert pod["automountServiceAccountToken"] is False, name
        assert spec["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name


def test_every_workload_runs_the_pinned_image_of_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for workload in workloads():
        assert container(workload)["image"] == f"bothways:{version}", workload["metadata"]["name"]


# --- scaling ------------------------------------------------------------------------------------------


def test_every_service_has_an_autoscaler_on_cpu_and_consumers_stop_at_the_partition_count() -> None:
    autoscalers = of_kind("HorizontalPodAutoscaler")
    partitions = int(of_kind("ConfigMap")["bothways-config"]["data"]["BOTHWAYS_KAFKA_TOPIC_PARTITIONS"])
    for name in SERVICES:
        hpa = autoscalers[f"bothways-{name}"]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"bothways-{name}",
        }
        assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
        assert hpa["minReplicas"] >= 2, "one pod per node drain must stay up"
        if settings_spec(name).consumes:
            assert hpa["maxReplicas"] <= partitions, f"{name}: replicas beyond the partitions sit idle"
    assert not settings_spec("ingest").consumes, "ingest scales on webhooks alone"
    for name, spec in of_kind("Deployment").items():
        assert "requests" in container(spec)["resources"], f"{name}: CPU utilisation needs a request"


def test_disruption_budgets_select_one_deployment_and_leave_room_to_drain() -> None:
    budgets = of_kind("PodDisruptionBudget")
    for name in SERVICES:
        budget, target = budgets[f"bothways-{name}"]["spec"], deployment(name)
        assert budget["selector"]["matchLabels"] == target["spec"]["selector"]["matchLabels"]
        assert budget["minAvailable"] < target["spec"]["replicas"], f"{name}: a drain could never evict"


# --- configuration and secrets ------------------------------------------------------------------------


def test_every_referenced_configmap_secret_and_key_exists() -> None:
    configmaps, secrets = of_kind("ConfigMap"), of_kind("Secret")
    for workload in workloads():
        spec, pod = container(workload), pod_spec(workload)
        for source in spec.get("envFrom", []):
            ref = source.get("configMapRef") or source["secretRef"]
            assert ref["name"] in (configmaps if "configMapRef" in source else secrets), ref["name"]
        for item in spec.get("env", []):
            if ref := item.get("valueFrom", {}).get("secretKeyRef"):
                assert ref["key"] in secrets[ref["name"]]["stringData"], f"{ref['name']} has no {ref['key']}"
        mounted = {m["name"] for m in spec.get("volumeMounts", [])}
        for volume in pod.get("volumes", []):
            assert volume["name"] in mounted, f"{volume['name']} is never mounted"
            if "configMap" in volume:
                data = configmaps[volume["configMap"]["name"]]["data"]
                for item in volume["configMap"].get("items", []):
                    assert item["key"] in data


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_a_service_gets_is_a_setting_it_has(service: str) -> None:
    known = set().union(*env_names(settings_class(service)).values())
    unknown = set(container_env(deployment(service), filled_secrets())) - known
    assert not unknown, f"{service}: {sorted(unknown)} match no field of {settings_class(service).__name__}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_starts_with_valid_settings_from_the_manifests(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Any = load_settings(
        monkeypatch, settings_class(service), container_env(deployment(service), filled_secrets())
    )
    assert settings.port == devstack.SERVICES[service]
    assert ipaddress.ip_address(settings.host).is_unspecified, "reachable from the Service"
    assert settings.kafka_idempotent_producer is True, "Apache Kafka: acks=all and idempotence"
    assert settings.api_keys
    if service == "ingest":
        assert settings.generic_keys()
        assert str(settings.mapping_file) == "/etc/bothways/mapping.yaml"
    if service == "sla":
        assert str(settings.sla_config_file) == "/etc/bothways/sla/policies.yaml"
    if service == "survey":
        assert settings.token_keys()
        assert settings.smtp_server() is not None
        assert settings.smtp_password is None, "an empty password is no password"


@pytest.mark.parametrize("service", SERVICES)
def test_the_placeholder_secrets_stop_every_service_from_starting(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises((SettingsError, ValidationError)):
        load_settings(monkeypatch, settings_class(service), container_env(deployment(service), {}))


def test_ingest_reads_its_mapping_file_from_the_configmap(tmp_path: Path) -> None:
    spec = container(deployment("ingest"))
    mapping_file = Path(next(e["value"] for e in spec["env"] if e["name"] == "BOTHWAYS_MAPPING_FILE"))
    mount = next(m for m in spec["volumeMounts"] if m["name"] == "mapping")
    volume = next(v for v in pod_spec(deployment("ingest"))["volumes"] if v["name"] == "mapping")
    (item,) = volume["configMap"]["items"]
    assert mapping_file == Path(mount["mountPath"]) / item["path"]
    site = tmp_path / "mapping.yaml"
    site.write_text(of_kind("ConfigMap")[volume["configMap"]["name"]]["data"][item["key"]])
    assert load_mapping(site) == load_mapping(None), "the example changes nothing, and loads"


def test_sla_seeds_its_calendars_and_policies_from_the_configmap(tmp_path: Path) -> None:
    from services.sla.configuration import read_config_file
    from services.sla.rulebook import parse_calendars, parse_policies

    spec = container(deployment("sla"))
    config_file = Path(next(e["value"] for e in spec["env"] if e["name"] == "BOTHWAYS_SLA_CONFIG_FILE"))
    mount = next(m for m in spec["volumeMounts"] if m["name"] == "sla-config")
    volume = next(v for v in pod_spec(deployment("sla"))["volumes"] if v["name"] == "sla-config")
    (item,) = volume["configMap"]["items"]
    assert config_file == Path(mount["mountPath"]) / item["path"]
    site = tmp_path / "policies.yaml"
    site.write_text(of_kind("ConfigMap")[volume["configMap"]["name"]]["data"][item["key"]])
    config = read_config_file(site)
    calendars = {calendar.name for calendar, _ in parse_calendars(config["calendars"])}
    assert parse_policies(config["policies"], calendars=calendars), "the sla service would refuse to start"


# --- jobs ------------------------------------------------------------------------------------------


def test_the_migration_job_runs_bothways_migrate_against_the_database_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = of_kind("Job")["bothways-migrate"]
    assert container(job)["command"] == ["bothways", "migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    env = container_env(job, filled_secrets())
    assert env["DATABASE_URL"] == filled_secrets()["bothways-secrets"]["BOTHWAYS_DATABASE_URL"]
    assert "bothways" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_the_purge_cronjob_runs_bothways_purge_with_retention_settings_it_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cronjob = of_kind("CronJob")["bothways-purge"]
    assert container(cronjob)["command"] == ["bothways", "purge"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    env = container_env(cronjob, filled_secrets())
    known = set().union(*env_names(RetentionSettings).values())
    assert set(env) <= known, f"{sorted(set(env) - known)} match no field of RetentionSettings"
    settings: Any = load_settings(monkeypatch, RetentionSettings, env)
    assert settings.receipt_retention_days >= settings.inbox_retention_days


# --- scraping -----------------------------------------------------------------------------------------


def relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling (keep and replace, anchored RE2 regexes), enough for our job."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule["source_labels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action", "replace") == "keep":
            if not match:
                return None
        elif match:
            replacement = re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1"))
            labels[rule["target_label"]] = match.expand(replacement)
    return labels


def discovered(workload: Mapping[str, Any], pod_ip: str = "10.1.2.3") -> dict[str, str]:
    """The labels Kubernetes pod discovery gives a pod of this workload (one target per container port)."""
    template = pod_template(workload)["metadata"]
    spec = container(workload)
    # A pod without a port is discovered once, on its IP alone.
    port = spec["ports"][0]["containerPort"] if spec.get("ports") else None
    meta = {"__address__": f"{pod_ip}:{port}" if port else pod_ip, "__meta_kubernetes_namespace": "bothways"}
    meta["__meta_kubernetes_pod_name"] = f"{workload['metadata']['name']}-abc"
    for key, value in template.get("labels", {}).items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    for key, value in template.get("annotations", {}).items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return meta


def test_prometheus_finds_each_service_by_its_annotations_on_its_metrics_port() -> None:
    (job,) = [
        j
        for j in yaml.safe_load(PROMETHEUS_KUBERNETES.read_text())["scrape_configs"]
        if j["job_name"] == "bothways"
    ]
    for name, port in devstack.SERVICES.items():
        target = relabel(job["relabel_configs"], discovered(deployment(name)))
        assert target is not None, f"{name} is not scraped"
        assert target["__address__"] == f"10.1.2.3:{port}"
        assert target.get("__metrics_path__", "/metrics") == "/metrics"
        assert "/metrics" in {route.path for route in health_router(settings_spec(name)).routes}
        assert target["component"] == name, "the label the rules and dashboards group by"


def test_prometheus_leaves_the_jobs_and_unannotated_pods_alone() -> None:
    (job,) = [
        j
        for j in yaml.safe_load(PROMETHEUS_KUBERNETES.read_text())["scrape_configs"]
        if j["job_name"] == "bothways"
    ]
    for workload in (of_kind("CronJob")["bothways-purge"], of_kind("Job")["bothways-migrate"]):
        assert relabel(job["relabel_configs"], discovered(workload)) is None
    unannotated = copy.deepcopy(deployment("sla"))
    unannotated["spec"]["template"]["metadata"]["annotations"] = {}
    assert relabel(job["relabel_configs"], discovered(unannotated)) is None


def test_prometheus_scrapes_with_the_metrics_reader_secret() -> None:
    (job,) = [
        j
        for j in yaml.safe_load(PROMETHEUS_KUBERNETES.read_text())["scrape_configs"]
        if j["job_name"] == "bothways"
    ]
    path = Path(job["authorization"]["credentials_file"])
    assert path.parent.name in of_kind("Secret"), "mounted from the Secret of the same name"
    assert path.name in of_kind("Secret")[path.parent.name]["stringData"]
