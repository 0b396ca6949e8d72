"""System test of the distributed path: a RUNNING Airflow 3 with the CeleryExecutor.

Real components as subprocesses (tests/airflow_cluster.py): `airflow api-server`, `airflow scheduler`
(CeleryExecutor), `airflow dag-processor` and an `airflow celery worker`; Redis on 127.0.0.1:6379 as
the broker (a dedicated DB number and a queue of this test's own), the Celery result backend on the
PostgreSQL metadata database. The DAG folder holds the project's DAGs and the downstream test DAG
tests/dags/subscription_exports_consumer.py, scheduled on the exports' assets.

The scheduler creates the export's *scheduled* run itself the moment `s3_export` is unpaused
(catchup=False: the latest due UTC day), exactly as in production; its mapped exports cover three
destinations in a pool of two slots. The test then checks, through the CLI and the metadata DB:
every task succeeded on the Celery worker, the objects are byte-exact against tests/reference.py,
each export logged its summary line, and the downstream DAG ran on the Asset events and received
their extra (key, rows, bytes, sha256, window).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import reference as ref
from airflow_cluster import ROOT, Airflow, dags_folder, running_airflow
from conftest import aws_connection, list_keys, source_connection

from subscription_exports.integrations import S3_EXPORT

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
CONSUMER_DAG_ID = "subscription_exports_consumer"
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 13  # DB 13: used by this test only
REDIS_START = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
QUEUE = f"subscription-exports-test-{uuid.uuid4().hex[:8]}"
POOL, POOL_SLOTS = "subscription_source", 2
IOS, ANDROID, WEB = "com.acme.ios", "com.acme.android", "com.acme.web"
TODAY = dt.datetime.now(dt.UTC).date()
# The scheduled run exports the latest due UTC day (yesterday after 04:00 UTC, else the day before):
# seed the days around it.
SEED_ARGS = {"apps": [IOS, ANDROID, WEB], "start": TODAY - dt.timedelta(days=3), "days": 4, "rows_per_day": 120}
DESTINATIONS = [
    {"name": "ios", "conn_id": "exports_s3", "bucket": "adapty-events/com.acme.ios", "folder": "celery",
     "app_id": IOS},
    {"name": "android", "conn_id": "exports_s3", "bucket": "exports", "folder": "celery/android",
     "app_id": ANDROID},
    {"name": "web-events", "conn_id": "exports_s3", "bucket": "adapty-events", "folder": "celery/web",
     "app_id": WEB, "tables": ["events"]},
]  # fmt: skip
ALL_TYPES = set(S3_EXPORT.all_event_types)
WORKER_ARGS = ["celery", "worker", "--skip-serve-logs", "--queues", QUEUE, "--celery-hostname", f"{QUEUE}@%h"]
SUMMARY = re.compile(
    r"exported destination=(?P<destination>\S+) table=(?P<table>\S+) window=(?P<window>\S+) rows=(?P<rows>\d+) "
    r"bytes=(?P<bytes>\d+) uri=(?P<uri>\S+) seconds=(?P<seconds>[\d.]+) rows_per_s=(?P<rate>\d+)"
)


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def expected_objects(src: dict, day: dt.date) -> dict[str, dict[str, Any]]:
    """{"bucket/key": {destination, table, asset, body}} of the data files the run for `day` writes."""
    window = {"start": _utc(day), "end": _utc(day + dt.timedelta(days=1))}
    found = {}
    for dest in DESTINATIONS:
        bucket, _, nested = dest["bucket"].partition("/")
        prefix = "/".join(p for p in (nested, dest["folder"]) if p)
        for table in dest.get("tables", ["events", "paywall_visits"]):
            if table == "events":
                body = ref.expected_events(src, app_id=dest["app_id"], event_types=ALL_TYPES, **window)
            else:
                body = ref.expected_paywall_visits(src, app_id=dest["app_id"], **window)
            key = f"{prefix}/{table}/dt={day}/{table}_{day}.csv"
            found[f"{bucket}/{key}"] = {
                "destination": dest["name"],
                "table": table,
                "key": key,
                "asset": f"subscription_exports/{DAG_ID}/{table}",
                "body": body,
            }
    return found


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_broker() -> Iterator[str]:
    """Redis on 127.0.0.1:6379 (DB 13); afterwards the keys of this test's queue are deleted."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT} ({exc}); the CeleryExecutor test needs it as "
            f"the broker. Start it with: {REDIS_START}",
            pytrace=False,
        )
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    with contextlib.suppress(redis.exceptions.RedisError):
        keys = [k for k in client.scan_iter(count=1000) if QUEUE.encode() in k]
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def source_url(pg_database_factory) -> str:
    return pg_database_factory(seed=23, **SEED_ARGS)


