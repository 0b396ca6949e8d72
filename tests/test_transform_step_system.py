"""A destination's own step through the exporter, the store and a whole DAG run.

* The boundary property of tests/test_transform_step.py through ``exporter.export_table`` (real
  PostgreSQL, real SeaweedFS): the stored object is the header and Python's ``csv`` writer over
  exactly the rows the step returned, in whichever text dtype, filtered or empty; the manifest
  counts those rows; a step returning numbers is refused and leaves nothing in the bucket, also
  when it refuses after a multipart part was uploaded.
* The keyed pseudonymisation step (``export_transforms.privacy:hmac_device_ids``) in an
  ``airflow dags test`` run, its key in a connection's password: the bytes are the reference
  exporter's with the six device identifiers replaced by an HMAC computed here with ``hmac``;
  the key is in no log line, no object and no file the run wrote; a destination whose key
  connection is missing, and one whose step returns numbers, fail alone, at once (no retry,
  although 3 are configured), each with one ERROR line naming it once, their map index labelled
  with their name; the other destinations export.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import reference as ref
import transform_steps
from conftest import AIRFLOW_HOME, ROOT, assert_secret_nowhere, aws_connection, run_dag, source_connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_transform_step import CELLS, HINT, TEXT_DTYPES

from devtools.seaweedfs import list_multipart_uploads
from subscription_exports import exporter, s3, source
from subscription_exports.config import validate_destination
from subscription_exports.custom_transform import TransformError
from subscription_exports.integrations import S3_EXPORT
from subscription_exports.windows import day_window

pytestmark = pytest.mark.system

IOS = "com.acme.ios"
ANDROID = "com.acme.android"  # the synthetic data gives Android apps advertising_id, android_id, android_app_set_id
DAY = dt.date(2026, 3, 7)
START = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
BUCKET = "exports"
PLANNED = "transform_steps:planned"
KEYED = ("ip_address", "idfa", "idfv", "advertising_id", "android_id", "android_app_set_id")


def key_of(folder: str, table: str = "events") -> str:
    return f"{folder}/{table}/dt={DAY}/{table}_{DAY}.csv"


def read(client: Any, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def keys_under(client: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def python_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


# -- the boundary property through the exporter ----------------------------------------------------


@pytest.fixture(scope="module")
def small_day(pg_database_factory) -> str:
    return pg_database_factory(apps=[IOS], start=DAY, days=1, rows_per_day=60, seed=19, tables=["events"])


@pytest.fixture(scope="module")
def store(seaweedfs, small_day) -> Any:
    os.environ["AIRFLOW_CONN_STEP_SOURCE"] = source_connection(small_day)
    os.environ["AIRFLOW_CONN_STEP_S3"] = aws_connection(seaweedfs)
    client = seaweedfs.admin_client()
    yield client
    for key in keys_under(client, "step/"):
        client.delete_object(Bucket=BUCKET, Key=key)
    del os.environ["AIRFLOW_CONN_STEP_SOURCE"], os.environ["AIRFLOW_CONN_STEP_S3"]


def export(raw: dict[str, Any], **kw: Any) -> exporter.ExportResult:
    dest = validate_destination(raw, S3_EXPORT, origin="test")
    dialect, connection = source.connect("step_source")
    try:
        return exporter.export_table(
            integration=S3_EXPORT, spec=S3_EXPORT.table("events"), dest=dest, window=day_window(DAY),
            dialect=dialect, connection=connection, client=s3.s3_client(dest.conn_id), run_id="step-test", **kw,
        )  # fmt: skip
    finally:
        connection.close()


PLANNED_DEST = {"name": "planned", "conn_id": "step_s3", "bucket": BUCKET, "folder": "step/planned", "app_id": IOS,
                "tables": ["events"], "transform": PLANNED}  # fmt: skip

plans = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["as text dtypes", "filter rows", "empty frame", "numbers"]),
        "rewrite": st.lists(
            st.tuples(st.sampled_from(ref.EVENTS_COLUMNS), st.sampled_from(sorted(TEXT_DTYPES)).map(TEXT_DTYPES.get)),
            min_size=1,
            max_size=4,
            unique_by=lambda t: t[0],
        ),
        "cells": st.lists(CELLS, min_size=1, max_size=60),
        "keep": st.lists(st.booleans(), min_size=1, max_size=20),
    }
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(plan=plans)
def test_the_stored_file_is_python_csv_of_the_rows_the_step_returned(store, plan) -> None:
    transform_steps.PLAN.clear()
    transform_steps.PLAN.update(plan)
    key = key_of("step/planned")
    if plan["kind"] == "numbers":
        with pytest.raises(TransformError) as refused:
            export(PLANNED_DEST)
        assert str(refused.value) == (
            f"transform '{PLANNED}' of destination 'planned' returned column 'revenue_usd' as double[pyarrow], "
            f"not text: {HINT}"
        )
        assert keys_under(store, "step/planned/") == []
        assert list_multipart_uploads(store, BUCKET, "step/") == []
        return
    result = export(PLANNED_DEST)
    written = transform_steps.PLAN.get("written", [])
    assert transform_steps.PLAN["rows_seen"] > 10  # the step saw the day's rows
    expected = python_csv(ref.EVENTS_COLUMNS, written)
    body = read(store, key)
    assert body == expected
    manifest = json.loads(read(store, key + ".manifest.json"))
    assert (
        manifest["rows"]
        == result.rows
        == len(written)
        == len(list(csv.reader(io.StringIO(body.decode(), newline="")))) - 1
    )
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    for obj in keys_under(store, "step/planned/"):
        store.delete_object(Bucket=BUCKET, Key=obj)


@pytest.fixture(scope="module")
def larger_day(pg_database_factory) -> str:
    return pg_database_factory(apps=[IOS], start=DAY, days=1, rows_per_day=6000, seed=20, tables=["events"])


def test_a_step_refusing_after_a_part_was_uploaded_leaves_the_previous_day_intact(store, larger_day, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_STEP_SOURCE", source_connection(larger_day))
    key = key_of("step/late")
    store.put_object(Bucket=BUCKET, Key=key, Body=b"previous\r\n")
    store.put_object(Bucket=BUCKET, Key=key + ".manifest.json", Body=b'{"previous": true}')
    transform_steps.CALLS.clear()
    dest = {**PLANNED_DEST, "name": "late", "folder": "step/late", "transform": "transform_steps:padded_then_numbers"}
    with pytest.raises(TransformError, match="returned column 'revenue_usd' as double\\[pyarrow\\], not text"):
        export(dest)
    # the first chunk alone was more than one 5 MiB part: a multipart upload was under way
    assert len(transform_steps.CALLS) == 2 and transform_steps.CALLS[0] * transform_steps.PAD > 5 * 2**20
    assert read(store, key) == b"previous\r\n"
    assert read(store, key + ".manifest.json") == b'{"previous": true}'
    assert list_multipart_uploads(store, BUCKET, "step/") == []


# -- the keyed step and the refusal in a DAG run ---------------------------------------------------

HMAC_KEY = "pseudonym-" + secrets.token_hex(24)
DESTS = [
    {"name": "hmac", "folder": "step/hmac", "tables": ["events", "paywall_visits"],
     "transform": "export_transforms.privacy:hmac_device_ids", "transform_conn_id": "pseudonym_key"},
    {"name": "hmac-android", "folder": "step/hmac-android", "tables": ["events"], "app_id": ANDROID,
     "transform": "export_transforms.privacy:hmac_device_ids", "transform_conn_id": "pseudonym_key"},
    {"name": "hmac-no-key", "folder": "step/nokey", "tables": ["events"],
     "transform": "export_transforms.privacy:hmac_device_ids", "transform_conn_id": "no_such_key"},
    {"name": "numbers", "folder": "step/numbers", "tables": ["events"],
     "transform": "transform_steps:money_as_numbers"},
    {"name": "plain", "folder": "step/plain", "tables": ["events"]},
]  # fmt: skip
FAILING = {
    "hmac-no-key": "transform 'export_transforms.privacy:hmac_device_ids' of destination 'hmac-no-key': connection "
    "'no_such_key' (transform_conn_id) is not defined; add it (Admin -> Connections or a secrets backend)",
    "numbers": "transform 'transform_steps:money_as_numbers' of destination 'numbers' returned column 'revenue_usd' "
    f"as double[pyarrow], not text: {HINT}",
}


@pytest.fixture(scope="module")
def day_db(pg_database_factory) -> str:
    return pg_database_factory(
        apps=[IOS, ANDROID], start=DAY, days=1, rows_per_day=1500, seed=23, tables=["events", "paywall_visits"]
    )


def run_with_steps(seaweedfs: Any, day_db: str, **kw: Any) -> dict[str, Any]:
    """An `airflow dags test` run of s3_export over DESTS; what it logged, and the objects under step/ after it."""
    admin = seaweedfs.admin_client()
    dests = [{"conn_id": "exports_s3", "bucket": BUCKET, "app_id": IOS, **d} for d in DESTS]
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={
            "subscription_source": source_connection(day_db),
            "exports_s3": aws_connection(seaweedfs),
            "pseudonym_key": json.dumps({"conn_type": "generic", "password": HMAC_KEY}),
        },
        variables={
            "s3_export_destinations": json.dumps({"source_conn_id": "subscription_source", "destinations": dests})
        },
        # 3 retries configured: the refused destinations must not use them. tests/ holds transform_steps.
        env={
            "SUBSCRIPTION_EXPORTS_RETRIES": "3",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT / "plugins", ROOT, ROOT / "tests")),
        },
        **kw,
    )
    objects = {key: read(admin, key) for key in keys_under(admin, "step/")}
    uploads = list_multipart_uploads(admin, BUCKET, "step/")
    return {"result": result, "objects": objects, "uploads": uploads, "logs": result.stdout + result.stderr}


@pytest.fixture(scope="module")
def dag_run(airflow_db, seaweedfs, day_db) -> dict[str, Any]:
    admin = seaweedfs.admin_client()
    for key in keys_under(admin, "step/"):
        admin.delete_object(Bucket=BUCKET, Key=key)
    return run_with_steps(seaweedfs, day_db)


@pytest.fixture(scope="module")
def dry_run(dag_run, seaweedfs, day_db) -> dict[str, Any]:
    """A dry run of the same day, after the real run wrote its files."""
    return run_with_steps(seaweedfs, day_db, conf={"dry_run": True})


def pseudonymised(reference_csv: bytes, key: bytes) -> bytes:
    """The reference file with the device identifiers replaced by their hex HMAC-SHA-256 (empty stays empty)."""
    return ref.with_values_replaced(
        reference_csv, KEYED, lambda text: hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    )


def test_the_keyed_step_writes_the_reference_with_hmac_of_the_device_ids(dag_run, day_db) -> None:
    src = ref.load_source(day_db)
    day = {"start": START, "end": START + dt.timedelta(days=1)}
    all_types = set(S3_EXPORT.all_event_types)
    events = {app: ref.expected_events(src, app_id=app, event_types=all_types, **day) for app in (IOS, ANDROID)}
    objects = dag_run["objects"]
    files = {IOS: key_of("step/hmac"), ANDROID: key_of("step/hmac-android")}
    for app, key in files.items():
        expected = pseudonymised(events[app], HMAC_KEY.encode())
        assert expected != events[app] and len(expected.splitlines()) > 100
        assert objects.get(key) == expected, dag_run["logs"][-4000:]
    # each of the six identifiers had values to pseudonymise, and every one of them changed
    for name in KEYED:
        pairs = []
        for app, key in files.items():
            got = list(csv.reader(io.StringIO(objects[key].decode(), newline="")))
            plain = list(csv.reader(io.StringIO(events[app].decode(), newline="")))
            i = plain[0].index(name)
            pairs += [(g[i], p[i]) for g, p in zip(got[1:], plain[1:], strict=True) if p[i]]
        assert pairs, f"the reference has no {name} to pseudonymise"
        assert all(g != p and re.fullmatch("[0-9a-f]{64}", g) for g, p in pairs), name
    # paywall_visits has no identifier columns: unchanged; the destination without a step: the reference
    assert objects[key_of("step/hmac", "paywall_visits")] == ref.expected_paywall_visits(src, app_id=IOS, **day)
    assert objects[key_of("step/plain")] == events[IOS]
    for key in (*files.values(), key_of("step/hmac", "paywall_visits"), key_of("step/plain")):
        manifest = json.loads(objects[key + ".manifest.json"])
        assert manifest["rows"] == len(list(csv.reader(io.StringIO(objects[key].decode(), newline="")))) - 1
        assert manifest["sha256"] == hashlib.sha256(objects[key]).hexdigest()


def test_the_key_is_in_no_log_line_object_or_file(dag_run) -> None:
    assert_secret_nowhere(HMAC_KEY, logs=dag_run["logs"], objects=dag_run["objects"])


def error_lines(logs: str, name: str) -> list[str]:
    """Log lines at ERROR level (``[error    ]`` in `airflow dags test` output) that mention destination ``name``."""
    return [ln for ln in logs.splitlines() if "[error" in ln and f"'{name}'" in ln]


@pytest.mark.parametrize("name", sorted(FAILING))
def test_a_refused_step_fails_its_destination_alone_at_once_with_one_line(dag_run, name) -> None:
    logs = dag_run["logs"]
    assert dag_run["result"].returncode != 0
    cause = FAILING[name]
    assert cause.count(f"'{name}'") == 1
    errors = error_lines(logs, name)
    assert len(errors) == 1 and errors[0].split("[error    ] ")[1].startswith(cause + " ["), errors
    folder = next(d["folder"] for d in DESTS if d["name"] == name)
    assert [k for k in dag_run["objects"] if k.startswith(folder + "/")] == []
    assert dag_run["uploads"] == []
    with sqlite3.connect(Path(AIRFLOW_HOME) / "airflow.db") as db:
        run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id='s3_export' ORDER BY id DESC LIMIT 1").fetchone()[
            0
        ]
        rows = db.execute(
            "SELECT rendered_map_index, state, try_number, max_tries FROM task_instance "
            "WHERE dag_id='s3_export' AND run_id=? AND task_id LIKE '%export_tables'",
            (run_id,),
        ).fetchall()
    # Every map index labelled with its name and index ('hmac (#0)'), also the ones that failed fast.
    by_label = {label.rsplit(" (#", 1)[0]: (state, tries, max_tries) for label, state, tries, max_tries in rows}
    assert all(label.endswith(")") and " (#" in label for label, *_ in rows), rows
    assert set(by_label) == {d["name"] for d in DESTS}, rows
    assert by_label[name] == ("failed", 1, 3), by_label  # failed at its first try, 3 retries unused
    assert by_label["plain"][0] == by_label["hmac"][0] == "success"


@pytest.mark.parametrize("name", sorted(FAILING))
def test_a_dry_run_tries_the_step_and_fails_its_destination_with_the_real_runs_line(dag_run, dry_run, name) -> None:
    # The dry run shapes the day's rows and passes them through each destination's step as the real
    # run does: a step the real run refuses fails the dry run too, at once, with the same one line.
    assert dry_run["result"].returncode != 0

    def causes(logs: str) -> list[str]:  # the line's message, without its timestamp
        return [ln.split("[error    ] ", 1)[1] for ln in error_lines(logs, name)]

    assert causes(dry_run["logs"]) == causes(dag_run["logs"]) and len(causes(dry_run["logs"])) == 1
    assert causes(dry_run["logs"])[0].startswith(FAILING[name] + " [")
    assert dry_run["objects"] == dag_run["objects"] and dry_run["uploads"] == [], "a dry run writes nothing"


def test_a_dry_run_reports_the_rows_bytes_and_sha256_the_real_run_wrote(dag_run, dry_run) -> None:
    lines = [ln for ln in dry_run["logs"].splitlines() if "dry run: destination=" in ln]
    checked = 0
    for dest in DESTS:
        if dest["name"] in FAILING:
            assert not [ln for ln in lines if f"destination={dest['name']} " in ln]
            continue
        for table in dest["tables"]:
            key = key_of(dest["folder"], table)
            manifest = json.loads(dag_run["objects"][key + ".manifest.json"])
            line = (
                f"dry run: destination={dest['name']} table={table} window={DAY} rows={manifest['rows']} "
                f"bytes={manifest['bytes']} sha256={manifest['sha256']} would write s3://{BUCKET}/{key} and "
                f"s3://{BUCKET}/{key}.manifest.json (nothing written)"
            )
            assert [ln for ln in lines if line in ln], (line, lines)
            checked += 1
    assert checked == 4  # hmac (events, paywall_visits), hmac-android, plain


def test_a_configuration_naming_a_connection_for_a_step_that_takes_none_is_refused() -> None:
    from subscription_exports.config import ConfigError

    raw = {"name": "x", "conn_id": "c", "bucket": BUCKET, "app_id": IOS, "transform_conn_id": "k",
           "transform": "export_transforms.privacy:hash_device_ids"}  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        validate_destination(raw, S3_EXPORT, origin="destinations file x.yaml")
    assert str(refused.value) == (
        "destinations file x.yaml: destination 'x': field 'transform_conn_id': transform "
        "'export_transforms.privacy:hash_device_ids' takes no connection (def step(frame)); remove this field"
    )
    raw = {**raw, "transform": "export_transforms.privacy:hmac_device_ids"}
    del raw["transform_conn_id"]
    with pytest.raises(ConfigError) as refused:
        validate_destination(raw, S3_EXPORT, origin="destinations file x.yaml")
    assert str(refused.value) == (
        "destinations file x.yaml: destination 'x': field 'transform_conn_id': transform "
        "'export_transforms.privacy:hmac_device_ids' reads its settings from a connection: name it here"
    )
    for bad in ("has space", "", "a/b"):
        with pytest.raises(ConfigError, match="field 'transform_conn_id': not a valid Airflow connection id"):
            validate_destination({**raw, "transform_conn_id": bad}, S3_EXPORT, origin="o")


def test_a_dry_run_checks_the_steps_connection(store) -> None:
    dest = validate_destination(
        {**PLANNED_DEST, "name": "dry", "transform": "export_transforms.privacy:hmac_device_ids",
         "transform_conn_id": "no_such_key"},
        S3_EXPORT, origin="test",
    )  # fmt: skip
    dialect, connection = source.connect("step_source")
    try:
        with pytest.raises(TransformError) as refused:
            exporter.dry_run_table(
                integration=S3_EXPORT, spec=S3_EXPORT.table("events"), dest=dest, window=day_window(DAY),
                dialect=dialect, connection=connection,
            )  # fmt: skip
    finally:
        connection.close()
    assert str(refused.value) == (
        "transform 'export_transforms.privacy:hmac_device_ids' of destination 'dry': connection 'no_such_key' "
        "(transform_conn_id) is not defined; add it (Admin -> Connections or a secrets backend)"
    )
