"""Exports behave like transactions: fault injection against real PostgreSQL and a real SeaweedFS.

Faults on the S3 side come from devtools/faultproxy.py, a real HTTP proxy between boto3 and
SeaweedFS (5xx/SlowDown answers, dropped connections, an unreachable store, parked requests).
Faults on the source side are real too: the COPY backend is terminated with
``pg_terminate_backend``, and a task process is killed with SIGKILL. Nothing is mocked.

Every test starts from an empty ``exports`` bucket with no unfinished multipart upload and, where
it matters, an *old* object and manifest at the exported key (a previous run of the same day):
a failed export must leave that old pair untouched. Expected bytes come from tests/reference.py.

Data: one app, one day, ~40,000 ``events`` rows (about 20 MiB of CSV), so every export is a
multipart upload of several 5 MiB parts and the source stream outlasts the buffers between
PostgreSQL and the upload (needed to stop the COPY half-way, see the source-failure test).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg2
import pytest
import reference as ref
from conftest import AIRFLOW_HOME, EXPORTER, ROOT, assert_ok, run_dag, source_connection

from devtools import airflow_env
from devtools.faultproxy import FaultProxy, Match, TcpRelay
from devtools.seaweedfs import list_multipart_uploads
from subscription_exports import exporter, s3, source
from subscription_exports.config import validate_destination
from subscription_exports.integrations import S3_EXPORT
from subscription_exports.windows import day_window

pytestmark = pytest.mark.system

IOS = "com.acme.ios"
DAY = dt.date(2026, 3, 7)
START = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)
ROWS_PER_DAY = 40_000
BUCKET = "exports"
KEY = f"faults/events/dt={DAY}/events_{DAY}.csv"
MANIFEST = KEY + ".manifest.json"
OLD_BYTES = b"event_id,event_type\r\nold-1,trial_started\r\n"
DEST = {"name": "faults", "conn_id": "fault_s3", "bucket": BUCKET, "folder": "faults", "app_id": IOS,
        "tables": ["events"]}  # fmt: skip
RENAMED_DEST = {**DEST, "rename_event_types": {"trial_started": "trial"}}
WHERE = f"destination 'faults' (connection 'fault_s3', bucket '{BUCKET}'): s3://{BUCKET}/{KEY}"
S3_CONFIG = {"s3": {"addressing_style": "path"}}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_url(pg_database_factory) -> str:
    return pg_database_factory(apps=[IOS], start=DAY, days=1, rows_per_day=ROWS_PER_DAY, seed=23, tables=["events"])


@pytest.fixture(scope="module")
def expected(pg_url) -> dict[str, bytes]:
    """Reference bytes of the day's file, for the plain destination and for the renamed one."""
    src = ref.load_source(pg_url)
    common = {"app_id": IOS, "start": START, "end": END, "event_types": set(S3_EXPORT.all_event_types)}
    plain = ref.expected_events(src, **common)
    renamed = ref.expected_events(src, rename={"trial_started": "trial"}, **common)
    # Several parts, fewer than 10 (tests name parts by the query suffix "&partNumber=N").
    assert 3 * s3.DEFAULT_PART_SIZE < len(plain) < 9 * s3.DEFAULT_PART_SIZE, len(plain)
    assert plain != renamed
    return {"plain": plain, "renamed": renamed}


@pytest.fixture
def admin(seaweedfs):
    """Admin client; the bucket starts and ends empty, with no unfinished multipart upload."""
    client = seaweedfs.admin_client()
    _empty(client)
    yield client
    _empty(client)


def _empty(client: Any) -> None:
    for upload in list_multipart_uploads(client, BUCKET):
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for key in ref_keys(client):
        client.delete_object(Bucket=BUCKET, Key=key)


def ref_keys(client: Any) -> list[str]:
    return sorted(o["Key"] for p in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                  for o in p.get("Contents", []))  # fmt: skip


@pytest.fixture
def proxy(seaweedfs):
    with FaultProxy(seaweedfs.endpoint_url) as p:
        yield p


def s3_conn(endpoint_url: str, **config: Any) -> str:
    """An Airflow `aws` connection for the exporter identity; ``config`` adds to ``config_kwargs``
    (no ``retries``: the package's default, botocore standard mode with 8 attempts)."""
    return airflow_env.aws_connection_json(
        endpoint_url, EXPORTER.access_key, EXPORTER.secret_key, config_kwargs={**S3_CONFIG, **config}
    )


