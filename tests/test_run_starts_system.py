"""System test: every way of starting an export run, on a RUNNING Airflow 3 (api-server, scheduler,
dag-processor; tests/airflow_cluster.py), read back through the REST API (/api/v2) and the bucket.

One Airflow serves the whole module; all runs are started up front and run side by side:

* the schedule: with ``use_job_schedule`` on and ``catchup=False``, unpausing the DAG makes the
  scheduler create the run of the latest due day D at once (its 04:00 run time has passed);
* ``airflow backfill create`` of D-4..D-3, and one with ``--dag-run-conf`` dates (refused);
* ``airflow dags trigger`` without and with ``--logical-date``;
* ``POST /api/v2/dags/{dag_id}/dagRuns`` (what the UI's Trigger button sends) without and with
  ``logical_date``, and with a ``date_from``/``date_to`` range;
* two requests for a day that is not over (refused at once, nothing written).

The seeded source covers D-4..D, relative to the clock, so each run exports rows. Retries are the
DAGs' default (3) here: a refusal must fail at once by itself, on its first try.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reference as ref
from airflow_cluster import Airflow, procs_with_home, running_airflow
from conftest import aws_connection, list_keys, source_connection

from subscription_exports.integrations import S3_EXPORT
from subscription_exports.windows import latest_complete_day, latest_due_day

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
IOS = "com.acme.ios"
BUCKET, FOLDER = "adapty-events", "run-starts"
DESTINATIONS = [{"name": "ios", "conn_id": "exports_s3", "bucket": BUCKET, "folder": FOLDER, "app_id": IOS}]
TABLES = ("events", "paywall_visits")
ALL_TYPES = set(S3_EXPORT.all_event_types)
MANIFEST = ".manifest.json"

NOW = dt.datetime.now(dt.UTC)
D = latest_due_day(NOW)  # the day the scheduled run exports
DAYS = [D - dt.timedelta(days=n) for n in range(4, -1, -1)]  # D-4 .. D, seeded
REFUSED_BACKFILL_DAY = DAYS[0] - dt.timedelta(days=1)  # a day no other run of the module uses
SEED_ARGS = {"apps": [IOS], "start": DAYS[0], "days": len(DAYS), "rows_per_day": 40, "seed": 12}


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def daily_key(table: str, day: dt.date) -> str:
    return f"{FOLDER}/{table}/dt={day}/{table}_{day}.csv"


def range_key(table: str, first: dt.date, last: dt.date) -> str:
    return f"{FOLDER}/{table}/manual/{first}_{last}/{table}_{first}_{last}.csv"


def expected(src: dict, table: str, first: dt.date, last: dt.date) -> bytes:
    window = {"app_id": IOS, "start": _utc(first), "end": _utc(last + dt.timedelta(days=1))}
    if table == "events":
        return ref.expected_events(src, event_types=ALL_TYPES, **window)
    return ref.expected_paywall_visits(src, **window)


def bucket_objects(client: Any) -> dict[str, bytes]:
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in list_keys(client, BUCKET, FOLDER)}


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
        tmp_path_factory.mktemp("airflow-run-starts"),
        pg_database_factory(),
        expect_dags=[DAG_ID],
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",  # /api/v2 without a login, as an admin
        AIRFLOW__CORE__PARALLELISM="6",
        SUBSCRIPTION_EXPORTS_RETRIES="3",  # the DAGs' default: refusals must not depend on retries=0
        AIRFLOW_VAR_S3_EXPORT_DESTINATIONS=json.dumps(
            {"source_conn_id": "subscription_source", "destinations": DESTINATIONS}
        ),
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    ) as af:
        yield af


def trigger_rest(airflow: Airflow, **body: Any) -> str:
    """What the UI's Trigger button does: POST /api/v2/dags/{dag_id}/dagRuns."""
    body.setdefault("logical_date", None)
    return airflow.api("POST", f"dags/{DAG_ID}/dagRuns", body)["dag_run_id"]


def trigger_cli(airflow: Airflow, *args: str) -> str:
    out = airflow.cli("dags", "trigger", DAG_ID, *args, "-o", "json").stdout
    for line in reversed(out.splitlines()):
        try:
            return json.loads(line)[0]["dag_run_id"]
        except (ValueError, LookupError, TypeError):
            continue
    pytest.fail(f"no run id in the output of `airflow dags trigger`:\n{out[-2000:]}", pytrace=False)


