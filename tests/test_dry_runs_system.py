"""System test: the day a manual run exports, dry runs from every form, and what the UI shows, on a
RUNNING Airflow 3 (api-server, scheduler, dag-processor; tests/airflow_cluster.py), driven through
the endpoints the UI calls (REST /api/v2) and read back through REST and the bucket.

* a trigger whose logical date is a picked day at 22:00 (what the UI's date picker sends) exports
  that day (note, resolve_window's XCom, keys), and every map index is labelled `name (#i)`;
* dry run -> real run -> backfill of the same day: the dry run gives up its logical date when it
  starts, so the real trigger of that logical date is accepted (no 409) and exports, and the
  backfill re-exports the real run's day, never the dry run; clearing the dry run re-runs it dry;
* POST /api/v2/backfills as the UI's Backfill form sends it: with "Override parameters on existing
  runs" ticked and Dry run ticked (`dag_run_conf` holds the params) nothing is written; unticked
  (`dag_run_conf: null`, whatever the boxes say) the backfill writes, and re-running a day whose
  earlier run was a dry backfill exports it for real (the run's dry_run follows its backfill).

The seeded source covers D-3..D (D: the latest due day), relative to the clock, so each run exports
rows. Timeouts are generous and nothing is timed: runs are awaited by state.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import reference as ref
from airflow_cluster import Airflow, running_airflow
from conftest import aws_connection, list_keys, source_connection

from subscription_exports.integrations import S3_EXPORT
from subscription_exports.windows import latest_due_day

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
IOS, ANDROID = "com.acme.ios", "com.acme.android"
BUCKET = "adapty-events"
DESTINATIONS = [
    {"name": "acme-ios", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "dry/ios", "app_id": IOS},
    {"name": "acme-android", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "dry/android", "app_id": ANDROID},
]
TABLES = ("events", "paywall_visits")
ALL_TYPES = set(S3_EXPORT.all_event_types)
MANIFEST = ".manifest.json"

NOW = dt.datetime.now(dt.UTC)
D = latest_due_day(NOW)
DAYS = [D - dt.timedelta(days=n) for n in range(3, -1, -1)]  # D-3 .. D, seeded
PICKED = DAYS[0]  # triggered with logical date PICKED 22:00 (the UI's date picker keeps the time of day)
DRY_THEN_REAL = DAYS[1]  # dry run, real run, backfill
DRY_BACKFILL = DAYS[2]  # a dry backfill (Override ticked), then a backfill with the form's defaults
SEED_ARGS = {"apps": [IOS, ANDROID], "start": DAYS[0], "days": len(DAYS), "rows_per_day": 30, "seed": 20}
# What the Backfill form holds in its params section (all params of the DAG, as the form renders them).
FORM_PARAMS = {"date_from": None, "date_to": None, "dry_run": True}


def _utc(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def day_keys(day: dt.date) -> set[str]:
    keys = set()
    for dest in DESTINATIONS:
        for table in TABLES:
            key = f"{dest['folder']}/{table}/dt={day}/{table}_{day}.csv"
            keys |= {key, key + MANIFEST}
    return keys


def expected(src: dict, table: str, app_id: str, day: dt.date) -> bytes:
    window = {"app_id": app_id, "start": _utc(day), "end": _utc(day + dt.timedelta(days=1))}
    if table == "events":
        return ref.expected_events(src, event_types=ALL_TYPES, **window)
    return ref.expected_paywall_visits(src, **window)


def bucket_objects(client: Any) -> dict[str, bytes]:
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in list_keys(client, BUCKET, "dry/")}


def assert_day_exported(objects: dict[str, bytes], src: dict, day: dt.date, run_id: str) -> None:
    for dest in DESTINATIONS:
        for table in TABLES:
            key = f"{dest['folder']}/{table}/dt={day}/{table}_{day}.csv"
            assert objects[key] == expected(src, table, dest["app_id"], day), key
            manifest = json.loads(objects[key + MANIFEST])
            assert manifest["run_id"] == run_id and manifest["window"]["date_from"] == str(day), manifest


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_url(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


@pytest.fixture(scope="module")
def src(source_url) -> dict:
    return ref.load_source(source_url)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, source_url, admin) -> Iterator[Airflow]:
    with running_airflow(
        tmp_path_factory.mktemp("airflow-dry-runs"),
        pg_database_factory(),
        expect_dags=[DAG_ID],
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",  # /api/v2 without a login, as an admin
        AIRFLOW__CORE__PARALLELISM="6",
        AIRFLOW_VAR_S3_EXPORT_DESTINATIONS=json.dumps(
            {"source_conn_id": "subscription_source", "destinations": DESTINATIONS}
        ),
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    ) as af:
        af.cli("dags", "unpause", DAG_ID)  # manual and backfill runs of a paused DAG do not run
        yield af


def trigger(airflow: Airflow, **body: Any) -> str:
    """What the UI's Trigger button sends: POST /api/v2/dags/{dag_id}/dagRuns."""
    body.setdefault("logical_date", None)
    return airflow.api("POST", f"dags/{DAG_ID}/dagRuns", body)["dag_run_id"]


