"""Typed Parquet through whole DAG runs: both DAGs, every table, PostgreSQL and SQLite, SeaweedFS.

One `airflow dags test` run of each DAG exports a day to paired destinations: `csv` (CSV) and `pq`
(the same settings, `format: parquet`), plus Parquet destinations with each other compression and
one for an app without rows (empty days). Every Parquet object is read back by DuckDB (not Arrow) and
compared cell by cell with the CSV of the same day, converted by tests/parquet_check.py's plain
Python; the CSV itself is the reference exporter's, byte for byte (tests/reference.py). Then, on the
same store: the same day exported again from PostgreSQL and from SQLite gives the very same bytes;
`verify` checks Parquet objects against their manifests; a destination step that writes what a
typed column cannot hold fails with one line and leaves nothing behind; and docs/querying.md's DuckDB
statements run over the downloaded layout (two days) with the documented types and row counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3

import duckdb
import pytest
import reference as ref
from conftest import EXPORTER, ROOT, assert_ok, aws_connection, run_dag, snapshot_and_empty, source_connection
from parquet_check import assert_same_values, duckdb_type

from devtools import doc_querying
from devtools.seaweedfs import list_multipart_uploads
from subscription_exports import exporter, verify
from subscription_exports.config import validate_destination
from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT, S3_EXPORT
from subscription_exports.parquet import ConversionError
from subscription_exports.windows import day_window

pytestmark = pytest.mark.system

IOS, NOBODY = "com.acme.ios", "com.acme.nobody"
DAY = dt.date(2026, 3, 7)
SETTINGS = {"conn_id": "exports_s3", "app_id": IOS, "include_events_without_profile": True,
            "exclude_historical_events": False, "send_user_attributes": True}  # fmt: skip
RUNS = [(S3_EXPORT, "exports"), (CUSTOM_S3_UA_EXPORT, "adapty-ua")]  # (integration, bucket)
BUCKET_OF = {integration.dag_id: bucket for integration, bucket in RUNS}


def destinations(integration) -> list[dict]:
    bucket = BUCKET_OF[integration.dag_id]
    tables = list(integration.table_names)
    first, second = tables
    return [
        {"name": "csv", "bucket": bucket, "folder": "csv", **SETTINGS},
        {"name": "pq", "bucket": bucket, "folder": "pq", "format": "parquet", **SETTINGS},
        {"name": "pq-snappy", "bucket": bucket, "folder": "snappy", "format": "parquet", "compression": "snappy",
         "tables": [first], **SETTINGS},
        {"name": "pq-gzip", "bucket": bucket, "folder": "gzip", "format": "parquet", "compression": "gzip",
         "tables": [second], **SETTINGS},
        {"name": "pq-none", "bucket": bucket, "folder": "none", "format": "parquet", "compression": "none",
         **SETTINGS},
        {"name": "pq-empty", "conn_id": "exports_s3", "bucket": bucket, "folder": "empty", "app_id": NOBODY,
         "format": "parquet"},
    ]  # fmt: skip


def key(folder: str, table: str, ext: str, day: dt.date = DAY) -> str:
    return f"{folder}/{table}/dt={day}/{table}_{day}.{ext}"


@pytest.fixture(scope="module")
def pg_source(standard_pg_source) -> str:
    return standard_pg_source


@pytest.fixture(scope="module")
def sqlite_source(standard_sqlite_source) -> str:
    return standard_sqlite_source


@pytest.fixture(scope="module")
def objects(airflow_db, seaweedfs, pg_source) -> dict[str, bytes]:
    """Both DAGs' runs of DAY: {bucket/key: bytes} of everything they stored."""
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    stored: dict[str, bytes] = {}
    for integration, _ in RUNS:
        config = {"source_conn_id": "subscription_source", "destinations": destinations(integration)}
        result = run_dag(
            integration.dag_id,
            logical_date=DAY.isoformat(),
            connections={"subscription_source": source_connection(pg_source), "exports_s3": aws_connection(seaweedfs)},
            variables={f"{integration.dag_id}_destinations": json.dumps(config)},
        )
        assert_ok(result)
        stored |= snapshot_and_empty(admin)
    return stored


def columns_of(integration, table: str, *, with_attributes: bool = True) -> list[tuple[str, str]]:
    spec = integration.table(table)
    return [(c.name, c.parquet_type) for c in spec.output_columns(with_attributes=with_attributes and
                                                                   spec.supports_attributes)]  # fmt: skip


def parquet_objects(integration) -> list[tuple[str, str, str]]:
    """(bucket/key, table, destination name) of every Parquet object the run must write."""
    bucket = BUCKET_OF[integration.dag_id]
    out = []
    for dest in destinations(integration):
        if dest.get("format") == "parquet":
            for table in dest.get("tables", integration.table_names):
                out.append((f"{bucket}/{key(dest['folder'], table, 'parquet')}", table, dest["name"]))
    return out


