"""docker-compose.yaml, Dockerfile and docker/seaweedfs/s3.json, checked statically.

No Docker engine runs on the development and CI machines (SPEC section 9), so these tests read
the files and cross-check them against each other and against include/destinations/*.yaml and
requirements.txt: the stack a user starts must run the same DAGs with the same connection ids,
buckets and least-privilege identity as the tests and the demo do.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
S3_CONFIG = ROOT / "docker" / "seaweedfs" / "s3.json"
DESTINATIONS_DIR = ROOT / "include" / "destinations"
README = ROOT / "README.md"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
ONE_SHOT_SERVICES = ("airflow-init", "source-seed", "seaweedfs-init")
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    *AIRFLOW_SERVICES,
    "source-db",
    "source-seed",
    "seaweedfs",
    "seaweedfs-init",
}
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
PROJECT_MOUNTS = {
    "/opt/airflow/dags": "dags",
    "/opt/airflow/plugins": "plugins",
    "/opt/airflow/include": "include",
}
EXPORTER_VERBS = ("Read", "Write", "List")
DEFAULT_S3_PORT = 8333
SEEDED_APPS = ["com.acme.ios", "com.acme.android"]


# -- loading and normalising ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yaml must be a mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yaml has no services"
    return found


@pytest.fixture(scope="module")
def destination_documents() -> list[dict[str, Any]]:
    paths = sorted(DESTINATIONS_DIR.glob("*.yaml"))
    assert paths, f"no destination files in {DESTINATIONS_DIR}"
    return [yaml.safe_load(path.read_text()) for path in paths]


@pytest.fixture(scope="module")
def destination_buckets(destination_documents: list[dict[str, Any]]) -> set[str]:
    """Bucket names of every destination: the part of `bucket` before the first '/'."""
    buckets = {str(d["bucket"]).split("/", 1)[0] for doc in destination_documents for d in doc["destinations"]}
    assert buckets
    return buckets


@pytest.fixture(scope="module")
def identities() -> list[dict[str, Any]]:
    document = json.loads(S3_CONFIG.read_text())
    found = document.get("identities")
    assert isinstance(found, list) and found, f"{S3_CONFIG.relative_to(ROOT)} has no identities"
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, list (`K=V`) or mapping form, as a str -> str dict."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short (`src:dst[:mode]`) or long syntax."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            result.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            parts = str(entry).split(":")
            assert len(parts) >= 2, f"anonymous volume {entry!r}: give it a name"
            result.append((parts[0], parts[1]))
    return result


def is_named_volume(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~", "$"))


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as service -> condition (list form means service_started)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def command_text(service: dict[str, Any]) -> str:
    return f"{as_text(service.get('entrypoint'))} {as_text(service.get('command'))}".strip()


def shell_words(service: dict[str, Any]) -> list[str]:
    """The words of a service's command, shell line continuations joined."""
    return shlex.split(command_text(service).replace("\\\n", " "))


def option(words: list[str], flag: str) -> str:
    assert flag in words, f"{flag} missing in {' '.join(words)}"
    return words[words.index(flag) + 1]


def identity_by_access_key(identities: list[dict[str, Any]], access_key: str) -> dict[str, Any]:
    matches = [i for i in identities if any(c.get("accessKey") == access_key for c in i.get("credentials", []))]
    assert len(matches) == 1, f"access key {access_key!r} must belong to exactly one identity in s3.json"
    return matches[0]


def secret_of(identity: dict[str, Any], access_key: str) -> str:
    return next(c["secretKey"] for c in identity["credentials"] if c["accessKey"] == access_key)


def exports_s3_connection(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    raw = environment(services["airflow-worker"]).get("AIRFLOW_CONN_EXPORTS_S3")
    assert raw, "AIRFLOW_CONN_EXPORTS_S3 is not set for the worker"
    return json.loads(raw)


def seaweedfs_s3_port(service: dict[str, Any]) -> int:
    match = re.search(r"-s3\.port=(\d+)", command_text(service))
    return int(match.group(1)) if match else DEFAULT_S3_PORT


def dockerfile_args() -> dict[str, str]:
    """Default values of the Dockerfile's build arguments (``ARG NAME=value``)."""
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)\s*$", DOCKERFILE.read_text(), re.MULTILINE))


def airflow_pin() -> str:
    """The Airflow version the image is built from by default (requirements.txt names no Airflow)."""
    version = dockerfile_args().get("AIRFLOW_VERSION")
    assert version, "the Dockerfile has no ARG AIRFLOW_VERSION=<version>"
    return version