@pytest.fixture(scope="module")
def today() -> dt.date:
    """The UTC day when the runs are started. Not taken at import: a suite that collects before
    midnight UTC may start these runs after it (CI failed so once), and "today" is then a day later."""
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def started(airflow: Airflow, today: dt.date) -> dict[str, str]:
    """Start a run every way there is, wait for all to finish: {what: run_id}."""
    runs: dict[str, str] = {}
    begin = time.monotonic()
    # The refused backfill first (one backfill per DAG at a time): the good one follows when it is done.
    airflow.cli(
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", str(REFUSED_BACKFILL_DAY), "--to-date", str(REFUSED_BACKFILL_DAY),
        "--dag-run-conf", json.dumps({"date_from": str(DAYS[0]), "date_to": str(DAYS[1])}),
    )  # fmt: skip
    airflow.cli("dags", "unpause", DAG_ID)  # the scheduler now creates the run of day D
    runs["cli plain"] = trigger_cli(airflow)
    runs["cli logical date"] = trigger_cli(airflow, "--logical-date", _utc(DAYS[2]).isoformat())
    runs["rest plain"] = trigger_rest(airflow)
    runs["rest logical date"] = trigger_rest(airflow, logical_date=_utc(DAYS[3]).isoformat())
    runs["rest range"] = trigger_rest(
        airflow, conf={"date_from": str(DAYS[0]), "date_to": str(DAYS[2])}, note="ticket 42: resend to ACME"
    )
    runs["cli today"] = trigger_cli(airflow, "--conf", json.dumps({"date_from": str(DAYS[4]), "date_to": str(today)}))
    runs["rest today"] = trigger_rest(airflow, logical_date=_utc(today).isoformat())
    airflow.wait_backfills_completed()
    airflow.cli("backfill", "create", "--dag-id", DAG_ID, "--from-date", str(DAYS[0]), "--to-date", str(DAYS[1]))
    airflow.wait_runs_terminal("every run", lambda r: True, len(runs) + 4)
    print(f"all runs finished {time.monotonic() - begin:.0f} s after the first start")
    return runs


