"""The deployment files agree with the code: docker-compose.yml, deploy/Dockerfile, .dockerignore,
.env.example, deploy/fill-env.py and Grafana's provisioning are read as files and checked against the
Compose Specification schema, the settings classes, pyproject.toml and the Makefile."""

from __future__ import annotations

import importlib
import ipaddress
import json
import re
import runpy
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import AliasChoices, ValidationError
from pydantic_settings import SettingsError

from bothways import devstack
from bothways.settings import ServiceSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
FILL_ENV = ROOT / "deploy" / "fill-env.py"
MAKEFILE = ROOT / "Makefile"
GRAFANA = ROOT / "deploy" / "grafana"

SERVICES = tuple(devstack.SERVICES)
SECRETS = (
    "POSTGRES_PASSWORD",
    "BOTHWAYS_API_KEYS",
    "BOTHWAYS_GENERIC_WEBHOOK_SECRETS",
    "BOTHWAYS_ALERTMANAGER_TOKEN",
    "BOTHWAYS_SURVEY_TOKEN_SECRETS",
)
ROOT_USERS = {"root", "0"}


# --- docker-compose.yml -----------------------------------------------------------------------------

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME; $$ is a literal $.
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


def bothways_services() -> dict[str, dict[str, Any]]:
    """The compose services built from this repository's Dockerfile."""
    return {name: spec for name, spec in compose_services().items() if "build" in spec}


def environment(spec: Mapping[str, Any]) -> dict[str, str]:
    raw = spec.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    for name, value in raw.items():
        assert not isinstance(value, bool), f"{name}: quote YAML booleans, Compose wants strings"
    return {name: "" if value is None else str(value) for name, value in raw.items()}


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """What Compose makes of a value, given the variables of .env."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value, op = variables.get(name), match["op"] or ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise LookupError(f"{name} is required: {match['arg']}")
        if op.endswith("-") and unset:
            return match["arg"]
        return value or ""

    return VARIABLE.sub(substitute, text)


def required_variables(text: str) -> set[str]:
    return {m["braced"] for m in VARIABLE.finditer(text) if (m["op"] or "").endswith("?")}


def image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    repository, _, tag = name.rpartition(":")
    return tag if repository and "/" not in tag else None


def pinned(image: str) -> bool:
    """A digest, or a tag naming at least a minor version (`postgres:18.6-bookworm`): not `latest`,
    not a bare name, not a moving major tag such as `postgres:18`."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    tag = image_tag(image) or ""
    return tag != "latest" and re.search(r"\d+\.\d+", tag) is not None


def read_env_file(path: Path) -> dict[str, str]:
    return read_env_text(path.read_text())


