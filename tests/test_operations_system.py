"""System test: day-to-day operations on a RUNNING Airflow 3 (api-server, scheduler, dag-processor).

What a data engineer does in the UI, driven through the same REST API the UI uses (task instances,
their labels and logs, clearing one map index) and the CLI (`airflow dags trigger`, `airflow
variables set`):

* one destination's mistake fails only its own map index, with its one-line cause as an ERROR line;
* fix the Variable, clear that map index: it runs with the fixed settings, the others are not
  re-exported, and a destination removed meanwhile fails with a one-line cause;
* every map index is labelled with its destination's name, failed ones included;
* readable export logs: one summary line per table, a compact return value, no duplicate lines;
* two destinations that can write the same key fail the run before anything is written;
* a dry run writes nothing and logs each destination's keys and row counts.

The Variable lives in the metadata database (`airflow variables set`), not in the environment, so
the test can change it between runs as an operator does. The REST API answers without a login
(``simple_auth_manager_all_admins``), as in a local development install.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_cluster import Airflow, running_airflow
from conftest import MISSING_BUCKET, aws_connection, list_keys, source_connection

pytestmark = pytest.mark.system

DAG_ID = "s3_export"
TASK = "destination.export_tables"
IOS, ANDROID = "com.ops.ios", "com.ops.android"
DAY = dt.date(2026, 3, 7)
SEED_ARGS = {"apps": [IOS, ANDROID], "start": DAY, "days": 1, "rows_per_day": 40, "seed": 5}
BUCKET = "adapty-events"
ORIGIN = "Airflow Variable 's3_export_destinations'"
RANGE = {"date_from": str(DAY), "date_to": str(DAY)}
TABLES = ("events", "paywall_visits")

GOOD = {"name": "good", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "ops/good", "app_id": IOS}
TYPO = {
    "name": "typo",
    "conn_id": "exports_s3",
    "bucket": BUCKET,
    "folder": "ops/typo",
    "app_id": ANDROID,
    "event_types": ["trials", "trial_strated"],
}
GONE = {"name": "gone", "conn_id": "exports_s3", "bucket": MISSING_BUCKET, "folder": "ops/gone", "app_id": IOS}
TYPO_CAUSE = (
    f"{ORIGIN}: destination 'typo': field 'event_types': unknown event type or group 'trial_strated' "
    "(groups: ['issues', 'subscriptions', 'trials']; or single event types, or 'all')"
)


def range_key(folder: str, table: str) -> str:
    return f"{folder}/{table}/manual/{DAY}_{DAY}/{table}_{DAY}_{DAY}.csv"


def objects(client: Any, prefix: str = "ops/") -> dict[str, bytes]:
    return {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in list_keys(client, BUCKET, prefix)}


# -- fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, admin) -> Iterator[Airflow]:
    source_url = pg_database_factory(**SEED_ARGS)
    with running_airflow(
        tmp_path_factory.mktemp("airflow-operations"),
        pg_database_factory(),
        expect_dags=[DAG_ID],
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the runs this test triggers
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
    ) as af:
        af.cli("dags", "unpause", DAG_ID)
        yield af


def set_destinations(airflow: Airflow, *dests: dict[str, Any]) -> None:
    value = json.dumps({"source_conn_id": "subscription_source", "destinations": list(dests)})
    airflow.cli("variables", "set", "s3_export_destinations", value)


def api(airflow: Airflow, path: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
    url = f"{airflow.env['AIRFLOW__API__BASE_URL']}/api/v2/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Accept", "application/json")
    for name, value in airflow.auth_headers().items():
        request.add_header(name, value)
    if data:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.loads(resp.read())


def task_instances(airflow: Airflow, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """The run's task instances as the UI lists them (REST API), by (task_id, map_index)."""
    listed = api(airflow, f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
    return {(ti["task_id"], ti["map_index"]): ti for ti in listed}


def log_lines(airflow: Airflow, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> list[dict]:
    """The task log as the UI shows it (REST API): structured lines with `event` and `level`."""
    path = f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    content = api(airflow, path, map_index=map_index, full_content="true")["content"]
    return [line for line in content if isinstance(line, dict) and "event" in line]


def ours(lines: list[dict]) -> list[str]:
    """The lines our package logged (not Airflow's)."""
    return [line["event"] for line in lines if str(line.get("logger", "")).startswith("subscription_exports")]


def trigger(airflow: Airflow, run_id: str, **conf: Any) -> str:
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps({**RANGE, **conf}))
    states = airflow.wait_runs_terminal(run_id, lambda r: r["run_id"] == run_id, 1)
    return states[run_id]


def destination_of(ti: dict[str, Any]) -> str | None:
    """The destination a map index is labelled with: its label is `<name> (#<map index>)`, so the number
    Airflow shows where it shows no label (Clear dialog, CLI) is findable from the name."""
    label = ti["rendered_map_index"]
    if ti["map_index"] < 0:
        return label
    name, sep, index = (label or "").rpartition(" (#")
    assert sep and index == f"{ti['map_index']})", f"map index {ti['map_index']} labelled {label!r}"
    return name


def map_index_of(tis: dict[tuple[str, int], dict[str, Any]], name: str) -> int:
    return next(i for (task, i), ti in tis.items() if task == TASK and destination_of(ti) == name)


# -- tests (in file order; each builds on the previous state) ------------------------------------------


def test_a_bad_destination_fails_alone_and_every_map_index_is_labelled(airflow, admin):
    set_destinations(airflow, GOOD, TYPO, GONE)
    state = trigger(airflow, "ops_isolation")
    assert state == "failed"

    tis = task_instances(airflow, "ops_isolation")
    states = {(task, destination_of(ti)): ti["state"] for (task, _), ti in tis.items()}
    assert states == {
        ("resolve_window", None): "success",
        ("load_destinations", None): "success",
        (TASK, "good"): "success",
        (TASK, "typo"): "failed",
        (TASK, "gone"): "failed",
    }, airflow.explain_runs(["ops_isolation"])

    # the valid destination exported both tables; the others wrote nothing
    stored = objects(admin)
    expected = [range_key("ops/good", t) + suffix for t in TABLES for suffix in ("", ".manifest.json")]
    assert sorted(stored) == sorted(expected)

    # each failure's one-line cause is an ERROR line of its own in its map index's log
    typo_log = log_lines(airflow, "ops_isolation", TASK, map_index_of(tis, "typo"))
    assert next(line["event"] for line in typo_log if line.get("level") == "error") == TYPO_CAUSE
    gone_log = log_lines(airflow, "ops_isolation", TASK, map_index_of(tis, "gone"))
    gone_cause = f"destination 'gone' (connection 'exports_s3', bucket '{MISSING_BUCKET}'): check failed: NoSuchBucket"
    assert any(line.get("level") == "error" and line["event"].startswith(gone_cause) for line in gone_log), gone_log
    # load_destinations names the bad entry as a warning and carries on
    load_log = ours(log_lines(airflow, "ops_isolation", "load_destinations"))
    assert f"{TYPO_CAUSE}; only this destination's export_tables fails, the others export" in load_log
    assert f"3 destination(s) from {ORIGIN}: good, typo, gone" in load_log


def test_export_log_is_readable(airflow):
    tis = task_instances(airflow, "ops_isolation")
    lines = log_lines(airflow, "ops_isolation", TASK, map_index_of(tis, "good"))
    mine = ours(lines)
    assert len(mine) == len(set(mine)), f"duplicate lines: {mine}"
    for table in TABLES:
        summaries = [m for m in mine if m.startswith(f"exported destination=good table={table} ")]
        assert len(summaries) == 1, mine
        assert f"window={DAY}..{DAY} " in summaries[0] and f"/{range_key('ops/good', table)} " in summaries[0]
    done = [line["event"] for line in lines if line["event"].startswith("Done. Returned value was:")]
    assert len(done) == 1 and len(done[0]) < 200, done
    assert "'destination': 'good'" in done[0] and "'rows': {'events': " in done[0], done


def test_fix_the_variable_then_clear_the_failed_map_indexes(airflow, admin):
    before = objects(admin)
    # typo fixed; "gone" removed from the configuration meanwhile
    set_destinations(airflow, GOOD, {**TYPO, "event_types": ["trials", "trial_started"]})
    tis = task_instances(airflow, "ops_isolation")
    typo, gone = map_index_of(tis, "typo"), map_index_of(tis, "gone")
    cleared = api(
        airflow,
        f"dags/{DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": "ops_isolation",
            "task_ids": [[TASK, typo], [TASK, gone]],
            "only_failed": True,
        },
    )
    assert sorted(ti["map_index"] for ti in cleared["task_instances"]) == sorted([typo, gone])

    def retried() -> bool:
        now = task_instances(airflow, "ops_isolation")
        return all(
            now[(TASK, i)]["try_number"] == 2 and now[(TASK, i)]["state"] in {"success", "failed"} for i in (typo, gone)
        )

    airflow.wait("the cleared map indexes to finish", retried)
    tis = task_instances(airflow, "ops_isolation")
    assert tis[(TASK, typo)]["state"] == "success", airflow.explain_runs(["ops_isolation"])
    assert tis[(TASK, gone)]["state"] == "failed"
    assert tis[(TASK, map_index_of(tis, "good"))]["try_number"] == 1, "the good destination was not run again"
    assert {destination_of(ti) for (task, _), ti in tis.items() if task == TASK} == {"good", "typo", "gone"}

    after = objects(admin)
    # the good destination's files and manifests are untouched (same bytes, same exported_at)
    assert {k: v for k, v in after.items() if k.startswith("ops/good/")} == before
    typo_keys = [range_key("ops/typo", t) + suffix for t in TABLES for suffix in ("", ".manifest.json")]
    assert sorted(k for k in after if k.startswith("ops/typo/")) == sorted(typo_keys)
    assert json.loads(after[range_key("ops/typo", "events") + ".manifest.json"])["app_id"] == ANDROID

    gone_log = log_lines(airflow, "ops_isolation", TASK, gone, try_number=2)
    cause = (
        f"{ORIGIN}: destination 'gone' is no longer configured (configured: good, typo); it was when the run started"
    )
    assert cause in [line["event"] for line in gone_log if line.get("level") == "error"], gone_log