def test_the_runs_write_every_table_as_parquet_beside_the_csv(objects, pg_source) -> None:
    src = ref.load_source(pg_source)
    window = {"start": dt.datetime(2026, 3, 7, tzinfo=dt.UTC), "end": dt.datetime(2026, 3, 8, tzinfo=dt.UTC)}
    reference = {
        "events": ref.expected_events(src, app_id=IOS, event_types=set(S3_EXPORT.all_event_types),
                                      include_without_profile=True, exclude_historical=False, with_attributes=True,
                                      **window),
        "paywall_visits": ref.expected_paywall_visits(src, app_id=IOS, include_without_profile=True,
                                                      with_attributes=True, **window),
    }  # fmt: skip
    for table, body in reference.items():
        assert objects[f"exports/{key('csv', table, 'csv')}"] == body  # the CSV each Parquet file is compared with
    for integration, bucket in RUNS:
        wanted = {name for name, _, _ in parquet_objects(integration)}
        wanted |= {f"{bucket}/{key('csv', t, 'csv')}" for t in integration.table_names}
        got = {k for k in objects if k.startswith(f"{bucket}/") and not k.endswith(".manifest.json")}
        assert got == wanted
        for name, table, dest in parquet_objects(integration):
            body = objects[name]
            manifest = json.loads(objects[name + exporter.MANIFEST_SUFFIX])
            compression = next(d.get("compression", "zstd") for d in destinations(integration) if d["name"] == dest)
            assert manifest["format"] == "parquet" and manifest["compression"] == compression
            assert manifest["bytes"] == len(body) and manifest["row_groups"] == (1 if manifest["rows"] else 0)
            assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
            columns = columns_of(integration, table, with_attributes=dest != "pq-empty")
            assert manifest["schema"] == [{"name": n, "type": t} for n, t in columns]
            assert manifest["columns"] == [n for n, _ in columns]


def test_every_parquet_object_holds_exactly_its_csvs_values(objects) -> None:
    checked = 0
    for integration, bucket in RUNS:
        for name, table, dest in parquet_objects(integration):
            manifest = json.loads(objects[name + exporter.MANIFEST_SUFFIX])
            if dest == "pq-empty":
                columns = columns_of(integration, table, with_attributes=False)
                header_only = (",".join(n for n, _ in columns) + "\r\n").encode()
                assert assert_same_values(objects[name], header_only, columns, where=name) == 0 == manifest["rows"]
                continue
            csv_body = objects[f"{bucket}/{key('csv', table, 'csv')}"]
            rows = assert_same_values(objects[name], csv_body, columns_of(integration, table), where=name)
            assert rows == manifest["rows"] > 0
            checked += rows
    assert checked > 500


def export(integration, table: str, dest_raw: dict, dialect: str, connection, client, day: dt.date = DAY):
    dest = validate_destination(dest_raw, integration, origin="test")
    return exporter.export_table(
        integration=integration, spec=integration.table(table), dest=dest, window=day_window(day), dialect=dialect,
        connection=connection, client=client, run_id="parquet-test",
    )  # fmt: skip


def connect(dialect: str, url: str):
    if dialect == "postgres":
        import psycopg2

        return psycopg2.connect(url)
    return sqlite3.connect(f"file:{url}?mode=ro", uri=True, check_same_thread=False)


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_the_same_day_again_gives_the_same_bytes_from_postgresql_and_sqlite(
    objects, seaweedfs, s3, pg_source, sqlite_source, dialect
) -> None:
    client = seaweedfs.client_for(EXPORTER)
    connection = connect(dialect, pg_source if dialect == "postgres" else sqlite_source)
    try:
        for integration, bucket in RUNS:
            dest = next(d for d in destinations(integration) if d["name"] == "pq")
            for table in integration.table_names:
                result = export(integration, table, dest, dialect, connection, client)
                again = s3.get_object(Bucket=bucket, Key=result.key)["Body"].read()
                assert again == objects[f"{bucket}/{result.key}"], f"{dialect} {table}: other bytes"
    finally:
        connection.close()