def backfill(airflow: Airflow, first: dt.date, last: dt.date, *, dag_run_conf: dict | None, reprocess: str) -> int:
    """What the UI's Backfill form sends (POST /api/v2/backfills), for a browser on UTC: the From field
    at 00:00, the To field at the end of its day; `dag_run_conf` is the params section only when
    "Override parameters on existing runs" is ticked, else null."""
    body = {
        "dag_id": DAG_ID,
        "from_date": _utc(first).isoformat().replace("+00:00", ".000Z"),
        "to_date": (_utc(last + dt.timedelta(days=1)) - dt.timedelta(milliseconds=1))
        .isoformat()
        .replace("+00:00", "Z"),
        "dag_run_conf": dag_run_conf,
        "max_active_runs": 1,
        "reprocess_behavior": reprocess,
        "run_backwards": False,
        "run_on_latest_version": True,
    }
    return airflow.api("POST", "backfills", body)["id"]


def wait_run(airflow: Airflow, run_id: str) -> str:
    return airflow.wait_runs_terminal(run_id, lambda r: r["run_id"] == run_id, 1)[run_id]


def rest_run(airflow: Airflow, run_id: str) -> dict[str, Any]:
    return airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}")


def resolve_tries(airflow: Airflow, run_id: str) -> int:
    rows = airflow.query(
        "SELECT try_number FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = 'resolve_window'",
        DAG_ID,
        run_id,
    )
    return rows[0]["try_number"] if rows else 0


def export_labels(airflow: Airflow, run_id: str) -> dict[int, str]:
    listed = airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    return {ti["map_index"]: ti["rendered_map_index"] for ti in listed if ti["task_id"] == "destination.export_tables"}


# -- tests (in file order; each builds on the previous state) ------------------------------------------


def test_a_logical_date_at_2200_exports_that_day_and_map_indexes_are_labelled(airflow, admin, src):
    run_id = trigger(airflow, logical_date=_utc(PICKED, 22).isoformat())
    # The grid shows run ids, not notes: the id names the day (and the trigger time, unique).
    assert run_id.startswith(f"manual__{PICKED}_triggered_{dt.datetime.now(dt.UTC):%Y-%m-%d}T"), run_id
    assert wait_run(airflow, run_id) == "success", airflow.explain_runs([run_id])
    run = rest_run(airflow, run_id)
    assert run["note"] == f"Exports {PICKED} (UTC)", run["note"]
    assert run["data_interval_start"].startswith(str(PICKED)), run
    window = airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/resolve_window/xcomEntries/return_value")
    window = json.loads(window["value"]) if isinstance(window["value"], str) else window["value"]
    assert window == {"start": _utc(PICKED).isoformat(), "end": _utc(PICKED + dt.timedelta(days=1)).isoformat(),
                      "kind": "daily"}  # fmt: skip
    objects = bucket_objects(admin)
    assert_day_exported(objects, src, PICKED, run_id)
    assert not [k for k in objects if f"dt={PICKED - dt.timedelta(days=1)}" in k], "not the day before"
    # Where Airflow shows map index numbers (Clear dialog, CLI), the label holds the number too.
    assert export_labels(airflow, run_id) == {0: "acme-ios (#0)", 1: "acme-android (#1)"}