@pytest.fixture
def use_connections(monkeypatch, pg_url):
    """Point the Airflow connections `fault_source` / `fault_s3` (and more) at real endpoints."""

    def use(**conns: str) -> dict[str, str]:
        conns = {"fault_source": source_connection(pg_url), **conns}
        for conn_id, value in conns.items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conns

    return use


# -- helpers -------------------------------------------------------------------------------------


def export(dest: dict = DEST, *, run_id: str = "faults-test") -> exporter.ExportResult:
    """One export in this process, through the package's own connection handling."""
    d = validate_destination(dest, S3_EXPORT, origin="test")
    dialect, connection = source.connect("fault_source")
    try:
        return exporter.export_table(
            integration=S3_EXPORT, spec=S3_EXPORT.table("events"), dest=d, window=day_window(DAY), dialect=dialect,
            connection=connection, client=s3.s3_client(d.conn_id), run_id=run_id,
        )  # fmt: skip
    finally:
        connection.close()


EXPORT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [{plugins!r}, {root!r}]
    from subscription_exports import exporter, s3, source
    from subscription_exports.config import validate_destination
    from subscription_exports.integrations import S3_EXPORT
    from subscription_exports.windows import day_window
    import datetime as dt
    dest = validate_destination(json.loads(sys.argv[1]), S3_EXPORT, origin="test")
    dialect, connection = source.connect("fault_source")
    try:
        result = exporter.export_table(integration=S3_EXPORT, spec=S3_EXPORT.table("events"), dest=dest,
            window=day_window(dt.date.fromisoformat({day!r})), dialect=dialect, connection=connection,
            client=s3.s3_client(dest.conn_id), run_id=sys.argv[2])
    except exporter.ExportError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result.to_dict()))
    """
).format(plugins=str(ROOT / "plugins"), root=str(ROOT), day=DAY.isoformat())


def start_export_process(conns: dict[str, str], dest: dict = DEST, run_id: str = "proc") -> subprocess.Popen:
    """The export in its own Python process (a task process), connections from AIRFLOW_CONN_*."""
    env = airflow_env.airflow_env(AIRFLOW_HOME, **{f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})
    return subprocess.Popen(
        [sys.executable, "-c", EXPORT_SCRIPT, json.dumps(dest), run_id],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def seed_old(client: Any) -> dict:
    """A previous run's object and manifest at the key; returns the manifest."""
    manifest = {"object": {"bucket": BUCKET, "key": KEY}, "rows": 1, "bytes": len(OLD_BYTES),
                "sha256": hashlib.sha256(OLD_BYTES).hexdigest(), "run_id": "old-run"}  # fmt: skip
    client.put_object(Bucket=BUCKET, Key=KEY, Body=OLD_BYTES)
    client.put_object(Bucket=BUCKET, Key=MANIFEST, Body=json.dumps(manifest).encode())
    return manifest


def read(client: Any, key: str) -> bytes | None:
    try:
        return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def unfinished(client: Any) -> list[str]:
    """Keys of unfinished multipart uploads in the bucket."""
    return sorted(u["Key"] for u in list_multipart_uploads(client, BUCKET))


def assert_old_pair_intact(client: Any, old_manifest: dict) -> None:
    assert read(client, KEY) == OLD_BYTES, "a failed export must leave the previous object untouched"
    assert json.loads(read(client, MANIFEST)) == old_manifest, "...and the previous manifest"
    assert ref_keys(client) == [KEY, MANIFEST], "no partial or extra object"


def assert_consistent(client: Any, want: bytes) -> dict:
    """The object holds exactly ``want`` and its manifest describes exactly those bytes."""
    body = read(client, KEY)
    assert body == want, f"s3://{BUCKET}/{KEY} differs from the reference ({len(body or b'')} vs {len(want)} bytes)"
    manifest = json.loads(read(client, MANIFEST))
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert (manifest["sha256"], manifest["bytes"], manifest["rows"]) == (
        hashlib.sha256(body).hexdigest(), len(body), len(rows) - 1,
    )  # fmt: skip
    assert manifest["object"] == {"bucket": BUCKET, "key": KEY}
    return manifest


