"""Security: secrets never leak, SQL values are always bound, least privilege, encryption at rest, TLS.

Real runs of `s3_export` (`airflow dags test`) read PostgreSQL as a role created here WITH a password
and write to SeaweedFS as an identity with a distinctive secret, on success and on every failure
path: wrong S3 secret, missing bucket, S3 unreachable, a source role that may not log in, a source
table the role may not SELECT. After each run every place a secret could end up is searched: the
task logs (`airflow dags test` prints them; any files under AIRFLOW_HOME/logs too), the whole Airflow
metadata database (XCom and rendered_task_instance_fields are queried as well, to prove they hold
data), `airflow tasks render`, and every object (data and manifests) in the buckets.

PostgreSQL on the test machines trusts 127.0.0.1 (SPEC 9), so a *wrong* password cannot be
rejected there; the rejected-login path uses a NOLOGIN role that has a password instead.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import (
    AIRFLOW_HOME,
    EXPORTER,
    MISSING_BUCKET,
    _pg_connect,
    aws_connection,
    export_events_from_sqlite,
    run_dag,
    snapshot_and_empty,
)

from devtools import airflow_env
from devtools.seaweedfs import Identity

APP, OTHER = "com.secure.ios", "com.secure.android"
DAY = dt.date(2026, 3, 7)
BUCKET = "exports"
# Distinctive secrets: any occurrence anywhere is a leak.
S3_SECRET = "s3Secret-NEVER-SHOWN-4f9Kq2ZrWx"
WRONG_S3_SECRET = "s3WrongSecret-NEVER-SHOWN-Jw7Pq1"
PG_PASSWORD = "pgPassword-NEVER-SHOWN-8sLm3Vd"
PG_NOLOGIN_PASSWORD = "pgNoLoginPassword-NEVER-SHOWN-2Xc"
SECRETS = {
    "S3 secret": S3_SECRET,
    "wrong S3 secret": WRONG_S3_SECRET,
    "PostgreSQL password": PG_PASSWORD,
    "PostgreSQL password (NOLOGIN role)": PG_NOLOGIN_PASSWORD,
}
SECURE = Identity(
    name="secure-exporter",
    access_key="SECUREEXPORTERKEY0001",
    secret_key=S3_SECRET,
    actions=list(EXPORTER.actions),  # the same least-privilege policy: Read/Write/List on the buckets
)
# Hostile values in configuration; SQL parameters are bound, so these are just strange app ids.
HOSTILE_OR = "x' OR '1'='1"
HOSTILE_DROP = "'; DROP TABLE events; --"
MARKER = "bound-parameter-marker"


def leaks(data: bytes | str) -> list[str]:
    text = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    return [name for name, secret in SECRETS.items() if secret.encode() in text]


# -- source: a database, roles with passwords ----------------------------------------------------


@pytest.fixture(scope="module")
def source(pg_database_factory) -> Iterator[dict[str, str]]:
    """Seeded database and connection URLs: two roles WITH a password, and the superuser."""
    url = pg_database_factory(apps=[APP, OTHER], start=DAY, days=1, rows_per_day=40, seed=9)
    dbname = url.rsplit("/", 1)[1]
    suffix = uuid.uuid4().hex[:8]
    roles = {
        "reader": (f"se_reader_{suffix}", PG_PASSWORD, "LOGIN"),
        "nologin": (f"se_nologin_{suffix}", PG_NOLOGIN_PASSWORD, "NOLOGIN"),
    }
    conn = _pg_connect(dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        for role, password, login in roles.values():
            cur.execute(f"CREATE ROLE {role} {login} PASSWORD %s", (password,))
            cur.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {role}')
            cur.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            # The exporter's source identity: SELECT on the tables, nothing else...
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        # ...except paywall_visits for the reader: its export fails mid-run with the password in use.
        cur.execute(f"REVOKE SELECT ON paywall_visits FROM {roles['reader'][0]}")
        # One event of the app literally named "x' OR '1'='1": binding must find exactly it.
        cur.execute(
            "INSERT INTO events (event_id, app_id, profile_id, event_type, event_datetime, transaction_id, created_at)"
            " VALUES (%s, %s, NULL, 'trial_started', %s, %s, %s)",
            ("hostile-event-1", HOSTILE_OR, f"{DAY} 10:00:00+00", MARKER, f"{DAY} 10:00:00+00"),
        )
    conn.close()
    host = f"{urlsplit(url).hostname}:{urlsplit(url).port}"  # the test server (devtools.pgserver)
    yield {
        "db": dbname,
        "superuser": url,
        **{kind: f"postgresql://{role}:{password}@{host}/{dbname}" for kind, (role, password, _) in roles.items()},
    }
    conn = _pg_connect(dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        for role, _, _ in roles.values():
            cur.execute(f"DROP OWNED BY {role}")
            cur.execute(f"DROP ROLE {role}")
    conn.close()


def table_counts(dbname: str) -> dict[str, int]:
    conn = _pg_connect(dbname)
    with conn.cursor() as cur:
        counts = {}
        for table in ("events", "paywall_visits", "profiles"):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


# -- the runs --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dest(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "conn_id": "secure_s3", "bucket": BUCKET, "folder": f"security/{name}", "app_id": APP,
            **fields}  # fmt: skip


MAIN_DESTINATIONS = [
    dest("ok"),
    dest("wrong-secret", conn_id="secure_wrong"),
    dest("no-bucket", bucket=MISSING_BUCKET),
    dest("unreachable", conn_id="secure_down"),
]
# Read as the superuser: were a value ever spliced into SQL, this role could drop the table.
HOSTILE_DESTINATIONS = [
    dest("hostile-ok"),
    dest("hostile-or", app_id=HOSTILE_OR, include_events_without_profile=True),
    dest("hostile-drop", app_id=HOSTILE_DROP, include_events_without_profile=True),
]


@pytest.fixture(scope="module")
def runs(airflow_db, seaweedfs, source) -> dict[str, Any]:
    """Three runs, each with what it left in logs, the metadata database and the buckets:
    main (success, S3 failures, a table the source role may not read), source login refused, hostile app ids.
    `airflow dags test` replaces the previous run of the same day, so the database is read after each run."""
    if SECURE.access_key not in {i.access_key for i in seaweedfs.identities}:
        seaweedfs.reload_identities([*seaweedfs.identities, SECURE])
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    wrong = Identity("secure-wrong", SECURE.access_key, WRONG_S3_SECRET, SECURE.actions)
    quick = {"s3": {"addressing_style": "path"}, "retries": {"mode": "standard", "max_attempts": 2}}
    s3_conns = {
        "secure_s3": aws_connection(seaweedfs, SECURE),
        "secure_wrong": aws_connection(seaweedfs, wrong),
        "secure_down": airflow_env.aws_connection_json(
            f"http://127.0.0.1:{free_port()}", SECURE.access_key, S3_SECRET, config_kwargs=quick
        ),
    }
    counts_before = table_counts(source["db"])
    out: dict[str, Any] = {}

    def run(label: str, source_url: str, dests: list[dict[str, Any]]) -> None:
        result = run_dag(
            "s3_export",
            logical_date=DAY.isoformat(),
            connections={"subscription_source": source_url, **s3_conns},
            variables={"s3_export_destinations": json.dumps({"destinations": dests})},
        )
        out[label] = (result, snapshot_and_empty(admin))
        out[f"{label}:airflow"] = airflow_state()

    run("main", source["reader"], MAIN_DESTINATIONS)
    run("nologin", source["nologin"], [dest("nologin")])
    run("hostile", source["superuser"], HOSTILE_DESTINATIONS)
    out["counts"] = (counts_before, table_counts(source["db"]))
    return out


def airflow_state() -> dict[str, Any]:
    """XCom and rendered-template rows of `s3_export`, the metadata database's bytes, and log files."""
    db = sqlite3.connect(f"file:{AIRFLOW_HOME / 'airflow.db'}?mode=ro", uri=True)
    xcom = db.execute("SELECT task_id, value FROM xcom WHERE dag_id = 's3_export'").fetchall()
    rendered = db.execute(
        "SELECT task_id, rendered_fields FROM rendered_task_instance_fields WHERE dag_id = 's3_export'"
    ).fetchall()
    db.close()
    files = [*AIRFLOW_HOME.glob("airflow.db*"), *(p for p in (AIRFLOW_HOME / "logs").rglob("*") if p.is_file())]
    return {"xcom": xcom, "rendered": rendered, "files": {str(p): p.read_bytes() for p in files}}