@pytest.fixture(scope="module")
def src(source_url) -> dict:
    return ref.load_source(source_url)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, source_url, admin, redis_broker) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("airflow-celery")
    metadata_url = pg_database_factory()
    folder = dags_folder(home / "dags", ROOT / "tests" / "dags" / "subscription_exports_consumer.py")

    def create_pool(af: Airflow) -> None:
        # Before the DAG is parsed: a task in a pool that does not exist is never scheduled.
        af.cli("pools", "set", POOL, str(POOL_SLOTS), "exports reading the subscription source DB")

    with running_airflow(
        home,
        metadata_url,
        expect_dags=[DAG_ID, CONSUMER_DAG_ID],
        extra_components=[("celery-worker", WORKER_ARGS)],
        before_start=create_pool,
        AIRFLOW__CORE__DAGS_FOLDER=str(folder),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CORE__PARALLELISM="8",
        AIRFLOW__CELERY__BROKER_URL=redis_broker,
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + metadata_url,
        AIRFLOW__CELERY__WORKER_CONCURRENCY="3",
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=QUEUE,
        # Scheduled and asset-triggered runs on (see tests/airflow_cluster.py).
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="True",
        SUBSCRIPTION_EXPORTS_POOL=POOL,
        AIRFLOW_VAR_S3_EXPORT_DESTINATIONS=json.dumps(
            {"source_conn_id": "subscription_source", "destinations": DESTINATIONS}
        ),
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    ) as af:
        af.dag_id = DAG_ID
        yield af


@pytest.fixture(scope="module")
def export_run(airflow) -> dict[str, Any]:
    """The scheduled run of s3_export, finished; the consumer is unpaused first so it sees the events."""
    airflow.cli("dags", "unpause", CONSUMER_DAG_ID)
    airflow.cli("dags", "unpause", DAG_ID)
    states = airflow.wait_runs_terminal("the scheduled run of s3_export", lambda r: r["run_type"] == "scheduled", 1)
    (run_id, state), *_ = states.items()
    return {**airflow.runs()[run_id], "cli_state": state}


def csv_rows(body: bytes) -> int:
    """Data rows of a CSV file (quoted fields may hold line breaks, so lines are not rows)."""
    return len(list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))) - 1


def xcom_value(airflow: Airflow, dag_id: str, run_id: str, task_id: str) -> Any:
    rows = airflow.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s AND key = 'return_value'",
        dag_id,
        run_id,
        task_id,
    )
    assert len(rows) == 1, rows
    value = rows[0]["value"]
    return json.loads(value) if isinstance(value, str | bytes) else value


# -- tests (in file order) ---------------------------------------------------------------------------


def test_scheduled_run_exports_every_destination_on_the_celery_worker(airflow, export_run, admin, src):
    airflow.assert_runs_succeeded({export_run["run_id"]: export_run["cli_state"]})
    day = export_run["data_interval_start"].date()
    assert export_run["data_interval_end"] - export_run["data_interval_start"] == dt.timedelta(days=1)
    assert day < TODAY

    tis = airflow.task_instances(export_run["run_id"])
    assert {(t["task_id"], t["state"]) for t in tis} == {
        ("resolve_window", "success"),
        ("load_destinations", "success"),
        ("destination.export_tables", "success"),
    }, tis
    exports = [t for t in tis if t["task_id"] == "destination.export_tables"]
    # map_index_template: the UI labels each mapped export with its destination's name and index.
    # Map index i is the i-th destination of the configuration.
    assert sorted(t["rendered_map_index"] for t in exports) == sorted(
        f"{d['name']} (#{i})" for i, d in enumerate(DESTINATIONS)
    )
    # Every task went through this test's Celery queue; exports ran in the source-DB pool.
    assert {t["queue"] for t in tis} == {QUEUE}
    assert {t["pool"] for t in exports} == {POOL}
    assert {t["pool"] for t in tis if t not in exports} == {"default_pool"}

    # The Celery result backend (PostgreSQL) recorded each task the worker ran. The task process
    # reports its state to Airflow before the worker writes the result, so the last may still be
    # STARTED for a moment after the run succeeded (seen once in CI on a loaded machine).
    def celery_states() -> list[str]:
        return [r["status"] for r in airflow.query("SELECT status FROM celery_taskmeta")]

    airflow.wait(
        f"the Celery result backend to record {len(tis)} finished tasks",
        lambda: celery_states().count("SUCCESS") >= len(tis),
        timeout=60,
        every=0.5,
    )
    assert celery_states().count("SUCCESS") >= len(tis), celery_states()
    assert "ready" in airflow.log_path("celery-worker").read_text(errors="replace")

    want = expected_objects(src, day)
    objects = {}
    for bucket in ("adapty-events", "exports"):
        for key in list_keys(admin, bucket):
            objects[f"{bucket}/{key}"] = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert sorted(objects) == sorted([*want, *(k + ".manifest.json" for k in want)])
    for name, item in want.items():
        assert objects[name] == item["body"], f"{name} differs from tests/reference.py"
        assert csv_rows(objects[name]) > 0, f"{name}: the seeded day must have rows"