def attempts(proxy: FaultProxy, **match: str) -> list[tuple[str, str]]:
    """(outcome, "attempt=N; max=M" from the SDK's amz-sdk-request header) of every matching request."""
    return [(r.outcome, re.sub(r"^.*?(attempt=\d+; max=\d+).*$", r"\1", r.attempt)) for r in proxy.requests(**match)]


@contextlib.contextmanager
def captured_warnings(logger_name: str):
    """Warning lines the package logs (Airflow's logging setup may keep them from pytest's caplog)."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(logger_name)
    disabled, logger.disabled = logger.disabled, False
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.disabled = disabled


def wait_for(what: str, predicate, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


# -- 1. the store misbehaves -------------------------------------------------------------------


def test_throttling_5xx_and_dropped_connections_are_retried_and_the_bytes_are_exact(
    proxy, admin, use_connections, expected
):
    """Bursts of 503 SlowDown, 500 InternalError and dropped connections on every step of a
    multipart export are retried by botocore (standard mode: exponential backoff with jitter, the
    package's default of 8 attempts); the export succeeds with exactly the reference bytes."""
    use_connections(fault_s3=s3_conn(proxy.endpoint_url))
    rules = [
        proxy.fail(503, times=2, method="GET", query="uploads"),  # stale-upload listing
        proxy.fail(503, times=3, method="POST", query="uploads"),  # CreateMultipartUpload
        proxy.fail(500, times=2, method="PUT", query="&partNumber=1"),
        proxy.drop(times=2, method="PUT", query="&partNumber=2"),  # closed, no answer
        proxy.drop(times=1, method="PUT", query="&partNumber=3", mid_response=True),  # stored, answer cut
        proxy.fail(500, times=1, method="DELETE", path=".manifest.json"),  # removing the old manifest
        proxy.fail(503, times=1, method="POST", query="uploadId="),  # CompleteMultipartUpload
        proxy.drop(times=1, method="POST", query="uploadId=", mid_response=True),  # completed, answer cut
        proxy.fail(503, times=2, method="PUT", path=".manifest.json"),
        proxy.drop(times=1, method="HEAD"),
    ]
    result = export()

    assert all(rule.applied == rule.times for rule in rules), [(r.match, r.applied) for r in rules]
    assert_consistent(admin, expected["plain"])
    assert (result.bytes, result.sha256) == (len(expected["plain"]), hashlib.sha256(expected["plain"]).hexdigest())
    assert unfinished(admin) == []
    # The SDK retried the very same call: attempt numbers go up, the last attempt succeeded.
    assert attempts(proxy, method="PUT", query="&partNumber=1") == [
        ("fault 500", "attempt=1; max=8"), ("fault 500", "attempt=2; max=8"), ("200", "attempt=3; max=8"),
    ]  # fmt: skip
    assert attempts(proxy, method="PUT", query="&partNumber=2") == [
        ("dropped", "attempt=1; max=8"), ("dropped", "attempt=2; max=8"), ("200", "attempt=3; max=8"),
    ]  # fmt: skip
    assert attempts(proxy, method="POST", query="uploads") == [
        ("fault 503", "attempt=1; max=8"), ("fault 503", "attempt=2; max=8"), ("fault 503", "attempt=3; max=8"),
        ("200", "attempt=4; max=8"),
    ]  # fmt: skip
    for match in ({"method": "PUT", "query": "&partNumber=2"}, {"method": "POST", "query": "uploads"}):
        assert len({r.invocation_id for r in proxy.requests(**match)}) == 1, "one call, retried"


def test_store_down_longer_than_the_retries_fails_the_airflow_task_cleanly_then_the_next_try_succeeds(
    airflow_db, seaweedfs, proxy, pg_url, admin, expected
):
    """Through the real Airflow task (`airflow dags test`): S3 becomes unreachable at the second
    part and stays down for all 3 attempts the connection allows. The task fails with one line
    naming destination, connection, bucket, object and the cause; the old object and manifest are
    untouched and the aborted upload leaves no stored parts (the outage ends while the exporter
    aborts, and botocore retries the abort). The next try, store healthy, writes the exact bytes."""
    old = seed_old(admin)
    retries = {"retries": {"mode": "standard", "total_max_attempts": 3}}
    connections = {"fault_source": source_connection(pg_url), "fault_s3": s3_conn(proxy.endpoint_url, **retries)}
    variables = {"s3_export_destinations": json.dumps({"source_conn_id": "fault_source", "destinations": [DEST]})}
    proxy.down_when(method="PUT", query="&partNumber=2", until=Match(method="DELETE", query="uploadId="))

    failed = run_dag("s3_export", logical_date=DAY.isoformat(), connections=connections, variables=variables)

    logs = failed.stdout + failed.stderr
    assert failed.returncode != 0, logs[-3000:]
    cause = f"{WHERE}: export failed: ConnectionClosedError: Connection was closed before we received a valid response"
    assert cause in logs, f"missing one-line cause:\n{logs[-5000:]}"
    line = next(ln for ln in logs.splitlines() if cause in ln)
    assert f'from endpoint URL: "{proxy.endpoint_url}/{BUCKET}/{quote(KEY)}"' in line, line
    assert EXPORTER.secret_key not in logs
    assert [o for o, _ in attempts(proxy, method="PUT", query="&partNumber=2")] == ["down"] * 3
    assert [o for o, _ in attempts(proxy, method="DELETE", query="uploadId=")] == ["down", "204"]
    assert_old_pair_intact(admin, old)
    assert unfinished(admin) == []

    proxy.clear()
    retried = run_dag("s3_export", logical_date=DAY.isoformat(), connections=connections, variables=variables)
    assert_ok(retried)
    assert_consistent(admin, expected["plain"])
    assert unfinished(admin) == []


def test_outage_through_the_abort_leaves_an_upload_that_the_next_try_aborts(proxy, admin, use_connections, expected):
    """S3 stays down through the exporter's abort as well: the abort cannot reach the store, so
    the upload's stored parts stay behind (invisible; the old object is untouched) and the log says
    so. The next try of the same export aborts that leftover before uploading, then succeeds."""
    old = seed_old(admin)
    use_connections(fault_s3=s3_conn(proxy.endpoint_url, retries={"mode": "standard", "total_max_attempts": 2}))
    proxy.down_when(method="PUT", query="&partNumber=2")  # and never up again by itself
    with captured_warnings("subscription_exports.s3") as warnings, pytest.raises(exporter.ExportError) as err:
        export()
    assert str(err.value).startswith(f"{WHERE}: export failed: ConnectionClosedError")
    assert "\n" not in str(err.value)
    warning = f"could not abort multipart upload of s3://{BUCKET}/{KEY}"
    assert any(w.startswith(warning) and "AbortIncompleteMultipartUpload" in w for w in warnings), warnings

    proxy.up()
    assert_old_pair_intact(admin, old)
    assert unfinished(admin) == [KEY], "an unreachable store cannot be told to abort"
    export()
    assert_consistent(admin, expected["plain"])
    assert unfinished(admin) == [], "the next try aborted the leftover upload of its key"


# -- 2. the source or the task process dies ------------------------------------------------------


def _copy_backend(pg_url: str) -> tuple[int, str] | None:
    """(pid, wait_event) of the export's COPY backend, if it is running."""
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid, coalesce(wait_event, '') FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND query LIKE 'COPY (%%' AND pid <> pg_backend_pid()"
            )
            row = cur.fetchone()
        return (row[0], row[1]) if row else None
    finally:
        conn.close()