def output(result) -> str:
    return result.stdout + result.stderr


# -- the runs did what the test claims (so the secret searches below are not vacuous) --------------


@pytest.mark.system
def test_the_runs_cover_success_and_every_failure_path(runs):
    main, main_objects = runs["main"]
    logs = output(main)
    assert main.returncode != 0  # some destinations fail; the others still export
    assert f"{BUCKET}/security/ok/events/dt={DAY}/events_{DAY}.csv.manifest.json" in main_objects
    # the source role may read events but not paywall_visits: that export fails, and leaves nothing
    assert "source query failed: permission denied for table paywall_visits" in logs, logs[-4000:]
    assert not [k for k in main_objects if "/paywall_visits/" in k], sorted(main_objects)
    where = "destination '{}' (connection '{}', bucket '{}'): check failed: {}"
    for expected in (
        where.format("wrong-secret", "secure_wrong", BUCKET, "SignatureDoesNotMatch"),
        where.format("no-bucket", "secure_s3", MISSING_BUCKET, "NoSuchBucket"),
        where.format("unreachable", "secure_down", BUCKET, "EndpointConnectionError"),
    ):
        assert expected in logs, f"missing: {expected}\n{logs[-4000:]}"
    nologin, objects = runs["nologin"]
    assert nologin.returncode != 0 and objects == {}
    assert "is not permitted to log in" in output(nologin), output(nologin)[-4000:]


