"""Many destinations on a RUNNING Airflow (tests/airflow_cluster.py), with `[core] max_map_length` set low.

Airflow maps a task over at most ``[core] max_map_length`` items (1024 by default; the api-server
rejects a longer list). With the limit at 3: 3 destinations export, and 4 fail the run in
`load_destinations` with one line naming the setting and both counts, before anything is written.
`make bench-scale` runs 1,100 destinations with the limit raised (docs/scale-out.md).

The run also has the OpenLineage provider on (file transport): under a scheduler every task
instance is its own process, so each destination's `export_tables` COMPLETE event lists exactly its
own source tables and objects (under `airflow dags test` all tasks share one process and one hook
lineage collector; see test_lineage_system.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from airflow_cluster import Airflow, running_airflow
from conftest import aws_connection, list_keys, source_connection
from test_lineage_system import export_completes, openlineage_file_transport, read_events

pytestmark = pytest.mark.system

LIMIT = 3
APP = "com.acme.ios"
DAY = dt.date(2026, 3, 7)
SEED_ARGS = {"apps": [APP], "start": DAY, "days": 1, "rows_per_day": 5, "seed": 2}
BUCKET = "exports"
TABLES = ("events", "paywall_visits")
READS = {"events": {"events", "profiles"}, "paywall_visits": {"paywall_visits", "profiles"}}


def destinations(count: int) -> list[dict]:
    return [
        {"name": f"many-{i}", "conn_id": "exports_s3", "bucket": BUCKET, "folder": f"many/{i}", "app_id": APP}
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def source_url(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_database_factory, seaweedfs, source_url, admin) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("airflow-many")
    with running_airflow(
        home,
        pg_database_factory(),
        expect_dags=["s3_export"],
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW__CORE__MAX_MAP_LENGTH=str(LIMIT),
        AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
        AIRFLOW_CONN_EXPORTS_S3=aws_connection(seaweedfs),
        **openlineage_file_transport(home / "openlineage.jsonl"),
    ) as af:
        af.cli("dags", "unpause", "s3_export")
        yield af


def run(af: Airflow, run_id: str, count: int) -> str:
    variable = json.dumps({"source_conn_id": "subscription_source", "destinations": destinations(count)})
    af.cli("variables", "set", "s3_export_destinations", variable)
    conf = {"date_from": DAY.isoformat(), "date_to": DAY.isoformat()}
    af.cli("dags", "trigger", "s3_export", "--run-id", run_id, "--conf", json.dumps(conf))
    return af.wait_runs_terminal(run_id, lambda r: r["run_id"] == run_id, 1)[run_id]


def test_at_the_limit_every_destination_exports_and_reports_its_own_lineage(airflow, admin, source_url):
    state = run(airflow, "at-limit", LIMIT)
    assert state == "success", airflow.explain_runs(["at-limit"])
    states = airflow.task_states("at-limit")
    assert [states[f"destination.export_tables[{i}]"] for i in range(LIMIT)] == ["success"] * LIMIT
    keys = list_keys(admin, BUCKET, "many/")
    data = sorted(k for k in keys if not k.endswith(".manifest.json"))
    assert len(data) == LIMIT * len(TABLES), data

    events = read_events(airflow.home / "openlineage.jsonl")
    of_run = [e for e in events if e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") == "at-limit"]
    completes = export_completes(of_run)
    assert sorted(completes) == list(range(LIMIT))
    database = source_url.rsplit("/", 1)[1]
    for i, event in completes.items():
        inputs = {(d["namespace"], d["name"]) for d in event["inputs"]}
        outputs = {(d["namespace"], d["name"]) for d in event["outputs"]}
        assert inputs == {("postgres://127.0.0.1:5432", f"{database}.public.{t}") for t in set().union(*READS.values())}
        assert outputs == {(f"s3://{BUCKET}", k) for k in data if k.startswith(f"many/{i}/")}
        assert len(outputs) == len(TABLES)


def test_one_more_destination_fails_the_run_with_one_line_naming_the_setting(airflow, admin):
    before = set(list_keys(admin, BUCKET))
    state = run(airflow, "over-limit", LIMIT + 1)
    assert state == "failed"
    states = airflow.task_states("over-limit")
    assert states["load_destinations"] == "failed", states
    assert not any(k.startswith("destination.export_tables") and v == "success" for k, v in states.items()), states
    log = airflow.task_log("over-limit", "load_destinations")
    cause = (
        f"Airflow Variable 's3_export_destinations': {LIMIT + 1} destinations, but Airflow maps export_tables over "
        f"at most [core] max_map_length = {LIMIT} items; set AIRFLOW__CORE__MAX_MAP_LENGTH to at least {LIMIT + 1}"
    )
    assert cause in log, log[-3000:]
    assert set(list_keys(admin, BUCKET)) == before  # nothing written
