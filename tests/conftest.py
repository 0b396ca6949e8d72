"""Shared fixtures: real PostgreSQL, real SeaweedFS, a real Airflow running the DAGs.

Nothing here skips: when a component cannot start, the test fails and says how to fix it.
"""

from __future__ import annotations

import datetime as dt
import logging
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
from devtools import airflow_env  # noqa: E402

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="subscription-exports-airflow-"))
# Failures must show at once in `airflow dags test`, not after retry delays.
AIRFLOW_ENV = airflow_env.airflow_env(AIRFLOW_HOME, SUBSCRIPTION_EXPORTS_RETRIES="0")
os.environ.update({k: v for k, v in AIRFLOW_ENV.items() if k.startswith(("AIRFLOW", "SUBSCRIPTION", "PYTHONPATH"))})

from devtools import pgserver  # noqa: E402
from devtools.seaweedfs import Identity, SeaweedFS, list_all_keys  # noqa: E402  (after the Airflow environment)

BUCKETS = ("adapty-events", "adapty-ua", "exports")
MISSING_BUCKET = "missing-bucket"
EXPORTER = Identity(
    name="exporter",
    access_key="EXPORTERKEY0000000001",
    secret_key="exporter-secret-Zq8w3N0tInLogs",
    # Exactly the least-privilege policy of the seed: list, read and write objects, nothing else.
    # "missing-bucket" is allowed but never created, so a destination naming it meets NoSuchBucket.
    actions=[f"{verb}:{bucket}" for bucket in (*BUCKETS, MISSING_BUCKET) for verb in ("Read", "Write", "List")],
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


# -- PostgreSQL --------------------------------------------------------------------------------


_PG: pgserver.Postgres | None = None  # set by the `postgres` fixture


def _pg_connect(dbname: str = "postgres"):
    assert _PG is not None, "request the `postgres` fixture (or pg_database_factory) first"
    return _PG.connect(dbname)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """``postgresql://postgres@HOST:PORT`` of a running PostgreSQL, chosen by devtools.pgserver: the
    configured server (default 127.0.0.1:5432), else the local cluster started, else an embedded
    server from the pinned wheel on a free port (SUBSCRIPTION_EXPORTS_PG=embedded forces it)."""
    global _PG
    try:
        _PG = pgserver.ensure_postgres()
    except pgserver.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield _PG.url
    _PG.stop()


@pytest.fixture(scope="session")
def pg_database_factory(postgres: str) -> Iterator[Any]:
    """Create uniquely named databases, seeded by the synthetic generator when given its arguments
    (``create(apps=..., start=..., days=..., rows_per_day=...)``); all are dropped at the end of
    the session."""
    from devtools.synthetic import generate

    created: list[str] = []

    def create(**seed_args: Any) -> str:
        name = f"se_test_{uuid.uuid4().hex[:10]}"
        conn = _pg_connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        created.append(name)
        url = f"{postgres}/{name}"
        if seed_args:
            generate(url, recreate=True, **seed_args)
        return url

    yield create
    conn = _pg_connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in created:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def sqlite_database_factory(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Create SQLite source files in fresh temporary directories, seeded by the synthetic generator
    (``create(apps=..., start=..., days=..., rows_per_day=..., seed=...)``); returns the file's path."""
    from devtools.synthetic import generate

    def create(**seed_args: Any) -> Path:
        path = tmp_path_factory.mktemp("sqlite-source") / "source.db"
        generate(f"sqlite:///{path}", recreate=True, **seed_args)
        return path

    return create


# The seed most DAG-run tests read: two apps, three days around 2026-03-07, 150 rows a day (read only:
# a test that changes rows seeds its own database).
STANDARD_SEED = {"apps": ["com.acme.ios", "com.acme.android"], "start": dt.date(2026, 3, 6), "days": 3,
                 "rows_per_day": 150, "seed": 11}  # fmt: skip


@pytest.fixture(scope="session")
def standard_pg_source(pg_database_factory) -> str:
    """A PostgreSQL source seeded with STANDARD_SEED, shared by the session."""
    return pg_database_factory(**STANDARD_SEED)


@pytest.fixture(scope="session")
def standard_sqlite_source(sqlite_database_factory) -> str:
    """A SQLite source seeded with STANDARD_SEED, shared by the session."""
    return str(sqlite_database_factory(**STANDARD_SEED))


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
    return list_all_keys(client, bucket, prefix)


def snapshot_and_empty(client: Any) -> dict[str, bytes]:
    """Every object of the test buckets as {"bucket/key": bytes}; the buckets are emptied afterwards."""
    objects = {}
    for bucket in BUCKETS:
        for key in list_keys(client, bucket):
            objects[f"{bucket}/{key}"] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            client.delete_object(Bucket=bucket, Key=key)
    return objects


@pytest.fixture(scope="module")
def admin(seaweedfs) -> Iterator[Any]:
    """The store's admin client, every bucket emptied before and after the module."""
    client = seaweedfs.admin_client()
    snapshot_and_empty(client)
    yield client
    snapshot_and_empty(client)


def aws_connection(seaweedfs: SeaweedFS, identity: Identity = EXPORTER, **extra: Any) -> str:
    """An Airflow `aws` connection (JSON form) for a SeaweedFS identity; two attempts keep failing tests quick."""
    extra.setdefault(
        "config_kwargs", {"s3": {"addressing_style": "path"}, "retries": {"mode": "standard", "total_max_attempts": 2}}
    )
    return airflow_env.aws_connection_json(seaweedfs.endpoint_url, identity.access_key, identity.secret_key, **extra)


source_connection = airflow_env.source_connection


def assert_ok(result) -> None:
    """A DAG run succeeded; otherwise show the end of its output."""
    assert result.returncode == 0, f"DAG run failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"


def data_objects(objects: dict[str, bytes]) -> dict[str, bytes]:
    """The data files of a snapshot, without their manifests."""
    return {k: v for k, v in objects.items() if not k.endswith(".manifest.json")}


# -- Airflow -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database in the session's AIRFLOW_HOME."""
    try:
        airflow_env.migrate(AIRFLOW_HOME)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return AIRFLOW_HOME


def run_dag(dag_id: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a whole DAG with the real Airflow CLI (`airflow dags test`) in a subprocess; connections and
    variables are passed as AIRFLOW_CONN_* / AIRFLOW_VAR_*, the way many deployments do."""
    return airflow_env.dags_test(AIRFLOW_HOME, dag_id, **kwargs)


def assert_secret_nowhere(secret: str, *, logs: str, objects: dict[str, bytes]) -> None:
    """``secret`` is in no log line, no stored object, no file under AIRFLOW_HOME and no row of any table
    of the metadata database (XCom, rendered templates, task instances, logs)."""
    import sqlite3

    needle = secret.encode()
    assert secret not in logs, "the secret is in the log"
    assert not [k for k, body in objects.items() if needle in body], "the secret is in a stored object"
    leaked = [str(p) for p in Path(AIRFLOW_HOME).rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert not leaked, f"the secret was written to {leaked}"
    with sqlite3.connect(Path(AIRFLOW_HOME) / "airflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for row in db.execute(f'SELECT * FROM "{table}"'):
                assert secret not in repr(row), f"the secret is in the metadata table {table}"


def export_events_from_sqlite(sqlite_path: str | Path, client: Any, destination: dict[str, Any], *, day, run_id: str):
    """The real exporter in-process: `events` of one day from a SQLite source file to `client`.

    Returns (ExportResult, the validated Destination).
    """
    import sqlite3

    from subscription_exports import exporter
    from subscription_exports.config import validate_destination
    from subscription_exports.integrations import S3_EXPORT
    from subscription_exports.windows import day_window

    dest = validate_destination(destination, S3_EXPORT, origin="test")
    connection = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, check_same_thread=False)
    try:
        result = exporter.export_table(
            integration=S3_EXPORT,
            spec=S3_EXPORT.table("events"),
            dest=dest,
            window=day_window(day),
            dialect="sqlite",
            connection=connection,
            client=client,
            run_id=run_id,
        )
    finally:
        connection.close()
    return result, dest


# -- SMTP --------------------------------------------------------------------------------------


class SmtpSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives.

    Plain SMTP (no TLS) with AUTH LOGIN/PLAIN allowed without TLS: the test connection carries a login
    and a password, as a real relay's would, and the sink records the logins it accepted.
    """

    def __init__(self, login: str = "alerts-user", password: str = "smtp-secret-Kx81Qw0NeverInMail") -> None:
        import threading

        self.host = "127.0.0.1"
        self.port = 0
        self.login, self.password = login, password
        self.messages: list[Any] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        import email.policy

        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
            self.login,
            self.password,
        )
        if ok:
            self.logins.append(self.login)
        return AuthResult(success=ok)

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller
        from airflow_cluster import free_port

        self.port = self.port or free_port()
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            ready_timeout=30,
        )
        self._controller.start()
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def connection(self, **extra: Any) -> str:
        """An Airflow `smtp` connection (JSON form) to this server; credentials only here."""
        import json

        extra = {"disable_ssl": True, "disable_tls": True, "from_email": "exports@example.com", "timeout": 30, **extra}
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": self.host,
                "port": self.port,
                "login": self.login,
                "password": self.password,
                "extra": extra,
            }
        )

    def received(self) -> list[Any]:
        with self._lock:
            return list(self.messages)

    @staticmethod
    def text(message: Any) -> str:
        """The message's text as a reader sees it (the HTML body's <pre> unescaped)."""
        import html
        import re

        body = message.get_body(preferencelist=("html", "plain"))
        content = body.get_content() if body is not None else message.get_payload(decode=True).decode()
        return html.unescape(re.sub(r"</?pre>", "", content))


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