def api_runs(airflow: Airflow) -> dict[str, dict[str, Any]]:
    listed = airflow.api("GET", f"dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
    return {run["dag_run_id"]: run for run in listed}


def try_numbers(airflow: Airflow, run_id: str) -> dict[str, tuple[str, int]]:
    rows = airflow.query(
        "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
        DAG_ID,
        run_id,
    )
    return {r["task_id"]: (r["state"], r["try_number"]) for r in rows}


# -- tests -------------------------------------------------------------------------------------------


def test_scheduled_and_backfill_runs_are_named_by_the_day_they_export(airflow, started, admin, src):
    runs = api_runs(airflow)
    scheduled = {rid: r for rid, r in runs.items() if r["run_type"] == "scheduled"}
    assert list(scheduled) == [f"scheduled__{D}T00:00:00+00:00"], list(runs)
    backfills = {rid: r for rid, r in runs.items() if r["run_type"] == "backfill" and r["state"] == "success"}
    assert sorted(backfills) == [f"backfill__{DAYS[0]}T00:00:00+00:00", f"backfill__{DAYS[1]}T00:00:00+00:00"]
    airflow.assert_runs_succeeded({rid: r["state"] for rid, r in {**scheduled, **backfills}.items()})
    objects = bucket_objects(admin)
    for run_id, run in {**scheduled, **backfills}.items():
        day = dt.date.fromisoformat(run_id.split("__")[1][:10])
        assert run["logical_date"].startswith(str(day)) and run["data_interval_start"].startswith(str(day))
        for table in TABLES:
            assert objects[daily_key(table, day)] == expected(src, table, day, day), (run_id, table)
            assert json.loads(objects[daily_key(table, day) + MANIFEST])["window"]["date_from"] == str(day)


def test_every_manual_start_exports_the_documented_day(airflow, started, today, admin, src):
    runs = api_runs(airflow)
    objects = bucket_objects(admin)
    # Without dates and without a logical date: the latest due day at trigger time, D (the test assumes
    # no 04:00 UTC passes while it runs); with a logical date at 00:00 UTC: that day.
    days = {"cli plain": D, "rest plain": D, "cli logical date": DAYS[2], "rest logical date": DAYS[3]}
    for what, day in days.items():
        run = runs[started[what]]
        assert run["state"] == "success", f"{what}: {airflow.explain_runs([started[what]])}"
        assert run["note"] == f"Exports {day} (UTC)", (what, run["note"])
        log = airflow.task_log(started[what], "resolve_window")
        assert f"manual run exports daily window {day}" in log, (what, log[-2000:])
        for table in TABLES:
            assert objects[daily_key(table, day)] == expected(src, table, day, day), (what, table)
    # Airflow 3.3 infers the CLI run's data interval from the trigger time (today), not from --logical-date
    # (api/common/trigger_dag.py), the REST run's from its logical date: the day is the logical date's.
    assert runs[started["cli logical date"]]["data_interval_start"].startswith(str(today))
    assert runs[started["rest logical date"]]["data_interval_start"].startswith(str(DAYS[3]))
    # Run ids: the REST trigger's names its day (the timetable sees it); the CLI trigger's is Airflow's
    # manual__<trigger time> (the timetable is given the trigger time's day, not the logical date's).
    assert started["rest logical date"].startswith(f"manual__{DAYS[3]}_triggered_"), started
    assert started["cli logical date"].startswith(f"manual__{today}T"), started
    # The plain runs really had no logical date and no data interval (Airflow 3.3).
    for what in ("cli plain", "rest plain"):
        assert runs[started[what]]["logical_date"] is None and runs[started[what]]["data_interval_start"] is None


def test_manual_range_run_shows_its_range_in_its_note(airflow, started, admin, src):
    run = api_runs(airflow)[started["rest range"]]
    assert run["state"] == "success", airflow.explain_runs([started["rest range"]])
    first, last = DAYS[0], DAYS[2]
    # The note (run list and run page) names the range; the note typed at trigger time stays below it.
    assert run["note"] == f"Exports {first}..{last} (UTC, manual range)\n\nticket 42: resend to ACME"
    objects = bucket_objects(admin)
    for table in TABLES:
        key = range_key(table, first, last)
        assert objects[key] == expected(src, table, first, last)
        assert json.loads(objects[key + MANIFEST])["run_id"] == started["rest range"]


def test_a_day_that_is_not_over_is_refused_at_once_and_nothing_is_written(airflow, started, today, admin):
    runs = api_runs(airflow)
    latest = latest_complete_day(dt.datetime.now(dt.UTC))
    causes = {
        "cli today": f"param 'date_to': {today} is not over yet (now ",
        "rest today": f"day {today} is not over yet (now ",
    }
    for what, cause in causes.items():
        run_id = started[what]
        assert runs[run_id]["state"] == "failed", what
        assert try_numbers(airflow, run_id)["resolve_window"] == ("failed", 1), "failed on its first try"
        log = airflow.task_log(run_id, "resolve_window")
        assert cause in log and f"the latest complete day is {latest}" in log, log[-3000:]
        assert runs[run_id]["note"].startswith(f"Not exported: {cause}"), runs[run_id]["note"]
    objects = bucket_objects(admin)
    assert not [k for k in objects if str(today) in k], "nothing of today may be written"
    assert not [k for k in objects if f"manual/{DAYS[4]}_" in k]


def test_a_backfill_given_date_params_fails_at_once_saying_so(airflow, started, admin):
    runs = api_runs(airflow)
    (run_id,) = [rid for rid, r in runs.items() if r["run_type"] == "backfill" and r["state"] == "failed"]
    assert run_id == f"backfill__{REFUSED_BACKFILL_DAY}T00:00:00+00:00"
    assert runs[run_id]["conf"] == {"date_from": str(DAYS[0]), "date_to": str(DAYS[1])}
    assert try_numbers(airflow, run_id)["resolve_window"] == ("failed", 1)
    log = airflow.task_log(run_id, "resolve_window")
    assert "params 'date_from'/'date_to'" in log and "apply to single manual runs only" in log, log[-3000:]
    assert "but this is a backfill run" in log
    assert not [key for key in bucket_objects(admin) if str(REFUSED_BACKFILL_DAY) in key]


def test_the_date_params_say_they_are_for_manual_runs_only(airflow):
    params = airflow.api("GET", f"dags/{DAG_ID}/details")["params"]
    for name in ("date_from", "date_to"):
        assert "Single manual runs (Trigger) only" in params[name]["description"], params[name]


def test_the_harness_tracks_processes_that_hide_their_airflow_home(airflow, started):
    """tests/airflow_cluster.py follows the process tree: executor workers renamed by setproctitle are
    tracked although /proc/PID/environ no longer shows AIRFLOW_HOME."""
    tracked = airflow.tracker.track()
    roots = {proc.pid for proc in airflow.procs.values()}
    assert roots <= {p.pid for p in tracked}
    hidden = [p.pid for p in tracked if p.pid not in procs_with_home(airflow.home)]
    assert hidden, "expected processes whose environment was overwritten (setproctitle)"
    assert len(airflow.tracker.seen) > len(tracked) or len(tracked) > len(roots)