def test_source_killed_mid_export_leaves_nothing_and_a_retry_succeeds(proxy, admin, use_connections, pg_url, expected):
    """The COPY backend is terminated (pg_terminate_backend) while it is streaming the day.

    To land the kill mid-stream deterministically, the source connection goes through a TCP relay
    that stops passing PostgreSQL's bytes after 9 MiB: the export has started its multipart
    upload, and the COPY backend blocks writing to its client (pg_stat_activity wait_event
    ClientWrite) with the rest of the day unsent. It is killed there, the relay resumes: the export
    fails with the source's error, the started multipart upload is aborted, the old object is
    untouched. A retry succeeds with the exact bytes."""
    old = seed_old(admin)
    pg = urlsplit(pg_url)
    with TcpRelay((pg.hostname, pg.port)) as relay:
        relayed = f"postgresql://{pg.username}@127.0.0.1:{relay.port}{pg.path}"
        use_connections(fault_s3=s3_conn(proxy.endpoint_url), fault_source=relayed)
        relay.pause_after(9 * s3.MIB)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(export)
            try:
                assert relay.paused.wait(60), "the source never sent 9 MiB"
                pid, _ = wait_for(
                    "the COPY backend to block writing to the exporter",
                    lambda: (b := _copy_backend(pg_url)) and b[1] == "ClientWrite" and b,
                )
                killer = psycopg2.connect(pg_url)
                with killer.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    assert cur.fetchone()[0]
                killer.close()
            finally:
                relay.resume()
            with pytest.raises(exporter.ExportError) as err:
                running.result(timeout=120)

    message = str(err.value)
    assert message.startswith(f"{WHERE}: export failed: SourceError: source query failed: ")
    # libpq reports the kill as the server's FATAL message, or as the closed connection when the
    # socket ends before that message is read: both are the source failing mid-stream.
    causes = ("terminating connection due to administrator command", "server closed the connection unexpectedly")
    assert any(cause in message for cause in causes), message
    assert "\n" not in message
    # The multipart upload had started and was aborted.
    assert [r.outcome for r in proxy.requests(method="POST", query="uploads")] == ["200"]
    assert [r.outcome for r in proxy.requests(method="DELETE", query="uploadId=")] == ["204"]
    assert_old_pair_intact(admin, old)
    assert unfinished(admin) == []

    use_connections(fault_s3=s3_conn(proxy.endpoint_url))  # the source without the relay
    export()
    assert_consistent(admin, expected["plain"])


