"""System test: backfills and manual range runs on a RUNNING Airflow 3 (not `dag.test`).

The module starts real Airflow components (tests/airflow_cluster.py: `airflow api-server`,
`airflow scheduler` with the LocalExecutor, `airflow dag-processor`, a PostgreSQL metadata database,
a private AIRFLOW_HOME). The test then drives them only through the CLI an operator would use
(`airflow backfill create`, `airflow dags trigger`, `airflow dags list-runs`) and checks the bucket
against tests/reference.py.

What Airflow 3.3 requires here (found by reading airflow-core 3.3.2 and confirmed by this test):

* Runs of a *paused* DAG never start: the scheduler only moves QUEUED runs to RUNNING for unpaused
  DAGs (``DagRun.get_queued_dag_runs_to_set_running``), for backfill runs as well as for triggered
  ones (`airflow dags trigger --help`: "If DAG is paused then dagrun state will remain queued").
  `airflow backfill create` no longer unpauses the DAG, and `--run-on-latest-version` is unrelated
  (it picks the bundle version; the CLI default resolves to True for backfills). So the DAG is
  unpaused with `airflow dags unpause`, and ``[scheduler] use_job_schedule = False`` keeps the
  scheduler from creating its own scheduled runs (catchup=False would otherwise start the latest
  due day the moment the DAG is unpaused); backfills and triggered runs still run.
* ``--reprocess-behavior completed`` does not create a second run for a day that already ran: it
  clears the existing run (same run_id) and re-queues it under the new backfill. The object
  is rewritten under the same key (the manifest's ``exported_at`` moves on); the run_id stays.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reference as ref
from airflow_cluster import Airflow, running_airflow
from conftest import aws_connection, list_keys, source_connection

from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT, S3_EXPORT

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
UA_DAG_ID = "custom_s3_ua_export"
IOS = "com.acme.ios"
SEED_ARGS = {"apps": [IOS], "start": dt.date(2026, 3, 5), "days": 5, "rows_per_day": 100, "seed": 11}
BUCKET, FOLDER = "adapty-events", "scheduler-system"
DESTINATIONS = [{"name": "ios", "conn_id": "exports_s3", "bucket": BUCKET, "folder": FOLDER, "app_id": IOS}]
TABLES = ("events", "paywall_visits")
UA_BUCKET = "adapty-ua"
UA_DESTINATIONS = [{"name": "ios-ua", "conn_id": "exports_s3", "bucket": UA_BUCKET, "folder": FOLDER, "app_id": IOS}]
UA_TABLES = ("ua_events", "campaign_performance")
UA_TYPES = set(CUSTOM_S3_UA_EXPORT.all_event_types)
ALL_TYPES = set(S3_EXPORT.all_event_types)
MANIFEST = ".manifest.json"


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def daily_key(table: str, day: dt.date) -> str:
    return f"{FOLDER}/{table}/dt={day}/{table}_{day}.csv"


def range_key(table: str, first: dt.date, last: dt.date) -> str:
    return f"{FOLDER}/{table}/manual/{first}_{last}/{table}_{first}_{last}.csv"


def expected(src: dict, table: str, start: dt.date, end: dt.date) -> bytes:
    """Reference bytes of `table` for rows recorded in [start 00:00, end 00:00) UTC."""
    window = {"app_id": IOS, "start": _utc(start), "end": _utc(end)}
    if table == "events":
        return ref.expected_events(src, event_types=ALL_TYPES, **window)
    return ref.expected_paywall_visits(src, **window)


def csv_rows(body: bytes) -> int:
    """Data rows of a CSV file (quoted fields may hold line breaks, so lines are not rows)."""
    return len(list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))) - 1


def bucket_objects(client: Any, bucket: str = BUCKET) -> dict[str, bytes]:
    """Every object under our folder, {key: bytes} (nothing is deleted)."""
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in list_keys(client, bucket, FOLDER)}


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_url(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


@pytest.fixture(scope="module")
def src(source_url) -> dict:
    return ref.load_source(source_url)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, source_url, admin) -> Iterator[Airflow]:
    """api-server + scheduler + dag-processor on loopback, DAGs parsed (and paused at creation)."""
    with running_airflow(
        tmp_path_factory.mktemp("airflow-running"),
        pg_database_factory(),
        expect_dags=[DAG_ID, UA_DAG_ID],
        # No scheduled runs: only the backfills and triggered runs of this test (see module docstring).
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW_VAR_S3_EXPORT_DESTINATIONS=json.dumps(
            {"source_conn_id": "subscription_source", "destinations": DESTINATIONS}
        ),
        AIRFLOW_VAR_CUSTOM_S3_UA_EXPORT_DESTINATIONS=json.dumps(
            {"source_conn_id": "subscription_source", "destinations": UA_DESTINATIONS}
        ),
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    ) as af:
        yield af


# -- tests (in file order; each builds on the previous state) ----------------------------------------


def dag_details(airflow: Airflow) -> dict[str, Any]:
    return airflow.dag_details(DAG_ID)


def test_dag_is_parsed_paused_and_the_scheduler_creates_no_runs(airflow):
    assert dag_details(airflow)["is_paused"] in (True, "True")
    assert airflow.list_runs() == {}


def test_backfill_writes_one_file_per_table_and_day(airflow, admin, src):
    airflow.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-03-06", "--to-date", "2026-03-08")
    # The DAG is still paused: Airflow 3.3 creates the backfill's runs but leaves them queued.
    scheduler_alive_since = time.time()
    airflow.wait(
        "scheduler heartbeats",
        lambda: bool(
            airflow.query(
                "SELECT 1 FROM job WHERE job_type = 'SchedulerJob' AND state = 'running' AND latest_heartbeat > %s",
                dt.datetime.fromtimestamp(scheduler_alive_since + 5, dt.UTC),
            )
        ),
        timeout=60,
    )
    queued = airflow.list_runs()
    assert len(queued) == 3 and {r["state"] for r in queued.values()} == {"queued"}, queued
    airflow.cli("dags", "unpause", DAG_ID)
    assert dag_details(airflow)["is_paused"] in (False, "False")

    states = airflow.wait_runs_terminal("the backfill of 2026-03-06..08", lambda r: r["run_type"] == "backfill", 3)
    airflow.assert_runs_succeeded(states)
    airflow.wait_backfills_completed()
    runs = airflow.runs()
    assert sorted(runs[r]["logical_date"].date() for r in states) == [
        dt.date(2026, 3, 6),
        dt.date(2026, 3, 7),
        dt.date(2026, 3, 8),
    ]

    objects = bucket_objects(admin)
    days = [dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8)]
    data_keys = [daily_key(t, d) for t in TABLES for d in days]
    assert sorted(objects) == sorted(data_keys + [k + MANIFEST for k in data_keys])
    for day in days:
        for table in TABLES:
            key = daily_key(table, day)
            assert objects[key] == expected(src, table, day, day + dt.timedelta(days=1)), key
            manifest = json.loads(objects[key + MANIFEST])
            assert manifest["window"]["kind"] == "daily"
            assert manifest["window"]["date_from"] == manifest["window"]["date_to"] == str(day)
            assert manifest["rows"] == csv_rows(objects[key])
            assert runs[manifest["run_id"]]["logical_date"].date() == day


def test_reprocess_completed_rewrites_the_day_in_place(airflow, admin):
    before = bucket_objects(admin)
    day = dt.date(2026, 3, 7)
    manifest_key = daily_key("events", day) + MANIFEST
    old_manifest = json.loads(before[manifest_key])
    old_backfills = {r["backfill_id"] for r in airflow.runs().values()}
    time.sleep(1.1)  # exported_at has one-second resolution

    airflow.cli(
        "backfill", "create", "--dag-id", DAG_ID, "--from-date", str(day), "--to-date", str(day),
        "--reprocess-behavior", "completed",
    )  # fmt: skip
    new_backfill = airflow.query("SELECT max(id) AS id FROM backfill WHERE dag_id = %s", DAG_ID)[0]["id"]
    assert new_backfill not in old_backfills
    states = airflow.wait_runs_terminal(
        f"the re-export of {day}", lambda r: r["backfill_id"] == new_backfill and r["run_type"] == "backfill", 1
    )
    airflow.assert_runs_succeeded(states)
    airflow.wait_backfills_completed()
    assert len(airflow.runs()) == 3, "reprocessing re-runs the existing run, it adds none"

    after = bucket_objects(admin)
    assert sorted(after) == sorted(before), "same keys, no duplicates"
    for key, body in before.items():
        if key.endswith(MANIFEST):
            continue
        assert after[key] == body, f"{key} changed"
    for table in TABLES:
        key = daily_key(table, day) + MANIFEST
        new, old = json.loads(after[key]), json.loads(before[key])
        assert new["exported_at"] > old["exported_at"], f"{key} was not rewritten"
        # Airflow 3.3 clears and re-queues the existing run, so the run_id is the same one.
        assert new["run_id"] == old["run_id"] == next(iter(states))
        assert {k: v for k, v in new.items() if k != "exported_at"} == {
            k: v for k, v in old.items() if k != "exported_at"
        }
    for other in (dt.date(2026, 3, 6), dt.date(2026, 3, 8)):
        for table in TABLES:
            key = daily_key(table, other) + MANIFEST
            assert after[key] == before[key], f"{key} was rewritten"
    assert old_manifest["run_id"] in airflow.runs()


def test_manual_range_run_writes_one_file_per_table(airflow, admin, src):
    before = bucket_objects(admin)
    run_id = "manual_range_2026-03-05_2026-03-07"
    conf = {"date_from": "2026-03-05", "date_to": "2026-03-07"}
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))
    states = airflow.wait_runs_terminal("the manual range run", lambda r: r["run_id"] == run_id, 1)
    assert states == {run_id: "success"}, airflow.diagnostics()

    after = bucket_objects(admin)
    first, last = dt.date(2026, 3, 5), dt.date(2026, 3, 7)
    new_keys = sorted(set(after) - set(before))
    range_keys = [range_key(t, first, last) for t in TABLES]
    assert new_keys == sorted(range_keys + [k + MANIFEST for k in range_keys])
    assert {k: after[k] for k in before} == before, "daily files untouched"
    for table in TABLES:
        key = range_key(table, first, last)
        # 2026-03-05 00:00:00 .. 2026-03-07 23:59:59.999999 UTC
        assert after[key] == expected(src, table, first, last + dt.timedelta(days=1)), key
        manifest = json.loads(after[key + MANIFEST])
        assert manifest["run_id"] == run_id
        assert manifest["window"] == {
            "kind": "range",
            "start": "2026-03-05T00:00:00+00:00",
            "end": "2026-03-08T00:00:00+00:00",
            "date_from": "2026-03-05",
            "date_to": "2026-03-07",
        }


def test_inverted_manual_range_fails_and_writes_nothing(airflow, admin):
    before = bucket_objects(admin)
    run_id = "manual_range_inverted"
    conf = {"date_from": "2026-03-09", "date_to": "2026-03-05"}
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))
    states = airflow.wait_runs_terminal("the inverted manual range run", lambda r: r["run_id"] == run_id, 1)
    assert states == {run_id: "failed"}

    tasks = airflow.task_states(run_id)
    # Nothing downstream of the window ran: not even the destination check's write probe, and the
    # per-destination task was never expanded (no map index that could show a number for a name).
    assert tasks == {
        "resolve_window": "failed",
        "load_destinations": "upstream_failed",
        "destination.export_tables": "upstream_failed",
    }, tasks
    assert bucket_objects(admin) == before, "a failed range run must write nothing"
    log = airflow.task_log(run_id, "resolve_window")
    assert "date range is inverted: date_from 2026-03-09 is after date_to 2026-03-05" in log, log[-3000:]


def test_backfill_of_the_custom_s3_ua_export(airflow, admin, src):
    """The second DAG backfills the same way: one file per table and UTC day, exact bytes, nothing else."""
    assert bucket_objects(admin, UA_BUCKET) == {}
    airflow.cli("dags", "unpause", UA_DAG_ID)
    airflow.cli("backfill", "create", "--dag-id", UA_DAG_ID, "--from-date", "2026-03-06", "--to-date", "2026-03-08")
    states = airflow.wait_runs_terminal(
        "the UA backfill of 2026-03-06..08", lambda r: r["run_type"] == "backfill", 3, dag_id=UA_DAG_ID
    )
    airflow.assert_runs_succeeded(states, UA_DAG_ID)

    objects = bucket_objects(admin, UA_BUCKET)
    days = [dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8)]
    data_keys = [daily_key(t, d) for t in UA_TABLES for d in days]
    assert sorted(objects) == sorted(data_keys + [k + MANIFEST for k in data_keys])
    for day in days:
        window = {"app_id": IOS, "start": _utc(day), "end": _utc(day + dt.timedelta(days=1))}
        assert objects[daily_key("ua_events", day)] == ref.expected_ua_events(src, event_types=UA_TYPES, **window)
        assert objects[daily_key("campaign_performance", day)] == ref.expected_campaign_performance(
            src, app_id=IOS, date_from=day, date_to=day
        )
