"""System test: alerts on a RUNNING Airflow 3 (api-server, scheduler, dag-processor, triggerer), received
by a real SMTP server on loopback (aiosmtpd) through the smtp provider's SmtpNotifier.

* one destination of three fails (a bucket that does not exist): one failure e-mail (exact subject, the
  cause line the map index logged, try number, the UI link of that map index's log) and one summary
  when the run ends; fixed and cleared: one "recovered" e-mail, and no second summary (nothing failed);
* SMTP down: the export's outcome is unchanged and the failed map index logs one warning line;
* a failure while writing a table names the table;
* a run that fails before any destination (a bad date range) still ends with a summary;
* a Deadline Alert with a short interval fires for a run held back (DAG paused) and names every missing
  destination; it does not fire for a run that delivered in time (Airflow deletes its deadline);
* under `airflow dags test` (no running Airflow) a failing destination's e-mail names the same cause
  (Airflow 3.1's in-process runner gives the failure callback no exception: compat.exception_for_callbacks);
* no secret (the store's key and secret, the SMTP password) appears in any message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_cluster import JWT_SECRET, ROOT, Airflow, free_port, running_airflow
from conftest import EXPORTER, MISSING_BUCKET, SmtpSink, aws_connection, list_keys, run_dag, source_connection

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
TASK = "destination.export_tables"
IOS, ANDROID = "com.alerts.ios", "com.alerts.android"
DAY = dt.date(2026, 3, 7)
LABEL = f"{DAY}..{DAY}"  # a manual range run's window label
BUCKET = "adapty-events"
RANGE = {"date_from": str(DAY), "date_to": str(DAY)}
# Long enough that a logical date a deadline back names a day that is over (a manual run's logical date
# names the day it exports, and a day not over is refused), short enough to fire during the test.
DEADLINE = dt.timedelta(days=1, hours=12)

ALPHA = {"name": "alpha", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "alerts/alpha", "app_id": IOS}
BETA = {"name": "beta", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "alerts/beta", "app_id": ANDROID}
BAD = {"name": "bad", "conn_id": "exports_s3", "bucket": MISSING_BUCKET, "folder": "alerts/bad", "app_id": IOS}
FIXED = {**BAD, "bucket": BUCKET}
BAD_CAUSE = (
    f"destination 'bad' (connection 'exports_s3', bucket '{MISSING_BUCKET}'): "
    "check failed: NoSuchBucket: The specified bucket does not exist"
)
ALERTS = {
    "kwargs": {"smtp_conn_id": "smtp_alerts", "to": ["data-team@example.com"]},
    "destinations": {"bad": {"extra_recipients": ["bad-owner@example.com"]}},
}


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, admin, sink) -> Iterator[Airflow]:
    source_url = pg_database_factory(apps=[IOS, ANDROID], start=DAY, days=1, rows_per_day=30, seed=7)
    nothing_listens = free_port()
    # a pandas step that breaks the table's shape: the export of `events` fails while writing that table
    modules = tmp_path_factory.mktemp("alert-test-modules")
    transform = "def drop_a_column(frame):\n    return frame.drop(columns=['idfa'])\n"
    (modules / "alert_test_transforms.py").write_text(transform)
    with running_airflow(
        tmp_path_factory.mktemp("airflow-alerts"),
        pg_database_factory(),
        expect_dags=[DAG_ID],
        extra_components=[("triggerer", ["triggerer", "--skip-serve-logs"])],
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the runs this test triggers
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
        AIRFLOW_CONN_SMTP_ALERTS=sink.connection(),
        AIRFLOW_CONN_SMTP_DOWN=json.dumps({**json.loads(sink.connection()), "port": nothing_listens}),
        SUBSCRIPTION_EXPORTS_DELIVERY_DEADLINE="1d12h",  # after the run's logical date (DEADLINE)
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT), str(modules)]),
    ) as af:
        af.cli("dags", "unpause", DAG_ID)
        yield af


def set_variable(airflow: Airflow, *dests: dict[str, Any], alerts: dict[str, Any] = ALERTS) -> None:
    value = {"source_conn_id": "subscription_source", "destinations": list(dests), "alerts": alerts}
    airflow.cli("variables", "set", "s3_export_destinations", json.dumps(value))


def trigger(airflow: Airflow, run_id: str, *args: str) -> None:
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, *args)


def wait_run(airflow: Airflow, run_id: str) -> str:
    return airflow.wait_runs_terminal(run_id, lambda r: r["run_id"] == run_id, 1)[run_id]


def tis(airflow: Airflow, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's export map indexes as the UI lists them (REST API), by destination name (the label is
    'name (#index)')."""
    listed = airflow.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    by_name = {}
    for ti in listed:
        if ti["task_id"] == TASK:
            name, suffix = ti["rendered_map_index"].rsplit(" (#", 1)
            assert suffix == f"{ti['map_index']})", ti
            by_name[name] = ti
    return by_name


