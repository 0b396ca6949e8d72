"""Lineage end to end: the OpenLineage provider, configured with a file transport, reads what the
exports report to Airflow's hook lineage collector; the COMPLETE event of each destination's
`export_tables` lists exactly the source tables read and the data objects written.

Dataset naming (OpenLineage naming spec): PostgreSQL `postgres://host:port` + `database.schema.table`,
S3 `s3://bucket` + key; SQLite (not in the spec) `file` + `<database file>/<table>`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import assert_ok, aws_connection, data_objects, run_dag, snapshot_and_empty, source_connection

from devtools.synthetic import generate

pytestmark = pytest.mark.system

IOS, ANDROID = "com.acme.ios", "com.acme.android"
DAY = dt.date(2026, 3, 7)
SEED_ARGS = {"apps": [IOS, ANDROID], "start": DAY, "days": 1, "rows_per_day": 20, "seed": 5}
IOS_BOTH = {"name": "ios-both", "conn_id": "exports_s3", "bucket": "adapty-events", "folder": "ol/ios", "app_id": IOS}
ANDROID_VISITS = {
    "name": "android-visits", "conn_id": "exports_s3", "bucket": "exports", "folder": "ol/android",
    "app_id": ANDROID, "tables": ["paywall_visits"], "gzip": True,
}  # fmt: skip
# What each destination's SQL reads (include/sql/<dialect>/<table>.sql).
READS = {
    "ios-both": {"events", "paywall_visits", "profiles"},
    "android-visits": {"paywall_visits", "profiles"},
}
EXPORT_JOB = "s3_export.destination.export_tables"


def run_with_openlineage(seaweedfs, source_url: str, dest: dict, tmp_path: Path) -> tuple[dict[str, bytes], list]:
    """One `airflow dags test` run of `s3_export` for one destination, OpenLineage events to a file.

    One destination per run: `airflow dags test` runs every task in one process, and Airflow 3.3
    keeps one hook lineage collector per process, so a later task's events would also list what
    earlier tasks reported. Under a scheduler each task instance is its own process (see
    test_many_destinations_system.py, which checks every destination's events of one run).
    """
    events_file = tmp_path / "openlineage.jsonl"
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={"subscription_source": source_connection(source_url), "exports_s3": aws_connection(seaweedfs)},
        variables={
            "s3_export_destinations": json.dumps({"source_conn_id": "subscription_source", "destinations": [dest]})
        },
        env=openlineage_file_transport(events_file),
    )
    assert_ok(result)
    objects = snapshot_and_empty(admin)
    assert events_file.exists(), f"no OpenLineage events were written:\n{result.stdout[-3000:]}"
    return objects, read_events(events_file)


def openlineage_file_transport(path: Path) -> dict[str, str]:
    """Environment that turns the OpenLineage provider on, writing its events to `path` (JSON lines)."""
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(path), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "subscription-exports-test",
    }


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export_completes(events: list[dict], job: str = EXPORT_JOB) -> dict[int, dict]:
    """The COMPLETE event of each map index of `export_tables`."""
    found: dict[int, dict] = {}
    for event in events:
        if event.get("eventType") == "COMPLETE" and event["job"]["name"] == job:
            map_index = event["run"]["facets"]["airflow"]["taskInstance"]["map_index"]
            assert map_index not in found, f"two COMPLETE events for map index {map_index}"
            found[map_index] = event
    return found


def datasets(items: list[dict]) -> set[tuple[str, str]]:
    names = [(d["namespace"], d["name"]) for d in items]
    assert len(names) == len(set(names)), f"a dataset is listed twice: {names}"
    return set(names)


def written(objects: dict[str, bytes], dest: dict) -> set[tuple[str, str]]:
    """(namespace, name) of the data objects `dest` received: `s3://bucket` and the key."""
    bucket, folder = dest["bucket"], dest["folder"]
    keys = [k.split("/", 1)[1] for k in data_objects(objects) if k.startswith(f"{bucket}/{folder}/")]
    assert len(keys) == len(dest.get("tables", ["events", "paywall_visits"])), keys
    return {(f"s3://{bucket}", key) for key in keys}


@pytest.fixture(scope="module")
def pg_source(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


def test_postgresql_export_reports_its_tables_and_objects(airflow_db, seaweedfs, pg_source, tmp_path):
    objects, events = run_with_openlineage(seaweedfs, pg_source, IOS_BOTH, tmp_path)
    database = pg_source.rsplit("/", 1)[1]
    (event,) = export_completes(events).values()
    assert datasets(event["inputs"]) == {
        ("postgres://127.0.0.1:5432", f"{database}.public.{table}") for table in READS["ios-both"]
    }
    assert datasets(event["outputs"]) == written(objects, IOS_BOTH)
    # The manifests and the write probe are not outputs; no other task reports lineage.
    assert all("manifest" not in name and "write-check" not in name for _, name in datasets(event["outputs"]))
    others = [e for e in events if e["job"]["name"] != EXPORT_JOB and (e.get("inputs") or e.get("outputs"))]
    assert not others, others


def test_sqlite_export_reports_its_tables_and_objects(airflow_db, seaweedfs, tmp_path):
    path = tmp_path / "source.db"
    generate(f"sqlite:///{path}", recreate=True, **SEED_ARGS)
    objects, events = run_with_openlineage(seaweedfs, str(path), ANDROID_VISITS, tmp_path)
    (event,) = export_completes(events).values()
    assert datasets(event["inputs"]) == {("file", f"{path.resolve()}/{table}") for table in READS["android-visits"]}
    assert datasets(event["outputs"]) == written(objects, ANDROID_VISITS)