# -- secrets: nowhere ------------------------------------------------------------------------------


LABELS = ["main", "nologin", "hostile"]


@pytest.mark.system
@pytest.mark.parametrize("label", LABELS)
def test_no_secret_in_the_task_logs(runs, label):
    result, _ = runs[label]
    # `airflow dags test` runs the tasks in-process and prints their logs: the task log lines are here
    assert "exports daily window" in output(result) and "destination(s) from " in output(result)
    assert leaks(output(result)) == []
    log_files = {p: data for p, data in runs[f"{label}:airflow"]["files"].items() if "/logs/" in p}
    assert {p: leaks(data) for p, data in log_files.items() if leaks(data)} == {}


@pytest.mark.system
@pytest.mark.parametrize("label", LABELS)
def test_no_secret_in_xcom_or_rendered_templates(runs, label):
    state = runs[f"{label}:airflow"]
    # They hold the destination names and the exports' row counts, never credentials (nor connection ids:
    # each export reads its destination's settings itself).
    names = {"main": MAIN_DESTINATIONS, "nologin": [dest("nologin")], "hostile": HOSTILE_DESTINATIONS}[label]
    loaded = [json.loads(v) if isinstance(v, str | bytes) else v for t, v in state["xcom"] if t == "load_destinations"]
    assert [d["name"] for d in names] in loaded, state["xcom"]  # (earlier runs' rows stay in the database)
    if label == "hostile":  # (main: the one reachable destination fails on paywall_visits; nologin: no source)
        assert any(t == "destination.export_tables" and "rows" in str(v) for t, v in state["xcom"]), state["xcom"]
    assert state["rendered"], "no rendered_task_instance_fields rows"
    assert [(t, leaks(str(v))) for t, v in state["xcom"] if leaks(str(v))] == []
    assert [(t, leaks(str(v))) for t, v in state["rendered"] if leaks(str(v))] == []


@pytest.mark.system
@pytest.mark.parametrize("label", LABELS)
def test_no_secret_anywhere_in_the_metadata_database(runs, label):
    files = {p: data for p, data in runs[f"{label}:airflow"]["files"].items() if "/logs/" not in p}
    assert any(p.endswith("airflow.db") for p in files)
    assert {p: leaks(data) for p, data in files.items() if leaks(data)} == {}