def test_dry_run_then_real_run_then_backfill_of_the_same_day(airflow, admin, src):
    day = DRY_THEN_REAL
    logical_date = _utc(day).isoformat()  # `--logical-date DAY` / REST: the scheduled run's logical date too
    dry = trigger(airflow, logical_date=logical_date, conf={"dry_run": True})
    assert wait_run(airflow, dry) == "success", airflow.explain_runs([dry])
    run = rest_run(airflow, dry)
    # It gave up its logical date when it started; the day it named stays its data interval.
    assert run["logical_date"] is None and run["data_interval_start"].startswith(str(day)), run
    assert run["note"].startswith(f"Exports {day} (UTC) (dry run: writes nothing; holds no logical date"), run
    assert run["conf"]["dry_run"] is True
    assert not day_keys(day) & set(bucket_objects(admin)), "a dry run writes nothing"
    log = airflow.task_log(dry, "destination.export_tables")
    assert f"dry run: destination=acme-ios table=events window={day}" in log, log[-3000:]

    # The real trigger of the same logical date is accepted (no 409 Conflict) and exports the day.
    real = trigger(airflow, logical_date=logical_date)
    assert real != dry and real.startswith(f"manual__{day}_triggered_") and dry.startswith(f"manual__{day}_"), real
    assert wait_run(airflow, real) == "success", airflow.explain_runs([real])
    assert rest_run(airflow, real)["logical_date"].startswith(str(day))
    assert_day_exported(bucket_objects(admin), src, day, real)

    # A backfill over the day (the form's defaults, "All runs"): re-runs the real run, not the dry one.
    for key in day_keys(day):
        admin.delete_object(Bucket=BUCKET, Key=key)
    backfill(airflow, day, day, dag_run_conf=None, reprocess="completed")
    airflow.wait_backfills_completed()
    assert wait_run(airflow, real) == "success", airflow.explain_runs([real])
    runs = airflow.runs()
    assert runs[real]["run_type"] == "backfill" and runs[real]["backfill_id"] is not None, runs[real]
    assert runs[dry]["run_type"] == "manual" and runs[dry]["logical_date"] is None, runs[dry]
    assert_day_exported(bucket_objects(admin), src, day, real)

    # Clearing the dry run re-runs it as a dry run: it still holds no logical date and writes nothing.
    before = bucket_objects(admin)
    airflow.api(
        "POST", f"dags/{DAG_ID}/clearTaskInstances", {"dag_run_id": dry, "dry_run": False, "only_failed": False}
    )
    airflow.wait(
        f"{dry} to run again", lambda: resolve_tries(airflow, dry) == 2 and airflow.runs()[dry]["state"] == "success"
    )
    log = airflow.task_log(dry, "destination.export_tables")
    assert log.count(f"dry run: destination=acme-ios table=events window={day}") == 2, "both tries dry"
    assert rest_run(airflow, dry)["logical_date"] is None
    assert bucket_objects(admin) == before


def test_the_backfill_form_honours_dry_run_only_with_override_ticked(airflow, admin, src):
    day = DRY_BACKFILL
    dry_id = f"backfill__{day}T00:00:00+00:00"
    # Override ticked: the form sends its params as dag_run_conf; the backfill is a dry run.
    backfill(airflow, day, day, dag_run_conf=FORM_PARAMS, reprocess="none")
    airflow.wait_backfills_completed()
    assert wait_run(airflow, dry_id) == "success", airflow.explain_runs([dry_id])
    run = rest_run(airflow, dry_id)
    assert run["conf"] == FORM_PARAMS and run["note"] == f"Exports {day} (UTC) (dry run: writes nothing)", run
    assert not day_keys(day) & set(bucket_objects(admin)), "a dry backfill writes nothing"

    # Override unticked: dag_run_conf is null whatever the Dry run box says; the runs get no params.
    # "All runs" re-runs the day's dry backfill run in place (Airflow keeps its conf); it does what
    # this backfill asked: a real export.
    second = backfill(airflow, day, day, dag_run_conf=None, reprocess="completed")
    airflow.wait_backfills_completed()
    assert wait_run(airflow, dry_id) == "success", airflow.explain_runs([dry_id])
    run = rest_run(airflow, dry_id)
    assert run["conf"]["dry_run"] is False, run
    assert run["note"] == (
        f"Exports {day} (UTC); backfill {second} sent no dry_run, so this day's earlier dry run is now a real "
        "export (dry_run set to false)"
    ), run["note"]
    assert_day_exported(bucket_objects(admin), src, day, dry_id)


def test_the_dry_run_box_says_first_what_a_backfill_does_with_it(airflow):
    param = airflow.api("GET", f"dags/{DAG_ID}/details")["params"]["dry_run"]
    assert param["description"].startswith('Backfill form: honoured only with "Override parameters'), param
    assert "Backfill: only with Override ticked" in param["schema"]["title"], param


def test_a_real_trigger_while_the_dry_run_still_holds_its_logical_date_is_refused_loudly(airflow):
    """Until a dry run starts (queued), Airflow keeps its logical date: the same logical date is then
    refused with 409 (loud, nothing exported twice). Shown with the DAG paused, so the dry run stays queued."""
    airflow.cli("dags", "pause", DAG_ID)
    try:
        logical_date = _utc(DAYS[0], 5).isoformat()
        dry = trigger(airflow, logical_date=logical_date, conf={"dry_run": True})
        request = urllib.request.Request(
            f"{airflow.base_url}/api/v2/dags/{DAG_ID}/dagRuns",
            data=json.dumps({"logical_date": logical_date}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 409
        assert airflow.runs()[dry]["state"] == "queued"
    finally:
        airflow.cli("dags", "unpause", DAG_ID)
    assert wait_run(airflow, dry) == "success", airflow.explain_runs([dry])
    assert rest_run(airflow, dry)["logical_date"] is None
    # Once it has started, the same logical date is free for the real run.
    real = trigger(airflow, logical_date=logical_date)
    assert wait_run(airflow, real) == "success", airflow.explain_runs([real])
    assert rest_run(airflow, real)["note"] == f"Exports {DAYS[0]} (UTC)"