def airflow_version_of_tag(tag: str) -> str:
    """`3.3.2-python3.11` -> `3.3.2`."""
    return tag.split("-", 1)[0]


# -- structure --------------------------------------------------------------------------------


def test_compose_file_parses(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict)
    assert isinstance(compose.get("x-airflow-common"), dict), "the shared Airflow settings live in x-airflow-common"


def test_expected_services_present(services: dict[str, dict[str, Any]]) -> None:
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_uses_common_image_and_mounts_project(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], name: str
) -> None:
    common = compose["x-airflow-common"]
    service = services[name]
    assert service.get("image") == common["image"]
    assert service.get("build") == common["build"]
    by_target = {target: source for source, target in mounts(service)}
    for target, directory in PROJECT_MOUNTS.items():
        assert target in by_target, f"{name} does not mount ./{directory} on {target}"
        assert Path(by_target[target]).parts == Path(directory).parts or by_target[target] == f"./{directory}"
        assert (ROOT / directory).is_dir()


@pytest.mark.parametrize(("name", "command"), sorted(AIRFLOW_COMMANDS.items()))
def test_airflow_service_command(services: dict[str, dict[str, Any]], name: str, command: str) -> None:
    assert as_text(services[name].get("command")) == command


def test_common_build_uses_the_dockerfile(compose: dict[str, Any]) -> None:
    build = compose["x-airflow-common"]["build"]
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (context / dockerfile).resolve() == DOCKERFILE.resolve()


def test_database_and_broker_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["postgres"]["image"] == "postgres:16"
    assert services["source-db"]["image"] == "postgres:16"
    assert services["redis"]["image"].startswith("redis:7.2")
    assert services["seaweedfs"]["image"].split(":")[0] == "chrislusf/seaweedfs"


def test_airflow_init_migrates_and_creates_admin(services: dict[str, dict[str, Any]]) -> None:
    text = command_text(services["airflow-init"])
    assert "airflow db migrate" in text
    assert "airflow users create" in text
    assert "--role Admin" in text


# -- executor, broker, shared Airflow settings ---------------------------------------------


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_celery_executor_with_redis_broker(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(services[name])
    assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"
    broker = urlsplit(env.get("AIRFLOW__CELERY__BROKER_URL", ""))
    assert broker.scheme == "redis"
    assert broker.hostname in services and services[broker.hostname]["image"].startswith("redis:")
    backend = urlsplit(env.get("AIRFLOW__CELERY__RESULT_BACKEND", ""))
    assert backend.scheme == "db+postgresql" and backend.hostname == "postgres"
    metadata = urlsplit(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
    assert metadata.scheme.startswith("postgresql") and metadata.hostname == "postgres"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_shared_airflow_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(services[name])
    assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() == "false"
    assert env.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "").lower() == "false"
    assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/"
    assert env.get("AIRFLOW__CORE__FERNET_KEY"), "fernet key placeholder missing"
    assert env.get("AIRFLOW__API_AUTH__JWT_SECRET"), "JWT secret missing"


def test_secrets_identical_across_airflow_services(services: dict[str, dict[str, Any]]) -> None:
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        values = {environment(services[name]).get(key) for name in AIRFLOW_SERVICES}
        assert len(values) == 1, f"{key} differs between Airflow services"


def test_apiserver_published_on_8080(services: dict[str, dict[str, Any]]) -> None:
    ports = [str(p) for p in services["airflow-apiserver"].get("ports", [])]
    assert any(p.split(":")[-2:] == ["8080", "8080"] for p in ports), ports
    assert "/api/v2/version" in as_text(services["airflow-apiserver"]["healthcheck"]["test"])


# -- healthchecks, dependencies, volumes ----------------------------------------------------


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    missing = [
        name
        for name, service in services.items()
        if name not in ONE_SHOT_SERVICES
        and (not service.get("healthcheck", {}).get("test") or service["healthcheck"].get("disable"))
    ]
    assert not missing, f"long-running services without a healthcheck: {missing}"


def test_depends_on_targets_exist_with_fitting_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), f"{name} waits for {target} healthy: no healthcheck"
            elif condition == "service_completed_successfully":
                assert target in ONE_SHOT_SERVICES, f"{name} waits for long-running {target} to complete"
            else:
                assert condition == "service_started", f"{name} -> {target}: unknown condition {condition!r}"