def test_verify_checks_parquet_objects_against_their_manifests(objects, s3) -> None:
    name = f"exports/{key('pq', 'events', 'parquet')}"
    bucket, object_key = name.split("/", 1)
    body, manifest = objects[name], json.loads(objects[name + exporter.MANIFEST_SUFFIX])

    def stored(data: bytes, described: dict) -> verify.VerifyResult:
        s3.put_object(Bucket=bucket, Key=object_key, Body=data)
        s3.put_object(Bucket=bucket, Key=object_key + exporter.MANIFEST_SUFFIX, Body=json.dumps(described).encode())
        return verify.verify_object(s3, bucket, object_key)

    good = stored(body, manifest)
    assert (
        good.ok
        and good.line() == f"OK s3://{name} rows={manifest['rows']} bytes={len(body)} sha256={manifest['sha256']}"
    )
    fewer = stored(body, manifest | {"rows": manifest["rows"] - 1, "row_groups": 2})
    assert f"rows: object has {manifest['rows']}, manifest says {manifest['rows'] - 1}" in fewer.line()
    assert "row groups: object has 1, manifest says 2" in fewer.line()
    retyped = [dict(c, type="double") if c["name"] == "revenue_usd" else c for c in manifest["schema"]]
    assert "schema: object has" in stored(body, manifest | {"schema": retyped}).line()
    cut = stored(body[:-100], manifest | {"bytes": len(body) - 100})
    assert not cut.ok and "content is not a readable Parquet file" in cut.line() and "sha256" in cut.line()


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ("parquet_steps:revenue_abc", "column 'revenue_usd': row 3: value 'abc' is not a decimal"),
        ("parquet_steps:revenue_five_places", "column 'revenue_usd': row 1: value '1.23456' is not a decimal"),
    ],
)
def test_a_step_writing_what_a_typed_column_cannot_hold_fails_with_one_line_and_writes_nothing(
    seaweedfs, s3, pg_source, step, says
) -> None:
    dest = {"name": "pq-step", "bucket": "exports", "folder": "step", "format": "parquet", "transform": step,
            **SETTINGS}  # fmt: skip
    connection = connect("postgres", pg_source)
    try:
        with pytest.raises(ConversionError) as info:
            export(S3_EXPORT, "events", dest, "postgres", connection, seaweedfs.client_for(EXPORTER))
    finally:
        connection.close()
    message = str(info.value)
    assert message.startswith("destination 'pq-step': table 'events': ") and says in message
    assert "\n" not in message and len(message) < 300
    assert s3.list_objects_v2(Bucket="exports", Prefix="step/").get("KeyCount") == 0
    assert list_multipart_uploads(s3, "exports", "step/") == []


def test_a_step_sees_the_text_frame_and_the_file_is_typed_after_it(objects, seaweedfs, s3, pg_source) -> None:
    dest = {"name": "pq", "bucket": "exports", "folder": "pq", "format": "parquet",
            "transform": "parquet_steps:as_seen", **SETTINGS}  # fmt: skip
    connection = connect("postgres", pg_source)
    try:
        result = export(S3_EXPORT, "events", dest, "postgres", connection, seaweedfs.client_for(EXPORTER))
    finally:
        connection.close()
    assert s3.get_object(Bucket="exports", Key=result.key)["Body"].read() == objects[f"exports/{result.key}"]


# -- docs/querying.md's DuckDB statements over the delivered layout ---------------------------------


def duckdb_statements(fmt: str) -> list[str]:
    page = (ROOT / "docs" / "querying.md").read_text(encoding="utf-8")
    block = re.search(rf"`duckdb:{fmt}`\):\n\n```sql\n(.*?)```", page, re.S)
    assert block, f"docs/querying.md has no duckdb:{fmt} block"
    assert block[1].strip() == doc_querying.statements("duckdb", fmt)
    return [s.strip() for s in block[1].split(";") if s.strip()]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_documented_duckdb_tables_read_a_downloaded_layout(objects, seaweedfs, s3, pg_source, tmp_path, fmt):
    """Two days of every table (DAY from the DAG runs, the day before exported here), downloaded with
    their manifests as the store holds them; each view's columns have the documented types and each
    day's rows the manifest's count."""
    folder = "pq" if fmt == "parquet" else "csv"
    client = seaweedfs.client_for(EXPORTER)
    layout = {k: v for k, v in objects.items() if k.split("/")[1] == folder}
    connection = connect("postgres", pg_source)
    try:
        for integration, bucket in RUNS:
            dest = next(d for d in destinations(integration) if d["name"] == folder)
            for table in integration.table_names:
                earlier = export(integration, table, dest, "postgres", connection, client, DAY - dt.timedelta(days=1))
                for name in (earlier.key, earlier.manifest_key):
                    layout[f"{bucket}/{name}"] = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
    finally:
        connection.close()
    for name, body in layout.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    con = duckdb.connect()
    for statement in duckdb_statements(fmt):
        view = re.match(r"CREATE VIEW (\w+)_", statement)[1]
        integration = S3_EXPORT if view in S3_EXPORT.table_names else CUSTOM_S3_UA_EXPORT
        con.execute(statement.replace(doc_querying.LOCATION, str(tmp_path / BUCKET_OF[integration.dag_id] / folder)))
        described = con.execute(f"DESCRIBE {view}_{fmt}").fetchall()
        wanted = [(n, duckdb_type(t)) for n, t in columns_of(integration, view)] + [("dt", "DATE")]
        assert [(row[0], row[1]) for row in described] == wanted, view
        counts = dict(con.execute(f"SELECT dt, count(*) FROM {view}_{fmt} GROUP BY dt").fetchall())
        for day in (DAY - dt.timedelta(days=1), DAY):
            name = f"{BUCKET_OF[integration.dag_id]}/{key(folder, view, fmt, day)}{exporter.MANIFEST_SUFFIX}"
            assert counts.get(day, 0) == json.loads(layout[name])["rows"], f"{view} {day}"
        assert sum(counts.values()) > 0, view
    con.close()