def test_task_process_killed_mid_upload_keeps_the_old_object_and_the_next_try_cleans_up(
    proxy, admin, use_connections, expected
):
    """A task process SIGKILLed after its first part was stored cannot abort its upload.

    What a user sees: the old object and manifest stay as they were (a multipart upload is
    invisible until completed); the killed try's stored parts remain as an unfinished multipart
    upload. The next try of the same export aborts unfinished uploads of exactly its own key
    before starting (an unrelated key's upload is left alone), then overwrites object and manifest.
    Uploads nobody retries are removed by an AbortIncompleteMultipartUpload lifecycle rule (README)."""
    old = seed_old(admin)
    other_key = "faults/events/dt=2026-03-08/events_2026-03-08.csv"  # another day, still being written
    other = admin.create_multipart_upload(Bucket=BUCKET, Key=other_key)["UploadId"]
    conns = use_connections(fault_s3=s3_conn(proxy.endpoint_url))
    parked = proxy.hold(method="PUT", query="&partNumber=2")
    task = start_export_process(conns, run_id="killed")
    try:
        parked.wait_held()
        upload = next(u for u in list_multipart_uploads(admin, BUCKET) if u["Key"] == KEY)

        # Two parts upload at once (s3.PARTS_IN_FLIGHT): part 1 may still be on its way while part 2
        # is held, and part 3 may follow it; part 4 waits for the held part 2.
        def stored_with_part_1() -> list[int] | None:
            parts = admin.list_parts(Bucket=BUCKET, Key=KEY, UploadId=upload["UploadId"]).get("Parts", [])
            numbers = [p["PartNumber"] for p in parts]
            return numbers if 1 in numbers else None

        stored = wait_for("part 1 stored while part 2 is held", stored_with_part_1)
        assert stored in ([1], [1, 3]), f"killed with part 1 stored and part 2 held, not {stored}"
    finally:
        os.kill(task.pid, signal.SIGKILL)
        task.communicate(timeout=60)
    assert task.returncode == -signal.SIGKILL
    proxy.clear()  # the parked part 2 never reaches the store: its sender is dead

    assert_old_pair_intact(admin, old)
    assert unfinished(admin) == sorted([KEY, other_key]), "SIGKILL cannot abort: the parts stay until cleaned"

    export()
    assert_consistent(admin, expected["plain"])
    assert unfinished(admin) == [other_key], "only the killed try's upload of the same key was aborted"
    admin.abort_multipart_upload(Bucket=BUCKET, Key=other_key, UploadId=other)


# -- 3. two runs of the same day at once ---------------------------------------------------------