def test_one_shot_services_are_awaited(services: dict[str, dict[str, Any]]) -> None:
    awaited = {
        target
        for service in services.values()
        for target, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    assert set(ONE_SHOT_SERVICES) <= awaited
    worker = depends_on(services["airflow-worker"])
    for name in ONE_SHOT_SERVICES:
        assert worker.get(name) == "service_completed_successfully", f"the worker must wait for {name}"
    for name in ONE_SHOT_SERVICES:
        assert services[name].get("restart", "no") in ("no", "on-failure"), f"{name} is one-shot"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    used = {source for service in services.values() for source, _ in mounts(service) if is_named_volume(source)}
    assert used, "databases and SeaweedFS should keep their data in named volumes"
    assert used <= declared, f"named volumes used but not declared: {sorted(used - declared)}"
    for name in ("postgres", "source-db", "seaweedfs"):
        assert any(is_named_volume(source) for source, _ in mounts(services[name])), f"{name} has no named volume"


def test_bind_mount_sources_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source, _ in mounts(service):
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# -- connections ----------------------------------------------------------------------------


def test_connection_ids_match_destinations(
    services: dict[str, dict[str, Any]], destination_documents: list[dict[str, Any]]
) -> None:
    referenced = {doc["source_conn_id"] for doc in destination_documents}
    referenced |= {d["conn_id"] for doc in destination_documents for d in doc["destinations"]}
    for name in AIRFLOW_SERVICES:
        given = {
            key.removeprefix("AIRFLOW_CONN_").lower()
            for key in environment(services[name])
            if key.startswith("AIRFLOW_CONN_")
        }
        assert given == referenced, f"{name}: AIRFLOW_CONN_* {sorted(given)} != destinations {sorted(referenced)}"


def test_source_connection_points_at_source_db(services: dict[str, dict[str, Any]]) -> None:
    uri = urlsplit(environment(services["airflow-worker"])["AIRFLOW_CONN_SUBSCRIPTION_SOURCE"])
    db_env = environment(services["source-db"])
    assert uri.scheme in ("postgres", "postgresql")
    assert uri.hostname == "source-db"
    assert (uri.port or 5432) == 5432
    assert uri.path.lstrip("/") == db_env["POSTGRES_DB"]
    assert uri.username == db_env["POSTGRES_USER"]
    assert uri.password == db_env["POSTGRES_PASSWORD"]


def test_source_seed_fills_source_db(
    services: dict[str, dict[str, Any]], destination_documents: list[dict[str, Any]]
) -> None:
    seed = services["source-seed"]
    words = shell_words(seed)
    assert "devtools.synthetic" in words
    assert option(words, "--target") == environment(services["airflow-worker"])["AIRFLOW_CONN_SUBSCRIPTION_SOURCE"]
    assert option(words, "--apps").split(",") == SEEDED_APPS
    assert option(words, "--days") == "3"
    assert option(words, "--rows-per-day") == "500"
    assert option(words, "--seed") == "2026"
    assert "--recreate" in words
    assert option(words, "--start")
    assert environment(seed).get("PYTHONPATH") == "/opt/airflow:/opt/airflow/plugins"
    by_target = {target: source for source, target in mounts(seed)}
    for target, directory in {"/opt/airflow/plugins": "plugins", "/opt/airflow/include": "include"}.items():
        assert by_target.get(target) == f"./{directory}", f"source-seed does not mount ./{directory} on {target}"
    assert by_target.get("/opt/airflow/devtools") == "./devtools", "source-seed runs devtools.synthetic: mount it"
    targets = {target for _, target in mounts(seed)}
    assert {"/opt/airflow/plugins", "/opt/airflow/include"} <= targets
    assert depends_on(seed).get("source-db") == "service_healthy"
    apps = {d["app_id"] for doc in destination_documents for d in doc["destinations"]}
    assert apps <= set(SEEDED_APPS), "every destination's app must have demo data"


def test_exports_s3_connection_uses_exporter_and_seaweedfs(
    services: dict[str, dict[str, Any]], identities: list[dict[str, Any]]
) -> None:
    conn = exports_s3_connection(services)
    assert conn["conn_type"] == "aws"
    exporter = identity_by_access_key(identities, conn["login"])
    assert conn["password"] == secret_of(exporter, conn["login"])
    extra = conn["extra"]
    endpoint = urlsplit(extra["endpoint_url"])
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "seaweedfs"
    assert endpoint.port == seaweedfs_s3_port(services["seaweedfs"])
    assert extra["region_name"] == "us-east-1"
    assert extra["config_kwargs"]["s3"]["addressing_style"] == "path"


# -- SeaweedFS --------------------------------------------------------------------------------


def test_seaweedfs_runs_s3_with_identities_and_no_telemetry(services: dict[str, dict[str, Any]]) -> None:
    service = services["seaweedfs"]
    text = command_text(service)
    assert "-master.telemetry=false" in text
    match = re.search(r"-s3\.config=(\S+)", text)
    assert match, "seaweedfs must load identities with -s3.config"
    sources = {target: source for source, target in mounts(service)}
    assert match.group(1) in sources, "the -s3.config file is not mounted"
    assert (ROOT / sources[match.group(1)]).resolve() == S3_CONFIG.resolve()


def test_exporter_identity_is_least_privilege(
    services: dict[str, dict[str, Any]], identities: list[dict[str, Any]], destination_buckets: set[str]
) -> None:
    exporter = identity_by_access_key(identities, exports_s3_connection(services)["login"])
    expected = {f"{verb}:{bucket}" for bucket in destination_buckets for verb in EXPORTER_VERBS}
    assert set(exporter["actions"]) == expected
    assert len(exporter["actions"]) == len(expected), "duplicate actions"


def test_seaweedfs_init_creates_destination_buckets_as_admin(
    services: dict[str, dict[str, Any]], identities: list[dict[str, Any]], destination_buckets: set[str]
) -> None:
    init = services["seaweedfs-init"]
    env = environment(init)
    text = f"{command_text(init)} {' '.join(env.values())}"
    for bucket in destination_buckets:
        assert re.search(rf"(?<![\w.-]){re.escape(bucket)}(?![\w.-])", text), f"seaweedfs-init does not create {bucket}"
    access_key = env["AWS_ACCESS_KEY_ID"]
    admin = identity_by_access_key(identities, access_key)
    assert "Admin" in admin["actions"]
    assert env["AWS_SECRET_ACCESS_KEY"] == secret_of(admin, access_key)
    assert "seaweedfs:" in text, "seaweedfs-init must talk to the seaweedfs service"
    assert depends_on(init).get("seaweedfs") == "service_healthy"


def test_identity_access_keys_unique(identities: list[dict[str, Any]]) -> None:
    keys = [c["accessKey"] for i in identities for c in i["credentials"]]
    assert len(keys) == len(set(keys))


# -- image ----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[str]:
    """Dockerfile instructions, comments dropped and continuation lines joined."""
    text = re.sub(r"^\s*#.*\n", "", DOCKERFILE.read_text(), flags=re.MULTILINE)
    return [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], text)