@pytest.mark.system
def test_no_secret_in_airflow_tasks_render(runs, seaweedfs, source):
    """`airflow tasks render` with the run's connections in the environment.

    Airflow 3.3's CLI cannot render the *mapped* task (export_tables): it fails
    with ImportError SUPERVISOR_COMMS outside a task runner. Their rendered fields, as the real runs
    stored them in rendered_task_instance_fields, are checked above; here the unmapped task that reads
    the destinations is rendered.
    """
    env = airflow_env.airflow_env(
        AIRFLOW_HOME,
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source["reader"],
        AIRFLOW_CONN_SECURE_S3=aws_connection(seaweedfs, SECURE),
        AIRFLOW_VAR_S3_EXPORT_DESTINATIONS=json.dumps({"destinations": MAIN_DESTINATIONS}),
    )
    cmd = [str(airflow_env.AIRFLOW_BIN), "tasks", "render", "s3_export", "load_destinations", DAY.isoformat()]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "op_kwargs" in done.stdout, done.stdout[-2000:]
    assert leaks(done.stdout + done.stderr) == []


@pytest.mark.system
@pytest.mark.parametrize("label", LABELS)
def test_no_secret_in_any_object_or_manifest(runs, label):
    _, objects = runs[label]
    assert {k: leaks(v) for k, v in objects.items() if leaks(v)} == {}


# -- SQL values are bound ----------------------------------------------------------------------------


def csv_rows(data: bytes) -> list[str]:
    return [line for line in data.decode().split("\r\n")[1:] if line]


@pytest.mark.system
def test_hostile_app_ids_export_only_their_own_rows(runs):
    result, objects = runs["hostile"]
    assert result.returncode == 0, output(result)[-4000:]
    prefix = f"{BUCKET}/security"
    events_or = objects[f"{prefix}/hostile-or/events/dt={DAY}/events_{DAY}.csv"]
    # exactly the one event stored under the literal app id "x' OR '1'='1", nothing of other apps
    assert len(csv_rows(events_or)) == 1 and MARKER in events_or.decode()
    assert csv_rows(objects[f"{prefix}/hostile-or/paywall_visits/dt={DAY}/paywall_visits_{DAY}.csv"]) == []
    for table in ("events", "paywall_visits"):
        data = objects[f"{prefix}/hostile-drop/{table}/dt={DAY}/{table}_{DAY}.csv"]
        assert csv_rows(data) == []
        manifest = json.loads(objects[f"{prefix}/hostile-drop/{table}/dt={DAY}/{table}_{DAY}.csv.manifest.json"])
        assert manifest["rows"] == 0 and manifest["app_id"] == HOSTILE_DROP
    # the good destination of the same run exported its app's rows
    assert csv_rows(objects[f"{prefix}/hostile-ok/events/dt={DAY}/events_{DAY}.csv"])


@pytest.mark.system
def test_hostile_app_ids_break_nothing(runs):
    before, after = runs["counts"]
    assert after == before and before["events"] > 0


# -- TLS: verification is on unless the connection turns it off --------------------------------------


@pytest.mark.parametrize(
    ("extra", "verify"),
    [({}, True), ({"verify": "/etc/ssl/private-ca.pem"}, "/etc/ssl/private-ca.pem"), ({"verify": False}, False)],
    ids=["default", "private-ca", "explicitly-off"],
)
def test_effective_tls_verification_of_the_s3_client(monkeypatch, extra, verify):
    """The client `s3_client` builds for a connection: the session's verify setting as botocore uses it."""
    from subscription_exports.s3 import s3_client

    conn = airflow_env.aws_connection_json("https://s3.example.internal:9000", "KEY", S3_SECRET, **extra)
    monkeypatch.setenv("AIRFLOW_CONN_TLS_CHECK", conn)
    client = s3_client("tls_check")
    assert client.meta.endpoint_url == "https://s3.example.internal:9000"
    actual = client._endpoint.http_session._verify
    if verify is True:
        # on, against botocore's bundle or the machine's (AWS_CA_BUNDLE), never off
        assert actual is True or (isinstance(actual, str) and Path(actual).is_file()), actual
    else:
        assert actual == verify