def test_two_destinations_writing_the_same_keys_fail_the_run_before_anything_is_written(airflow, admin):
    before = objects(admin, "")
    # Same bucket and folder, different apps: the default key template has no {app_id}.
    other_app = {**GOOD, "name": "good-android", "app_id": ANDROID}
    set_destinations(airflow, GOOD, other_app)
    assert trigger(airflow, "ops_collision") == "failed"
    tis = task_instances(airflow, "ops_collision")
    assert {task: ti["state"] for (task, _), ti in tis.items()} == {
        "resolve_window": "success",
        "load_destinations": "failed",
        TASK: "upstream_failed",  # never expanded: no map index exists to mislabel
    }
    cause = (
        f"{ORIGIN}: destinations 'good' and 'good-android' can write the same key "
        f"s3://{BUCKET}/ops/good/events/dt={{date}}/events_{{date}}.csv, so one would overwrite the other's files; "
        "give them different folders, or put {app_id} or {destination} in both key templates"
    )
    errors = [
        line["event"]
        for line in log_lines(airflow, "ops_collision", "load_destinations")
        if line.get("level") == "error"
    ]
    assert errors[0] == cause, errors
    assert objects(admin, "") == before


def test_dry_run_writes_nothing_and_logs_keys_and_row_counts(airflow, admin):
    set_destinations(airflow, GOOD, {**TYPO, "event_types": ["trials", "trial_started"]})
    before = objects(admin, "")
    assert trigger(airflow, "ops_dry_run", dry_run=True) == "success", airflow.explain_runs(["ops_dry_run"])
    assert objects(admin, "") == before, "a dry run writes no object"
    events = airflow.query("SELECT count(*) AS n FROM asset_event WHERE source_run_id = %s", "ops_dry_run")
    assert events[0]["n"] == 0, "a dry run emits no Asset event"

    tis = task_instances(airflow, "ops_dry_run")
    assert sorted(destination_of(ti) for (task, _), ti in tis.items() if task == TASK) == ["good", "typo"]
    for name, folder in (("good", "ops/good"), ("typo", "ops/typo")):
        mine = ours(log_lines(airflow, "ops_dry_run", TASK, map_index_of(tis, name)))
        for table in TABLES:
            key = range_key(folder, table)
            # the same window was exported above: the dry run must name the same key, rows, bytes and sha256
            manifest = json.loads(before[key + ".manifest.json"])
            line = (
                f"dry run: destination={name} table={table} window={DAY}..{DAY} rows={manifest['rows']} "
                f"bytes={manifest['bytes']} sha256={manifest['sha256']} would write "
                f"s3://{BUCKET}/{key} and s3://{BUCKET}/{key}.manifest.json (nothing written)"
            )
            assert line in mine, mine
    assert "dry run: the destinations are checked and nothing is written" in ours(
        log_lines(airflow, "ops_dry_run", "load_destinations")
    )