def test_each_export_logs_one_summary_line_per_table(airflow, export_run, src):
    day = export_run["data_interval_start"].date()
    log = airflow.task_log(export_run["run_id"], "destination.export_tables")
    lines = [m.groupdict() for m in SUMMARY.finditer(log)]
    want = expected_objects(src, day)
    assert sorted((line["destination"], line["table"]) for line in lines) == sorted(
        (item["destination"], item["table"]) for item in want.values()
    ), log[-4000:]
    for line in lines:
        (name, item), *_ = [(n, i) for n, i in want.items() if i["destination"] == line["destination"]
                            and i["table"] == line["table"]]  # fmt: skip
        assert line["window"] == str(day)
        assert int(line["bytes"]) == len(item["body"])
        assert int(line["rows"]) == csv_rows(item["body"])
        assert line["uri"] == f"s3://{name}"
        assert float(line["seconds"]) >= 0 and int(line["rate"]) >= 0


def recorded_asset_events(airflow: Airflow, run_id: str) -> dict[str, dict[str, Any]]:
    """Airflow's own record of the asset events `run_id` emitted, keyed by object key."""
    rows = airflow.query(
        "SELECT e.id, a.uri, e.extra, e.timestamp, e.source_dag_id, e.source_run_id FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id WHERE e.source_dag_id = %s AND e.source_run_id = %s",
        DAG_ID,
        run_id,
    )
    for row in rows:
        row["extra"] = json.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"]
    return {row["extra"]["key"]: row for row in rows}


def test_downstream_dag_runs_on_the_export_asset_events(airflow, export_run, admin, src):
    """The downstream DAG runs on the export's Asset events and receives their extra.

    Airflow 3.3 hands a burst of events of one asset to asset-triggered runs in a way a test must
    allow for: the run queue holds one row per (asset, DAG), inserted with ON CONFLICT DO NOTHING
    and deleted when a run is created, so an event that lands while that row is already queued is
    not in the run being created (its timestamp is after the run's) and queues no run of its own;
    the NEXT asset-triggered run consumes it. So the test asserts what a user can rely on: every
    export emitted its event (Airflow's record), each consumer run received events with the exact
    extra, and any event not consumed yet is newer than every consumer run, i.e. waiting for the
    next one: none is lost.
    """
    day = export_run["data_interval_start"].date()
    want = {item["key"]: item for item in expected_objects(src, day).values()}

    def settled() -> bool:
        runs = airflow.runs(CONSUMER_DAG_ID)
        queued = airflow.query("SELECT asset_id FROM asset_dag_run_queue WHERE target_dag_id = %s", CONSUMER_DAG_ID)
        return (
            len(recorded_asset_events(airflow, export_run["run_id"])) >= len(want)
            and bool(runs)
            and all(r["state"] in ("success", "failed") for r in runs.values())
            and not queued
        )

    airflow.wait("the downstream DAG to run on the export's asset events", settled, 180)
    recorded = recorded_asset_events(airflow, export_run["run_id"])
    assert set(recorded) == set(want)
    runs = airflow.runs(CONSUMER_DAG_ID)
    received: dict[str, dict[str, Any]] = {}
    for run_id, run in runs.items():
        assert run["state"] == "success", airflow.task_states(run_id, CONSUMER_DAG_ID)
        assert run["run_type"] == "asset_triggered", run
        for event in xcom_value(airflow, CONSUMER_DAG_ID, run_id, "fresh_exports"):
            assert event["extra"]["key"] not in received, f"event delivered twice: {event}"
            received[event["extra"]["key"]] = event
    listed = airflow.list_runs(CONSUMER_DAG_ID)
    assert listed and {r["state"] for r in listed.values()} == {"success"}
    assert received, "the downstream DAG ran but received no export event"
    last_run_after = max(r["run_after"] for r in airflow.query(
        "SELECT run_after FROM dag_run WHERE dag_id = %s", CONSUMER_DAG_ID
    ))  # fmt: skip
    for key in set(want) - set(received):
        assert recorded[key]["timestamp"] > last_run_after, f"event of {key} was neither delivered nor pending"

    for key, item in want.items():
        event = recorded[key]
        extra = event["extra"]
        body = item["body"]
        manifest = json.loads(admin.get_object(Bucket=extra["bucket"], Key=key + ".manifest.json")["Body"].read())
        if key in received:
            delivered = received[key]
            assert delivered["extra"] == extra
            assert delivered["asset"] == event["uri"]
            assert delivered["source_dag_id"] == DAG_ID and delivered["source_run_id"] == export_run["run_id"]
        assert event["uri"] == item["asset"]
        assert extra["destination"] == item["destination"] and extra["table"] == item["table"]
        assert extra["uri"] == f"s3://{extra['bucket']}/{key}"
        assert extra["manifest_key"] == key + ".manifest.json"
        assert extra["bytes"] == len(body) == manifest["bytes"]
        assert extra["sha256"] == hashlib.sha256(body).hexdigest() == manifest["sha256"]
        assert extra["rows"] == manifest["rows"]
        assert extra["window"] == manifest["window"]
        assert extra["window"]["date_from"] == extra["window"]["date_to"] == str(day)
        assert extra["run_id"] == export_run["run_id"]