def log_events(airflow: Airflow, run_id: str, map_index: int, try_number: int = 1) -> list[dict[str, Any]]:
    path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK}/logs/{try_number}?map_index={map_index}"
    content = airflow.api("GET", path + "&full_content=true")["content"]
    return [line for line in content if isinstance(line, dict) and "event" in line]


def wait_messages(airflow: Airflow, sink: SmtpSink, what: str, done: Any) -> list[Any]:
    airflow.wait(what, lambda: done(sink.received()), timeout=600, every=2)
    return sink.received()


def lines(message: Any) -> list[str]:
    return SmtpSink.text(message).splitlines()


def for_run(messages: list[Any], run_id: str) -> list[Any]:
    return [m for m in messages if f"Run: {run_id}" in SmtpSink.text(m)]


def dag_callbacks_run(airflow: Airflow, kind: str) -> int:
    """How many DAG-level callbacks of `kind` ('success'/'failure') the dag-processor has executed."""
    files = [p for p in (airflow.home / "logs").rglob("*") if p.is_file() and "dag_processor" in str(p)]
    return sum(p.read_text(errors="replace").count(f"Executing on_{kind} dag callback") for p in files)


# -- tests (in file order; each builds on the previous state) -------------------------------------------


def test_failure_then_summary_then_recovery_after_fix_and_clear(airflow, sink, admin):
    set_variable(airflow, ALPHA, BETA, BAD)
    trigger(airflow, "alerts_fail", "--conf", json.dumps(RANGE))
    assert wait_run(airflow, "alerts_fail") == "failed"
    instances = tis(airflow, "alerts_fail")
    assert {name: ti["state"] for name, ti in instances.items()} == {
        "alpha": "success",
        "beta": "success",
        "bad": "failed",
    }, airflow.explain_runs(["alerts_fail"])
    bad_index = instances["bad"]["map_index"]
    # the cause the map index logged as its ERROR line is the cause the e-mail gives
    logged = [e["event"] for e in log_events(airflow, "alerts_fail", bad_index) if e.get("level") == "error"]
    assert logged[0] == BAD_CAUSE, logged

    failure_subject = f"[{DAG_ID}] FAILED: bad for {LABEL}"
    summary_subject = f"[{DAG_ID}] {LABEL}: 2 of 3 delivered, 1 failed"
    received = wait_messages(
        airflow,
        sink,
        "the failure e-mail and the summary",
        lambda ms: {failure_subject, summary_subject} <= {m["Subject"] for m in for_run(ms, "alerts_fail")},
    )
    mine = for_run(received, "alerts_fail")
    assert sorted(m["Subject"] for m in mine) == sorted([failure_subject, summary_subject])
    failure = next(m for m in mine if m["Subject"] == failure_subject)
    assert failure["From"] == "exports@example.com"
    assert failure["To"] == "data-team@example.com, bad-owner@example.com"  # the per-destination override
    log_url = f"{airflow.base_url}/dags/{DAG_ID}/runs/alerts_fail/tasks/{TASK}/mapped/{bad_index}?try_number=1"
    assert lines(failure)[:8] == [
        f"DAG: {DAG_ID}",
        "Run: alerts_fail",
        f"Day: {LABEL}",
        "Destination: bad",
        "Table: (none: failed before exporting a table)",
        f"Cause: {BAD_CAUSE}",
        "Try: 1 (no retries left)",
        f"Log: {log_url}",
    ]
    summary = next(m for m in mine if m["Subject"] == summary_subject)
    assert summary["To"] == "data-team@example.com"  # a run's summary goes to the section's recipients
    assert lines(summary) == [
        f"DAG: {DAG_ID}",
        "Run: alerts_fail",
        f"Day: {LABEL}",
        "Delivered: 2 of 3 destination(s)",
        "Failed:",
        f"- bad: {BAD_CAUSE}",
    ]

    # fix the bucket, clear the failed map index: it delivers, and one "recovered" e-mail says so
    set_variable(airflow, ALPHA, BETA, FIXED)
    successes_before = dag_callbacks_run(airflow, "success")
    airflow.api(
        "POST",
        f"dags/{DAG_ID}/clearTaskInstances",
        {"dry_run": False, "dag_run_id": "alerts_fail", "task_ids": [[TASK, bad_index]], "only_failed": True},
    )
    airflow.wait("the cleared run to end", lambda: airflow.runs()["alerts_fail"]["state"] == "success", timeout=600)
    recovered_subject = f"[{DAG_ID}] RECOVERED: bad for {LABEL}"
    received = wait_messages(
        airflow,
        sink,
        "the recovery e-mail",
        lambda ms: recovered_subject in {m["Subject"] for m in ms},
    )
    recovered = next(m for m in received if m["Subject"] == recovered_subject)
    assert recovered["To"] == "data-team@example.com, bad-owner@example.com"
    assert lines(recovered) == [
        f"DAG: {DAG_ID}",
        "Run: alerts_fail",
        f"Day: {LABEL}",
        "Destination: bad",
        "Delivered on try 2; it had failed on try 1 with:",
        f"Cause: {BAD_CAUSE}",
        f"Log: {log_url.replace('try_number=1', 'try_number=2')}",
    ]
    assert list_keys(admin, BUCKET, "alerts/bad/"), "the fixed destination delivered"
    # the run ended again, successfully: its summary callback ran and sent nothing (nothing failed)
    airflow.wait(
        "the dag-processor to run the run's success callback",
        lambda: dag_callbacks_run(airflow, "success") > successes_before,
        timeout=600,
    )
    time.sleep(5)  # a message being sent while the callback line was written would still arrive now
    assert sorted(m["Subject"] for m in for_run(sink.received(), "alerts_fail")) == sorted(
        [failure_subject, summary_subject, recovered_subject]
    )