def dockerfile_copies() -> dict[str, str]:
    """Destination in the image -> source in the repository, of every COPY (build arguments expanded)."""
    copies = {}
    for instruction in dockerfile_instructions():
        if instruction.upper().startswith("COPY "):
            words = [w for w in shlex.split(expand(instruction[5:], dockerfile_args())) if not w.startswith("--")]
            copies[words[-1]] = words[0]
    return copies


def dockerfile_pip_install() -> list[str]:
    """The words of the Dockerfile's one `pip install` (build arguments expanded)."""
    runs = [
        shlex.split(expand(i[4:], dockerfile_args())) for i in dockerfile_instructions() if i.upper().startswith("RUN ")
    ]
    installs = [words for words in runs if "pip" in words and "install" in words]
    assert len(installs) == 1, "the Dockerfile must have exactly one pip install"
    return installs[0]


def test_dockerfile_installs_requirements_with_the_lock_of_its_airflow_version() -> None:
    words, copies = dockerfile_pip_install(), dockerfile_copies()
    assert copies[option(words, "-r")] == "requirements.txt"
    assert copies[option(words, "-c")] == f"locks/airflow-{airflow_pin()}.txt"
    assert (ROOT / copies[option(words, "-c")]).is_file()
    # The image's own Airflow is named, so that pip keeps it.
    assert f"apache-airflow=={airflow_pin()}" in words


def test_dockerfile_bakes_in_dags_plugins_and_include() -> None:
    copies = dockerfile_copies()
    for folder in ("dags", "plugins", "include"):
        assert copies.get(f"/opt/airflow/{folder}/", "").rstrip("/") == folder, f"{folder}/ is not copied"


def test_image_airflow_version_matches_the_compose_image(compose: dict[str, Any]) -> None:
    pin = airflow_pin()
    bases = [i.split()[1] for i in dockerfile_instructions() if i.upper().startswith("FROM ")]
    assert len(bases) == 1
    repository, tag = bases[0].rsplit(":", 1)
    assert repository == "apache/airflow"
    assert expand(tag, dockerfile_args()) == f"{pin}-python{dockerfile_args()['PYTHON_VERSION']}"
    image_tag = compose["x-airflow-common"]["image"].rsplit(":", 1)[1]
    assert image_tag == expand(tag, dockerfile_args())


# -- docs -----------------------------------------------------------------------------------


def test_readme_mentions_docker_compose_up() -> None:
    assert "docker compose up" in README.read_text()