def test_concurrent_runs_never_leave_a_manifest_that_describes_other_bytes(
    seaweedfs, proxy, admin, use_connections, expected
):
    """Forced interleaving of two exports of the same key with different bytes (the destination's
    rename setting changed between them): run A completes its object, run B completes its object
    and writes its manifest, then A writes its manifest. Without a check, A's manifest would now
    describe B's bytes. A notices the object is no longer its own, removes its manifest and fails
    with a one-line cause; the bucket shows B's object without a manifest (incomplete, never
    wrong). A's retry leaves one consistent object and manifest."""
    use_connections(fault_s3=s3_conn(proxy.endpoint_url), fault_s3_direct=s3_conn(seaweedfs.endpoint_url))
    parked = proxy.hold(method="PUT", path=".manifest.json")
    with ThreadPoolExecutor(1) as pool:
        run_a = pool.submit(export, DEST, run_id="run-a")
        parked.wait_held()  # A's object is complete, its manifest PUT is on its way
        assert read(admin, KEY) == expected["plain"]
        result_b = export({**RENAMED_DEST, "conn_id": "fault_s3_direct"}, run_id="run-b")
        manifest_b = json.loads(read(admin, MANIFEST))
        assert manifest_b["run_id"] == "run-b" and manifest_b["sha256"] == result_b.sha256
        parked.release()
        with pytest.raises(exporter.ExportError) as err:
            run_a.result(timeout=120)

    assert str(err.value) == (
        f"{WHERE}: the object was replaced by a concurrent export of the same key while this one wrote its "
        "manifest; the manifest was removed, retry this export"
    )
    assert read(admin, KEY) == expected["renamed"]
    assert read(admin, MANIFEST) is None, "no manifest rather than one describing other bytes"

    export(DEST, run_id="run-a-retry")
    assert assert_consistent(admin, expected["plain"])["run_id"] == "run-a-retry"
    assert unfinished(admin) == []


def test_two_export_processes_of_the_same_day_end_consistent(seaweedfs, admin, use_connections, expected):
    """Two task processes export the same destination and day at the same time, with different
    bytes (one with a renamed event type), free-running. Whatever the interleaving, each either
    succeeds or fails with a one-line cause (its upload aborted by the later one, or its object
    replaced while writing its manifest); after re-running the failed ones, exactly one object and
    a manifest that matches it are left, and no unfinished upload."""
    conns = use_connections(fault_s3=s3_conn(seaweedfs.endpoint_url))
    runs = {"plain": DEST, "renamed": RENAMED_DEST}
    procs = {name: start_export_process(conns, dest, run_id=name) for name, dest in runs.items()}
    outcomes = {name: (p.wait(timeout=300), *p.communicate()) for name, p in procs.items()}

    body = read(admin, KEY)
    assert body in (expected["plain"], expected["renamed"])
    manifest = read(admin, MANIFEST)
    if manifest is not None:
        described = json.loads(manifest)
        assert described["sha256"] == hashlib.sha256(body).hexdigest(), "a manifest always matches its object"
    failed = []
    for name, (rc, _out, err) in outcomes.items():
        if rc != 0:
            assert err.strip().startswith(WHERE) and "\n" not in err.strip(), err
            assert "NoSuchUpload" in err or "replaced by a concurrent export" in err, err
            failed.append(name)
    assert len(failed) < 2, outcomes
    for name in failed:
        export(runs[name], run_id=f"{name}-retry")
    winner = failed[-1] if failed else json.loads(read(admin, MANIFEST))["run_id"]
    assert_consistent(admin, expected[winner])
    assert unfinished(admin) == []


def test_fault_proxy_forwards_unchanged_when_healthy(proxy, seaweedfs, admin):
    """The proxy itself: a healthy proxy is transparent (signatures stay valid, bytes unchanged)."""
    from botocore.config import Config

    client = seaweedfs.client_for(EXPORTER, endpoint_url=proxy.endpoint_url, config=Config(retries={"max_attempts": 1}))
    data = os.urandom(6 * s3.MIB)
    client.put_object(Bucket=BUCKET, Key="proxy/blob", Body=data)
    assert client.get_object(Bucket=BUCKET, Key="proxy/blob")["Body"].read() == data
    assert client.head_object(Bucket=BUCKET, Key="proxy/blob")["ContentLength"] == len(data)
    assert [r.outcome for r in proxy.log] == ["200", "200", "200"]