def test_smtp_down_does_not_change_the_export(airflow, sink):
    before = len(sink.received())
    set_variable(airflow, ALPHA, BAD, alerts={**ALERTS, "kwargs": {**ALERTS["kwargs"], "smtp_conn_id": "smtp_down"}})
    trigger(airflow, "alerts_smtp_down", "--conf", json.dumps(RANGE))
    assert wait_run(airflow, "alerts_smtp_down") == "failed"
    instances = tis(airflow, "alerts_smtp_down")
    assert {name: (ti["state"], ti["try_number"]) for name, ti in instances.items()} == {
        "alpha": ("success", 1),
        "bad": ("failed", 1),
    }, airflow.explain_runs(["alerts_smtp_down"])
    events = log_events(airflow, "alerts_smtp_down", instances["bad"]["map_index"])
    warnings = [e["event"] for e in events if e.get("level") == "warning" and "alert not sent" in e["event"]]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("alert not sent (failure of bad): SmtpNotifier: ConnectionRefusedError"), warnings
    assert next(e["event"] for e in events if e.get("level") == "error") == BAD_CAUSE
    assert len(sink.received()) == before


def test_a_failure_while_exporting_a_table_names_the_table(airflow, sink):
    """Also: the alerts section still has an override for 'bad', which is no longer configured; at run
    time that is ignored (config check reports it), the other destinations' alerts go out."""
    shape = {**ALPHA, "name": "shape", "folder": "alerts/shape", "tables": ["events"]}
    set_variable(airflow, ALPHA, {**shape, "transform": "alert_test_transforms:drop_a_column"})
    trigger(airflow, "alerts_table", "--conf", json.dumps(RANGE))
    assert wait_run(airflow, "alerts_table") == "failed"
    instances = tis(airflow, "alerts_table")
    assert {name: ti["state"] for name, ti in instances.items()} == {"alpha": "success", "shape": "failed"}
    index = instances["shape"]["map_index"]
    errors = [e["event"] for e in log_events(airflow, "alerts_table", index) if e.get("level") == "error"]
    # The step's one line (fail fast: a retry cannot change what the step returns).
    cause = next(e for e in errors if "must return the same columns in the same order" in e)
    assert cause.startswith("transform 'alert_test_transforms:drop_a_column' of destination 'shape' "), cause
    subject = f"[{DAG_ID}] FAILED: shape for {LABEL}"
    received = wait_messages(
        airflow, sink, "the failure e-mail", lambda ms: subject in {m["Subject"] for m in for_run(ms, "alerts_table")}
    )
    failure = next(m for m in for_run(received, "alerts_table") if m["Subject"] == subject)
    assert lines(failure)[3:6] == ["Destination: shape", "Table: events", f"Cause: {cause}"]


def test_a_run_that_fails_before_its_destinations_still_ends_with_a_summary(airflow, sink):
    set_variable(airflow, ALPHA, BETA, FIXED)
    inverted = {"date_from": str(DAY + dt.timedelta(days=1)), "date_to": str(DAY)}
    trigger(airflow, "alerts_bad_range", "--conf", json.dumps(inverted))
    assert wait_run(airflow, "alerts_bad_range") == "failed"
    subject = f"[{DAG_ID}] (window not resolved): no destination exported"
    received = wait_messages(
        airflow, sink, "the summary", lambda ms: subject in {m["Subject"] for m in for_run(ms, "alerts_bad_range")}
    )
    [summary] = for_run(received, "alerts_bad_range")
    assert lines(summary) == [
        f"DAG: {DAG_ID}",
        "Run: alerts_bad_range",
        "Day: (window not resolved)",
        "No destination was exported: the run ended before export_tables: resolve_window failed, "
        "load_destinations not started (upstream failed)",
        "The cause is the ERROR line of the resolve_window log.",
    ]


