"""Shared fixtures: real PostgreSQL, real SeaweedFS, a real Airflow running the DAGs.

Nothing here skips: when a component cannot start, the test fails and says how to fix it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Airflow reads its configuration when first imported: point it at a throw-away home first.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="subscription-exports-airflow-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
}
os.environ.update(AIRFLOW_ENV)

from devtools.seaweedfs import Identity, SeaweedFS  # noqa: E402  (after the Airflow environment)

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
BUCKETS = ("adapty-events", "adapty-ua", "exports")
EXPORTER = Identity(
    name="exporter",
    access_key="EXPORTERKEY0000000001",
    secret_key="exporter-secret-Zq8w3N0tInLogs",
    # Exactly the least-privilege policy of the seed: list, read and write objects, nothing else.
    actions=[f"{verb}:{bucket}" for bucket in BUCKETS for verb in ("Read", "Write", "List")],
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


# -- PostgreSQL --------------------------------------------------------------------------------


def _pg_connect(dbname: str = "postgres"):
    import psycopg2

    return psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname, connect_timeout=5)


@pytest.fixture(scope="session")
def postgres() -> str:
    """A running PostgreSQL on 127.0.0.1:5432; started if it is down, else the suite fails."""
    import psycopg2

    try:
        _pg_connect().close()
    except psycopg2.OperationalError:
        subprocess.run(PG_START, shell=True, check=False, capture_output=True)
        try:
            _pg_connect().close()
        except psycopg2.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} and could not be started ({exc}). "
                f"Start it with: {PG_START}",
                pytrace=False,
            )
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}"


@pytest.fixture(scope="session")
def pg_database_factory(postgres: str) -> Iterator[Any]:
    """Create uniquely named databases; all are dropped at the end of the session."""
    created: list[str] = []

    def create() -> str:
        name = f"se_test_{uuid.uuid4().hex[:10]}"
        conn = _pg_connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        created.append(name)
        return f"{postgres}/{name}"

    yield create
    conn = _pg_connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in created:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# -- SeaweedFS ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    store = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"), [EXPORTER], buckets=list(BUCKETS))
    try:
        store.start()
    except Exception as exc:
        pytest.fail(f"SeaweedFS could not start: {exc}", pytrace=False)
    yield store
    store.stop()


@pytest.fixture
def s3(seaweedfs: SeaweedFS):
    """Admin client for assertions; every bucket is emptied after the test."""
    client = seaweedfs.admin_client()
    yield client
    for bucket in BUCKETS:
        for key in list_keys(client, bucket):
            client.delete_object(Bucket=bucket, Key=key)


def list_keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


def aws_connection(seaweedfs: SeaweedFS, identity: Identity = EXPORTER, **extra: Any) -> str:
    """An Airflow `aws` connection (JSON form) for a SeaweedFS identity."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": identity.access_key,
            "password": identity.secret_key,
            "extra": {
                "endpoint_url": seaweedfs.endpoint_url,
                "region_name": "us-east-1",
                "config_kwargs": {
                    "s3": {"addressing_style": "path"},
                    "retries": {"mode": "standard", "max_attempts": 2},
                },
                **extra,
            },
        }
    )


def source_connection(url: str) -> str:
    """An Airflow connection for a postgresql:// URL or a SQLite file path."""
    if url.startswith("postgresql://"):
        return url
    return json.dumps({"conn_type": "sqlite", "host": url})


# -- Airflow -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database in the session's AIRFLOW_HOME."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env={**os.environ, **AIRFLOW_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"`airflow db migrate` failed:\n{result.stderr[-3000:]}", pytrace=False)
    return AIRFLOW_HOME


def run_dag(
    dag_id: str,
    *,
    logical_date: str | None = None,
    conf: dict[str, Any] | None = None,
    connections: dict[str, str],
    variables: dict[str, str] | None = None,
    timeout: int = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a whole DAG with the real Airflow CLI (`airflow dags test`), in a subprocess.

    Connections and Variables are given the way deployments often do: AIRFLOW_CONN_* / AIRFLOW_VAR_*.
    """
    env = {**os.environ, **AIRFLOW_ENV}
    env.update({f"AIRFLOW_CONN_{k.upper()}": v for k, v in connections.items()})
    env.update({f"AIRFLOW_VAR_{k.upper()}": v for k, v in (variables or {}).items()})
    cmd = [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    if conf is not None:
        cmd += ["--conf", json.dumps(conf)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