# -- server-side encryption ------------------------------------------------------------------------

SSE_HEADER = "x-amz-server-side-encryption"
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"


class _Body:
    """The raw body of a canned botocore response."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def recording(client: Any, *, answer_locally: bool = False) -> list[tuple[str, dict[str, str]]]:
    """Record (operation, headers) of every request `client` sends; optionally answer it here."""
    from botocore.awsrequest import AWSResponse

    sent: list[tuple[str, dict[str, str]]] = []

    def on_send(request: Any, event_name: str, **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        sent.append(
            (operation, {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        )
        if not answer_locally:
            return None
        body = {
            "CreateMultipartUpload": b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
            b"<UploadId>upload-1</UploadId></InitiateMultipartUploadResult>",
            "CompleteMultipartUpload": b"<CompleteMultipartUploadResult><ETag>done</ETag>"
            b"</CompleteMultipartUploadResult>",
        }.get(operation, b"")
        return AWSResponse(request.url, 200, {"ETag": '"etag"'}, _Body(body))

    client.meta.events.register("before-send.s3", on_send)
    return sent


def export_one_table(client: Any, sqlite_path: Path, sse: dict[str, str]) -> Any:
    """The real exporter, one table, one day, from a small SQLite source."""
    from subscription_exports import exporter

    destination = {"name": "sse", "conn_id": "unused", "bucket": BUCKET, "folder": "security/sse", "app_id": APP,
                   "server_side_encryption": sse}  # fmt: skip
    result, dest = export_events_from_sqlite(sqlite_path, client, destination, day=DAY, run_id="sse-test")
    return result, exporter.upload_args(dest)


@pytest.fixture(scope="module")
def sqlite_source(sqlite_database_factory) -> Path:
    return sqlite_database_factory(apps=[APP], start=DAY, days=1, rows_per_day=20, seed=2)


def multipart_upload(client: Any, key: str, extra_args: dict[str, Any]) -> None:
    from subscription_exports.s3 import MIB, AtomicUpload

    upload = AtomicUpload(client, bucket=BUCKET, key=key, extra_args=extra_args, part_size=5 * MIB)
    upload.write(b"x" * (6 * MIB))  # one full part, then the rest on commit
    upload.commit()


@pytest.mark.system
def test_sse_s3_headers_are_sent_and_the_store_encrypts(seaweedfs, s3, sqlite_source):
    """SeaweedFS implements SSE-S3: the headers go out with every write and the objects come back AES256."""
    client = seaweedfs.client_for(EXPORTER)
    sent = recording(client)
    result, extra_args = export_one_table(client, sqlite_source, {"type": "AES256"})
    multipart_upload(client, "security/sse/multipart.bin", extra_args)
    writes = [(op, h) for op, h in sent if op in {"PutObject", "CreateMultipartUpload"}]
    assert [op for op, _ in writes] == ["PutObject", "PutObject", "CreateMultipartUpload"]  # data, manifest, big file
    assert all(h.get(SSE_HEADER) == "AES256" for _, h in writes), writes
    for key in (result.key, result.manifest_key, "security/sse/multipart.bin"):
        assert s3.head_object(Bucket=BUCKET, Key=key).get("ServerSideEncryption") == "AES256", key
    assert result.rows > 0


@pytest.mark.system
def test_sse_kms_headers_and_key_id_are_sent(seaweedfs, sqlite_source):
    """SSE-KMS with a key id reaches PutObject and CreateMultipartUpload.

    SeaweedFS has no KMS configured here and answers these requests with InternalError, so a real
    object cannot show it; the requests are signed and recorded as sent, then answered locally.
    """
    client = seaweedfs.client_for(EXPORTER)
    sent = recording(client, answer_locally=True)
    result, extra_args = export_one_table(client, sqlite_source, {"type": "aws:kms", "kms_key_id": "alias/exports"})
    multipart_upload(client, "security/sse/multipart-kms.bin", extra_args)
    writes = [(op, h) for op, h in sent if op in {"PutObject", "CreateMultipartUpload"}]
    assert [op for op, _ in writes] == ["PutObject", "PutObject", "CreateMultipartUpload"]
    for _, headers in writes:
        assert headers.get(SSE_HEADER) == "aws:kms" and headers.get(KMS_KEY_HEADER) == "alias/exports", headers
    assert result.rows > 0


# -- request checksums: over http the signed SHA-256 of each body, over https a CRC32 ---------------

CRC32_HEADER = "x-amz-checksum-crc32"
SIGNED_SHA256 = "x-amz-content-sha256"


def parts_sent(conn_id: str, key: str, *, answer_locally: bool = False) -> list[dict[str, str]]:
    """The headers of the parts a real multipart upload sent through ``s3_client(conn_id)``."""
    from subscription_exports.s3 import s3_client

    client = s3_client(conn_id)
    sent = recording(client, answer_locally=answer_locally)
    multipart_upload(client, key, {})
    return [headers for operation, headers in sent if operation == "UploadPart"]


@pytest.mark.system
def test_over_http_each_part_is_checked_by_its_signed_sha256_without_a_crc32_too(seaweedfs, s3, monkeypatch):
    """Over http:// SigV4 signs each part's SHA-256 and the store checks it: the client computes no
    CRC32 of the same bytes as well (about 0.2 CPU-s per 450 MB). The parts land whole."""
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_CHECKSUMS_HTTP", aws_connection(seaweedfs))
    parts = parts_sent("checksums_http", "security/checksums/http.bin")
    assert len(parts) == 2
    for headers in parts:
        assert len(headers[SIGNED_SHA256]) == 64 and int(headers[SIGNED_SHA256], 16) >= 0, headers
        assert CRC32_HEADER not in headers and "x-amz-trailer" not in headers, headers
    body = s3.get_object(Bucket=BUCKET, Key="security/checksums/http.bin")["Body"].read()
    assert body == b"x" * (6 << 20)


@pytest.mark.system
@pytest.mark.parametrize(
    ("config_kwargs", "environment"),
    [
        ({"request_checksum_calculation": "when_supported"}, None),
        ({}, "when_supported"),
        ({"s3": {"addressing_style": "path", "payload_signing_enabled": False}}, None),
    ],
    ids=["connection-chooses", "environment-chooses", "payload-not-signed"],
)
def test_over_http_a_crc32_is_sent_where_chosen_or_where_nothing_else_checks_the_bytes(
    seaweedfs, s3, monkeypatch, config_kwargs, environment
):
    """A CRC32 of each part goes out when the connection or the worker's environment asks for one
    (their choice is kept), and when the connection turns payload signing off."""
    if environment:
        monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", environment)
    else:
        monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    kwargs = {"s3": {"addressing_style": "path"}, "retries": {"total_max_attempts": 2}, **config_kwargs}
    monkeypatch.setenv("AIRFLOW_CONN_CHECKSUMS_CHOSEN", aws_connection(seaweedfs, config_kwargs=kwargs))
    parts = parts_sent("checksums_chosen", "security/checksums/chosen.bin")
    assert len(parts) == 2
    assert all(CRC32_HEADER in headers for headers in parts), parts
    body = s3.get_object(Bucket=BUCKET, Key="security/checksums/chosen.bin")["Body"].read()
    assert body == b"x" * (6 << 20)


def test_over_https_each_part_still_carries_a_crc32(monkeypatch):
    """Over https:// botocore signs no body, so the CRC32 is the parts' only check and stays. The
    requests are built and signed by the real client and answered here (no store is needed to
    show what the client sends; the TLS store of test_seaweedfs_harness takes such parts)."""
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CHECKSUMS_HTTPS",
        airflow_env.aws_connection_json("https://s3.example.internal:9000", "KEY", S3_SECRET),
    )
    parts = parts_sent("checksums_https", "security/checksums/https.bin", answer_locally=True)
    assert len(parts) == 2
    for headers in parts:
        assert headers.get("x-amz-trailer") == CRC32_HEADER or CRC32_HEADER in headers, headers
        assert headers[SIGNED_SHA256].startswith(("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD")), headers