def deadline_rows(airflow: Airflow, run_id: str) -> list[dict[str, Any]]:
    return airflow.query(
        "SELECT d.deadline_time, d.missed FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
        "WHERE r.dag_id = %s AND r.run_id = %s",
        DAG_ID,
        run_id,
    )


def test_deadline_fires_for_a_held_back_run_not_for_one_delivered_in_time(airflow, sink):
    set_variable(airflow, ALPHA, BETA, FIXED)
    # delivered in time: Airflow created its deadline with the run and deletes it when the run ends first
    # (deadline 20 minutes from now; the logical date names a complete day, which the run exports)
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0) - DEADLINE + dt.timedelta(minutes=20)
    trigger(airflow, "alerts_in_time", "--logical-date", logical.isoformat())
    created = deadline_rows(airflow, "alerts_in_time")
    assert [row["deadline_time"] for row in created] == [logical + DEADLINE], created
    assert wait_run(airflow, "alerts_in_time") == "success", airflow.explain_runs(["alerts_in_time"])
    airflow.wait("Airflow to drop the met deadline", lambda: not deadline_rows(airflow, "alerts_in_time"))

    # held back: the DAG is paused, so the run stays queued past its deadline (a minute from now: time
    # enough for the trigger to create the run and its deadline first)
    airflow.cli("dags", "pause", DAG_ID)
    held_logical = dt.datetime.now(dt.UTC).replace(microsecond=0) - DEADLINE + dt.timedelta(minutes=1)
    trigger(airflow, "alerts_held_back", "--logical-date", held_logical.isoformat())
    deadline = held_logical + DEADLINE
    received = wait_messages(
        airflow,
        sink,
        "the late-delivery e-mail",
        lambda ms: any("LATE" in m["Subject"] for m in for_run(ms, "alerts_held_back")),
    )
    late = [m for m in for_run(received, "alerts_held_back") if "LATE" in m["Subject"]]
    assert len(late) == 1
    body = lines(late[0])
    day = next(line.removeprefix("Day: ") for line in body if line.startswith("Day: "))
    assert dt.date.fromisoformat(day) == held_logical.date()  # the day the logical date names
    when = deadline.strftime("%Y-%m-%d %H:%M UTC")
    assert late[0]["Subject"] == f"[{DAG_ID}] LATE: 3 of 3 destination(s) not delivered for {day} by {when}"
    assert body == [
        f"DAG: {DAG_ID}",
        "Run: alerts_held_back (queued)",
        f"Day: {day}",
        f"Deadline: {when}",
        "Missing: 3 of 3 destination(s)",
        "- alpha: not started",
        "- beta: not started",
        "- bad: not started",
    ]
    assert [row["missed"] for row in deadline_rows(airflow, "alerts_held_back")] == [True]
    assert not [m for m in sink.received() if "LATE" in m["Subject"] and "alerts_in_time" in SmtpSink.text(m)]


def test_a_failure_under_airflow_dags_test_names_the_logged_cause(airflow_db, seaweedfs, pg_database_factory, sink):
    source_url = pg_database_factory(apps=[IOS, ANDROID], start=DAY, days=1, rows_per_day=30, seed=7)
    value = {"source_conn_id": "subscription_source", "destinations": [ALPHA, BAD], "alerts": ALERTS}
    before = len(sink.received())
    result = run_dag(
        DAG_ID,
        logical_date=DAY.isoformat(),
        connections={
            "subscription_source": source_connection(source_url),
            "exports_s3": aws_connection(seaweedfs),
            "smtp_alerts": sink.connection(),
        },
        variables={"s3_export_destinations": json.dumps(value)},
    )
    assert result.returncode != 0, "the run with a missing bucket succeeded"
    failed = [m for m in sink.received()[before:] if m["Subject"].startswith(f"[{DAG_ID}] FAILED: bad for ")]
    assert len(failed) == 1, (result.stdout[-3000:], [m["Subject"] for m in sink.received()[before:]])
    assert lines(failed[0])[3:6] == [
        "Destination: bad",
        "Table: (none: failed before exporting a table)",
        f"Cause: {BAD_CAUSE}",
    ]


def test_no_secret_in_any_message(sink):
    received = sink.received()
    assert received, "the tests above received messages"
    for message in received:
        raw = message.as_string()
        for secret in (EXPORTER.secret_key, EXPORTER.access_key, sink.password, JWT_SECRET):
            assert secret not in raw, (secret, message["Subject"])
    assert set(sink.logins) == {sink.login}  # the notifier authenticated with the connection's login