def read_env_text(text: str) -> dict[str, str]:
    """NAME=value lines as Compose reads an env file (quotes stripped, comments skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"not NAME=value: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


# --- the settings classes ---------------------------------------------------------------------------


def settings_class(service: str) -> type[ServiceSettings]:
    settings: type[ServiceSettings] = importlib.import_module(f"services.{service}.app").SETTINGS
    return settings


def env_names(settings: type[ServiceSettings]) -> dict[str, set[str]]:
    """Each field's environment variable names: BOTHWAYS_<FIELD>, or its aliases (e.g. DATABASE_URL)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = {}
    for name, info in settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names[name] = {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names[name] = {alias.upper()}
        else:
            names[name] = {f"{prefix}{name}".upper()}
    return names


def fill_env_file(text: str) -> tuple[str, list[str]]:
    """deploy/fill-env.py's `fill`: the script is run as a file, as the operator runs it."""
    fill = runpy.run_path(str(FILL_ENV))["fill"]
    filled: tuple[str, list[str]] = fill(text)
    return filled


def generated_secrets() -> dict[str, str]:
    """Fresh values, made from .env.example by deploy/fill-env.py as the README says."""
    text, _ = fill_env_file(ENV_EXAMPLE.read_text())
    return read_env_text(text)


def load_settings(
    monkeypatch: pytest.MonkeyPatch, service: str, variables: Mapping[str, str]
) -> ServiceSettings:
    """The service's settings as its container would read them."""
    settings = settings_class(service)
    for names in env_names(settings).values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name, value in environment(bothways_services()[service]).items():
        monkeypatch.setenv(name, interpolate(value, variables))
    return settings()  # type: ignore[call-arg]


# --- deploy/Dockerfile ------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def dockerfile_stages() -> list[Stage]:
    """The stages of deploy/Dockerfile, with global ARG defaults substituted into FROM."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if (pending + line).strip():
            logical.append((pending + line).strip())
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for statement in logical:
        instruction, _, args = statement.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            words = interpolate(args, global_args).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((instruction, args))
        elif instruction == "ARG":
            name, _, default = args.partition("=")
            global_args[name] = default
    return stages


def final_stage() -> Stage:
    return dockerfile_stages()[-1]


# --- .dockerignore ----------------------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, list[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rules.append((keep, pattern.split("/")))
    return rules


def pattern_matches(pattern: list[str], parts: list[str]) -> bool:
    """Docker's matching: `*` stays within one path element, `**` spans any number of them."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(pattern_matches(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and pattern_matches(pattern[1:], parts[1:])


def in_build_context(path: str) -> bool:
    """Whether the build context keeps `path`: the last rule matching it or a parent folder wins."""
    parts = path.split("/")
    kept = True
    for keep, pattern in dockerignore_rules():
        if any(pattern_matches(pattern, parts[:end]) for end in range(1, len(parts) + 1)):
            kept = keep
    return kept


# --- tests: docker-compose.yml ----------------------------------------------------------------------


def test_every_image_is_pinned_to_a_version() -> None:
    images = {name: spec["image"] for name, spec in compose_services().items() if "image" in spec}
    assert set(images) == set(compose_services()), "every service names its image"
    for name, image in images.items():
        assert pinned(image), f"{name}: {image} is not pinned"
    for stage in dockerfile_stages():
        assert pinned(stage.base), f"FROM {stage.base} is not pinned"
    if syntax := re.match(r"#\s*syntax\s*=\s*(\S+)", DOCKERFILE.read_text()):
        assert pinned(syntax[1]), f"the Dockerfile frontend {syntax[1]} is not pinned"


def test_the_image_built_here_is_tagged_with_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, spec in bothways_services().items():
        assert spec["image"] == f"bothways:{version}", name
        assert spec["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}, name
        assert spec.get("pull_policy") == "build", f"{name}: a registry image must not stand in for it"


def test_compose_runs_each_service_of_the_design_as_its_own_command() -> None:
    assert set(bothways_services()) == set(SERVICES)
    for name, spec in bothways_services().items():
        assert spec["command"] == ["python", "-m", f"services.{name}"]
        assert (ROOT / "services" / name / "__main__.py").is_file()


@pytest.mark.parametrize("service", SERVICES)
def test_every_bothways_service_sets_only_settings_its_settings_class_has(service: str) -> None:
    known = set().union(*env_names(settings_class(service)).values())
    unknown = set(environment(bothways_services()[service])) - known
    assert not unknown, f"{service}: {sorted(unknown)} match no field of {settings_class(service).__name__}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_bothways_service_provides_every_required_setting(service: str) -> None:
    settings = settings_class(service)
    given = set(environment(bothways_services()[service]))
    required = {name for name, info in settings.model_fields.items() if info.is_required()}
    assert required, "the base settings have required fields (database, broker)"
    missing = {name for name in required if not env_names(settings)[name] & given}
    assert not missing, f"{service}: nothing sets {sorted(missing)}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_bothways_service_starts_with_valid_settings_from_compose_and_env_file(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(monkeypatch, service, generated_secrets())
    assert settings.port == devstack.SERVICES[service]
    assert ipaddress.ip_address(settings.host).is_unspecified, "reachable from outside its container"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_idempotent_producer is True
    assert settings.database_url.startswith("postgresql://bothways:")
    assert settings.api_keys, "the REST APIs must not run without keys"
    if service == "ingest":
        assert settings.generic_keys()  # type: ignore[attr-defined]
    if service == "survey":
        assert settings.token_keys()  # type: ignore[attr-defined]
        assert settings.smtp_server() is None, "no SMTP server unless .env names one"  # type: ignore[attr-defined]


def test_the_placeholder_webhook_secret_of_env_example_stops_ingest_from_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    placeholder = read_env_file(ENV_EXAMPLE)["BOTHWAYS_GENERIC_WEBHOOK_SECRETS"]
    variables = {**generated_secrets(), "BOTHWAYS_GENERIC_WEBHOOK_SECRETS": placeholder}
    with pytest.raises(ValidationError, match="generic_webhook_secrets"):
        load_settings(monkeypatch, "ingest", variables)


def test_the_placeholder_survey_token_secret_of_env_example_stops_survey_from_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    placeholder = read_env_file(ENV_EXAMPLE)["BOTHWAYS_SURVEY_TOKEN_SECRETS"]
    variables = {**generated_secrets(), "BOTHWAYS_SURVEY_TOKEN_SECRETS": placeholder}
    with pytest.raises(ValidationError, match="survey_token_secrets"):
        load_settings(monkeypatch, "survey", variables)


@pytest.mark.parametrize("service", SERVICES)
def test_the_placeholder_api_keys_of_env_example_stop_every_service_from_starting(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    placeholder = read_env_file(ENV_EXAMPLE)["BOTHWAYS_API_KEYS"]
    with pytest.raises(SettingsError, match="api_keys"):
        load_settings(monkeypatch, service, {**generated_secrets(), "BOTHWAYS_API_KEYS": placeholder})


def test_each_service_listens_on_its_own_port_published_on_loopback_only() -> None:
    for name, spec in bothways_services().items():
        port = devstack.SERVICES[name]
        assert settings_class(name).model_fields["port"].default == port
        assert environment(spec)["BOTHWAYS_PORT"] == str(port)
        assert spec["ports"] == [f"127.0.0.1:{port}:{port}"]
    for name, spec in compose_services().items():
        for published in spec.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), f"{name} publishes {published} beyond the host"


def test_every_service_has_a_healthcheck() -> None:
    for name, spec in compose_services().items():
        check = spec.get("healthcheck") or {}
        assert not check.get("disable"), name
        assert check.get("test"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    for name, spec in bothways_services().items():
        probe = " ".join(spec["healthcheck"]["test"])
        assert "BOTHWAYS_PORT" in probe, f"{name} probes another port"
        assert "/healthz" in probe, f"{name} probes another endpoint"
    assert "pg_isready" in " ".join(compose_services()["postgres"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in " ".join(compose_services()["kafka"]["healthcheck"]["test"])


def test_services_wait_for_healthy_dependencies() -> None:
    for name, spec in compose_services().items():
        depends_on = spec.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: a plain depends_on list waits for nothing"
        for dependency, condition in depends_on.items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    for name, spec in bothways_services().items():
        assert {"kafka", "postgres"} <= set(spec["depends_on"]), name


def test_services_reach_the_broker_and_database_the_stack_runs() -> None:
    kafka, postgres = compose_services()["kafka"], compose_services()["postgres"]
    kafka_env, postgres_env = environment(kafka), environment(postgres)
    for key in (
        "KAFKA_NODE_ID",
        "KAFKA_PROCESS_ROLES",
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_CONTROLLER_LISTENER_NAMES",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
    ):
        assert kafka_env.get(key), f"KRaft needs {key}"
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    advertised = {
        listener.split("://", 1)[1] for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    database = f"@postgres:5432/{postgres_env['POSTGRES_DB']}"
    for name, spec in bothways_services().items():
        env = environment(spec)
        assert env["BOTHWAYS_KAFKA_BOOTSTRAP_SERVERS"] in advertised, name
        assert env["BOTHWAYS_DATABASE_URL"].startswith(f"postgresql://{postgres_env['POSTGRES_USER']}:"), name
        assert env["BOTHWAYS_DATABASE_URL"].endswith(database), name
        assert "${POSTGRES_PASSWORD" in env["BOTHWAYS_DATABASE_URL"], name


def secret_fields(settings: type[ServiceSettings]) -> set[str]:
    return {name for name, info in settings.model_fields.items() if "SecretStr" in repr(info.annotation)}


def test_secrets_come_from_the_env_file_never_from_the_compose_file() -> None:
    secret_like = ("_PASSWORD", "_SECRETS", "_TOKENS", "_BASIC_AUTH", "_API_KEYS", "_TOKEN", "_API_KEY")
    required = required_variables(COMPOSE_FILE.read_text())
    for name, spec in compose_services().items():
        for key, value in environment(spec).items():
            if key in SECRETS:
                assert re.fullmatch(rf"\$\{{{key}:\?[^}}]+\}}", value), (
                    f"{name}: {key} must be ${{{key}:?...}}"
                )
            elif key.endswith(secret_like):
                # Only variables (optional ones default to an empty list) and JSON punctuation: no literal secret.
                literal = VARIABLE.sub("", value.replace("${" + key + ":-[]}", ""))
                assert re.fullmatch(r'[\[\]",\s]*', literal), f"{name}: {key} holds a literal {literal!r}"
                for match in VARIABLE.finditer(value):
                    variable = match["braced"] or match["bare"]
                    assert variable == key or variable in required, (
                        f"{name}: {key} reads {variable} unguarded"
                    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_secret_setting_can_be_given_through_the_env_file(service: str) -> None:
    settings = settings_class(service)
    given = set(environment(bothways_services()[service]))
    missing = {name for name in secret_fields(settings) if not env_names(settings)[name] & given}
    assert not missing, f"{service}: docker-compose.yml cannot set {sorted(missing)}"
    assert "BOTHWAYS_API_KEYS" in given, "the REST APIs need keys"


def test_env_example_defines_every_variable_the_compose_file_requires() -> None:
    required = required_variables(COMPOSE_FILE.read_text())
    assert set(SECRETS) <= required
    example = read_env_file(ENV_EXAMPLE)
    assert not required - set(example), f".env.example lacks {sorted(required - set(example))}"
    for name in required:
        assert example[name], f".env.example leaves {name} empty"
    interpolate(COMPOSE_FILE.read_text(), example)  # every ${...:?} guard is satisfied
    assert all(s.startswith("whsec_") for s in json.loads(example["BOTHWAYS_GENERIC_WEBHOOK_SECRETS"]))


# --- deploy/fill-env.py -----------------------------------------------------------------------------


def test_fill_env_replaces_every_placeholder_of_env_example() -> None:
    example = ENV_EXAMPLE.read_text()
    placeholders = {name for name, value in read_env_text(example).items() if "REPLACE_ME" in value}
    text, filled = fill_env_file(example)
    assert set(filled) == placeholders
    assert "REPLACE_ME" not in "".join(read_env_text(text).values())
    # Comments and optional settings are left as they were.
    assert [line for line in text.splitlines() if line.startswith("#")] == [
        line for line in example.splitlines() if line.startswith("#")
    ]


def test_fill_env_makes_fresh_values_and_keeps_values_already_set() -> None:
    first, _ = fill_env_file(ENV_EXAMPLE.read_text())
    second, _ = fill_env_file(ENV_EXAMPLE.read_text())
    again, filled_again = fill_env_file(first)
    assert read_env_text(first)["POSTGRES_PASSWORD"] != read_env_text(second)["POSTGRES_PASSWORD"]
    assert filled_again == []
    assert again == first


def test_fill_env_refuses_a_placeholder_it_cannot_generate() -> None:
    with pytest.raises(SystemExit, match="BOTHWAYS_SOMETHING_NEW"):
        fill_env_file(ENV_EXAMPLE.read_text() + "BOTHWAYS_SOMETHING_NEW=REPLACE_ME\n")


def test_fill_env_writes_the_file_readable_by_its_owner_only(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    result = subprocess.run(
        ["python3", str(FILL_ENV), str(env_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "REPLACE_ME" not in "".join(read_env_file(env_file).values())
    assert "BOTHWAYS_API_KEYS" in result.stdout
    assert not any(value in result.stdout for value in read_env_file(env_file).values()), "no secret printed"


@pytest.mark.parametrize("service", SERVICES)
def test_prometheus_metrics_key_from_fill_env_has_the_read_scope_on_every_service(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = generated_secrets()
    settings = load_settings(monkeypatch, service, variables)
    scopes = {key.get_secret_value(): scopes for key, scopes in settings.api_keys.items()}
    assert scopes[variables["BOTHWAYS_METRICS_API_KEY"]] == {"read"}, "read only: Prometheus needs no more"
    assert any("admin" in granted for granted in scopes.values()), "an admin key for the operator"


def test_ingest_accepts_the_token_the_stacks_alertmanager_presents(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = generated_secrets()
    settings = load_settings(monkeypatch, "ingest", variables)
    tokens = [token.get_secret_value() for token in settings.alertmanager_bearer_tokens]  # type: ignore[attr-defined]
    assert tokens == [variables["BOTHWAYS_ALERTMANAGER_TOKEN"]]


def test_the_placeholder_alertmanager_token_of_env_example_stops_ingest_from_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    placeholder = read_env_file(ENV_EXAMPLE)["BOTHWAYS_ALERTMANAGER_TOKEN"]
    with pytest.raises(SettingsError, match="alertmanager_bearer_tokens"):
        load_settings(
            monkeypatch, "ingest", {**generated_secrets(), "BOTHWAYS_ALERTMANAGER_TOKEN": placeholder}
        )


# --- Grafana ------------------------------------------------------------------------------------------


def grafana_mounts() -> dict[str, str]:
    volumes = compose_services()["grafana"]["volumes"]
    return {v.split(":")[1]: v.split(":")[0] for v in volumes if v.startswith("./")}


def test_grafana_is_provisioned_from_deploy_grafana() -> None:
    mounts = grafana_mounts()
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "bothways.yml").read_text())
    (only,) = provider["providers"]
    assert only["type"] == "file"
    assert mounts[only["options"]["path"]] == "./deploy/grafana/dashboards", (
        "the provider reads the mounted folder"
    )


def test_grafanas_datasource_is_the_stacks_prometheus() -> None:
    (source,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose_services()["prometheus"]["ports"]
    assert source["uid"] == "bothways-prometheus"


def datasource_uids(node: Any) -> set[str]:
    """Every datasource uid a dashboard names, at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.add(source["uid"])
        for value in node.values():
            found |= datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            found |= datasource_uids(item)
    return found


def test_every_dashboard_reads_the_provisioned_datasource() -> None:
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    if not dashboards:
        pytest.skip("no dashboard in deploy/grafana/dashboards/ yet: the reporting service's issue adds them")
    for path in dashboards:
        uids = datasource_uids(json.loads(path.read_text()))
        # A ${variable} is a datasource chosen in the dashboard; anything else must be the provisioned one.
        assert {uid for uid in uids if not uid.startswith("$")} <= {"bothways-prometheus", "-- Grafana --"}, (
            path.name
        )


# --- one source of truth for dependencies ---------------------------------------------------------


def test_the_image_and_the_ci_install_the_project_the_same_way_from_pyproject() -> None:
    """CI runs `make test`, whose venv step is `pip install -e '.[dev]'`; the image runs `pip install .`:
    the same resolver on the same pyproject.toml, the image leaving out the editable mode and the
    test-only extras."""
    makefile_installs = re.findall(r"\$\(BIN\)/pip install (?:--quiet )?(.+)", MAKEFILE.read_text())
    assert "-e '.[dev]'" in makefile_installs, makefile_installs
    assert not [i for i in makefile_installs if "-r" in i.split() or "requirements" in i]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    for requirement in [
        *pyproject["project"]["dependencies"],
        *(r for group in extras.values() for r in group),
    ]:
        assert "==" in requirement or requirement.startswith("bothways["), f"{requirement} is not pinned"


def test_env_example_defines_every_variable_compose_reads_into_a_secret_file() -> None:
    example = read_env_file(ENV_EXAMPLE)
    for name, secret in compose()["secrets"].items():
        assert set(secret) == {"environment"}, f"{name}: from .env, not from a file in the repository"
        assert example.get(secret["environment"]), f".env.example lacks {secret['environment']} for {name}"
    for name, spec in compose_services().items():
        for secret in spec.get("secrets", []):
            assert secret in compose()["secrets"], f"{name} mounts the undefined secret {secret}"


# --- the Compose Specification --------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    """The Compose Specification schema as vendored by check-jsonschema (pinned in pyproject.toml)."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads(
        (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    )
    return schema


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def interpolate_values(node: Any, variables: Mapping[str, str]) -> Any:
    """Compose interpolates the parsed file's strings, not its text: `[]` from a default stays a string."""
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: interpolate_values(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_values(item, variables) for item in node]
    return node


def interpolated_compose() -> Any:
    """docker-compose.yml as Compose validates it: after interpolation, here with a filled .env."""
    return interpolate_values(compose(), generated_secrets())


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert compose_schema()["title"] == "Compose Specification"
    assert schema_errors(interpolated_compose()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "ingest", "depends_on", "kafka", "condition"), "service_healty"),
        (("services", "prometheus", "healthcheck", "interval_seconds"), "10"),
        (("secrets", "grafana_admin_password", "environmnet"), "GRAFANA_ADMIN_PASSWORD"),
    ],
)
def test_the_schema_check_catches_a_misspelt_compose_file(path: tuple[str, ...], value: str) -> None:
    broken = interpolated_compose()
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_errors(broken), f"{'/'.join(path)}={value} was accepted"


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_docker_compose_accepts_the_file() -> None:
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        pytest.skip("the docker client here has no `compose` plugin to validate the file offline")
    result = subprocess.run(
        ["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


# --- tests: deploy/Dockerfile and .dockerignore -----------------------------------------------------


def test_the_image_is_based_on_a_pinned_official_python_slim_bookworm() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", stage.base), stage.base


def test_the_final_stage_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    stage = final_stage()
    users = stage.args("USER")
    assert users, "the final stage sets a USER"
    user, _, group = users[-1].partition(":")
    assert user not in ROOT_USERS, f"USER {users[-1]}"
    assert group not in ROOT_USERS, f"USER {users[-1]}"
    healthchecks = stage.args("HEALTHCHECK")
    assert healthchecks, "the final stage has a HEALTHCHECK"
    probe = healthchecks[-1]
    assert probe.upper() != "NONE"
    assert "/healthz" in probe
    assert "BOTHWAYS_PORT" in probe
    assert not re.search(r"\b(curl|wget)\b", probe), "the slim image has neither"
    assert json.loads(stage.args("CMD")[-1]) == ["python", "-m", "services.ingest"]
    assert set(" ".join(stage.args("EXPOSE")).split()) == {str(port) for port in devstack.SERVICES.values()}


def test_the_final_stage_copies_only_the_virtualenv_and_installs_nothing() -> None:
    build, final = dockerfile_stages()[0], final_stage()
    copies = final.args("COPY") + final.args("ADD")
    assert copies, "the final stage copies the virtualenv"
    for copy in copies:
        assert copy.startswith(f"--from={build.name} "), f"the final stage copies {copy!r} from the context"
    for run in final.args("RUN"):
        assert not re.search(r"\b(apt-get|apt|pip|gcc|make)\b", run), f"the final stage runs {run!r}"
    assert any("/opt/bothways" in copy for copy in copies)
    assert "/opt/bothways/bin" in " ".join(final.args("ENV"))


def test_the_project_is_installed_from_pyproject_without_extras_or_requirements_files() -> None:
    build = dockerfile_stages()[0]
    installs = [run for run in build.args("RUN") if "pip install" in run]
    assert installs, "the build stage installs the project"
    for run in installs:
        assert re.search(r"pip install (--?[\w-]+(=\S+)? )*\.(\s|$)", run), f"not `pip install .`: {run!r}"
        assert not re.search(r"\s-r\s|--requirement|requirements|\.\[", run), f"{run!r}"
    assert "requirements" not in DOCKERFILE.read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"], "the dependencies are declared in pyproject.toml"


def test_the_build_context_keeps_out_local_state_secrets_caches_and_tests() -> None:
    for path in (
        ".venv/bin/python",
        ".bothways/logs/ingest.log",
        ".env",
        ".git/HEAD",
        "tests/conftest.py",
        "bench/pipeline.py",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/cache.db",
        ".ruff_cache/CACHEDIR.TAG",
        ".hypothesis/examples/x",
        "bothways.egg-info/PKG-INFO",
        "bothways/__pycache__/web.cpython-311.pyc",
        "services/ingest/__pycache__/app.cpython-311.pyc",
    ):
        assert not in_build_context(path), f"{path} reaches the build context"


def test_the_build_context_keeps_everything_the_wheel_is_built_from() -> None:
    assert in_build_context("pyproject.toml")
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("readme")
    if isinstance(readme, str):
        assert in_build_context(readme), f"setuptools needs {readme}"
    packages = [
        pattern.rstrip("*")
        for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
            "find"
        ]["include"]
    ]
    assert {"bothways", "services", "simulator"} <= set(packages)
    # The committed files: what `pip install` compiles from them (the calendar core's C and .so) is not a source.
    tracked = subprocess.run(
        ["git", "ls-files", "--", *packages], cwd=ROOT, capture_output=True, text=True, check=True
    )
    sources = tracked.stdout.split()
    assert any(source.endswith(".sql") for source in sources)
    assert any(source.endswith(".pyx") for source in sources)
    assert in_build_context("setup.py"), "setup.py compiles the calendar core"
    assert not in_build_context("services/sla/_clock_core.cpython-311-x86_64-linux-gnu.so")
    left_out = [source for source in sources if not in_build_context(source)]
    assert not left_out, f"the build context lacks {left_out}"
