"""System tests: the whole `s3_export` DAG under `airflow dags test`, PostgreSQL (and SQLite) to SeaweedFS.

Every expectation comes from tests/reference.py, which reads the seeded rows with plain SQL
and formats them in ordinary Python, sharing no code with the package.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json

import pandas as pd
import pytest
import reference as ref
from conftest import (
    AIRFLOW_HOME,
    BUCKETS,
    EXPORTER,
    MISSING_BUCKET,
    assert_ok,
    aws_connection,
    data_objects,
    run_dag,
    snapshot_and_empty,
    source_connection,
)

from devtools.seaweedfs import Identity
from subscription_exports.integrations import S3_EXPORT

pytestmark = pytest.mark.system

IOS, ANDROID = "com.acme.ios", "com.acme.android"
DAY = dt.date(2026, 3, 7)
START = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)
ALL_TYPES = set(S3_EXPORT.all_event_types)
SEED_ARGS = {"apps": [IOS, ANDROID], "start": dt.date(2026, 3, 6), "days": 3, "rows_per_day": 150, "seed": 11}

DESTINATIONS = [
    # defaults, nested directory in the bucket field
    {"name": "ios-default", "conn_id": "exports_s3", "bucket": "adapty-events/com.acme.ios", "folder": "exports",
     "app_id": IOS},
    # every setting flipped from its default
    {"name": "android-settings", "conn_id": "exports_s3", "bucket": "adapty-events", "folder": "android/settings",
     "app_id": ANDROID, "include_events_without_profile": True, "exclude_historical_events": False,
     "send_user_attributes": True},
    # event selection by group and single type, with renames
    {"name": "ios-selected", "conn_id": "exports_s3", "bucket": "exports", "folder": "selected", "app_id": IOS,
     "tables": ["events"], "event_types": ["trials", "billing_issue_detected"],
     "rename_event_types": {"trial_started": "trial", "billing_issue_detected": "billing_issue"}},
    # gzip, one table only
    {"name": "android-gzip", "conn_id": "exports_s3", "bucket": "exports", "folder": "gz", "app_id": ANDROID,
     "tables": ["paywall_visits"], "gzip": True},
]  # fmt: skip

SELECTED = set(S3_EXPORT.event_groups["trials"]) | {"billing_issue_detected"}
RENAMES = {"trial_started": "trial", "billing_issue_detected": "billing_issue"}


def key(prefix: str, table: str, day: dt.date = DAY, ext: str = "csv") -> str:
    return f"{prefix}/{table}/dt={day}/{table}_{day}.{ext}"


def expected_objects(src: dict) -> dict[str, bytes]:
    """Data objects the run must write, keyed bucket/key, from the reference exporter."""
    w = {"start": START, "end": END}
    return {
        key("adapty-events/com.acme.ios/exports", "events"): ref.expected_events(
            src, app_id=IOS, event_types=ALL_TYPES, **w
        ),
        key("adapty-events/com.acme.ios/exports", "paywall_visits"): ref.expected_paywall_visits(src, app_id=IOS, **w),
        key("adapty-events/android/settings", "events"): ref.expected_events(
            src,
            app_id=ANDROID,
            event_types=ALL_TYPES,
            include_without_profile=True,
            exclude_historical=False,
            with_attributes=True,
            **w,
        ),
        key("adapty-events/android/settings", "paywall_visits"): ref.expected_paywall_visits(
            src, app_id=ANDROID, include_without_profile=True, with_attributes=True, **w
        ),
        key("exports/selected", "events"): ref.expected_events(
            src, app_id=IOS, event_types=SELECTED, rename=RENAMES, **w
        ),
        key("exports/gz", "paywall_visits", ext="csv.gz"): gzip.compress(
            ref.expected_paywall_visits(src, app_id=ANDROID, **w)
        ),
    }


def connections(seaweedfs, source_url: str, **extra: str) -> dict[str, str]:
    return {"subscription_source": source_connection(source_url), "exports_s3": aws_connection(seaweedfs), **extra}


def destinations_var(dests: list[dict]) -> dict[str, str]:
    return {"s3_export_destinations": json.dumps({"source_conn_id": "subscription_source", "destinations": dests})}


@pytest.fixture(scope="module")
def pg_source(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


@pytest.fixture(scope="module")
def sqlite_source(sqlite_database_factory) -> str:
    return str(sqlite_database_factory(**SEED_ARGS))


@pytest.fixture(scope="module")
def src(pg_source) -> dict:
    return ref.load_source(pg_source)


@pytest.fixture(scope="module")
def pg_run(airflow_db, seaweedfs, pg_source):
    """One scheduled-day run of the DAG over four destinations; returns (result, objects written)."""
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections=connections(seaweedfs, pg_source),
        variables=destinations_var(DESTINATIONS),
    )
    return result, snapshot_and_empty(admin)


def test_run_writes_exactly_the_expected_keys(pg_run, src):
    result, objects = pg_run
    assert_ok(result)
    expected = expected_objects(src)
    assert sorted(data_objects(objects)) == sorted(expected)
    assert sorted(k for k in objects if k.endswith(".manifest.json")) == sorted(f"{k}.manifest.json" for k in expected)


def test_each_exported_table_emits_one_asset_event_per_destination(pg_run, src):
    """Airflow's record (its metadata DB) of the run's Asset events: one per destination and table
    it exported, none for a table a destination does not select, the extra describing the object."""
    import sqlite3

    _, objects = pg_run
    manifests = {k: json.loads(v) for k, v in objects.items() if k.endswith(".manifest.json")}
    (run_id,) = {m["run_id"] for m in manifests.values()}
    with sqlite3.connect(AIRFLOW_HOME / "airflow.db") as db:
        rows = db.execute(
            "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_dag_id = 's3_export' AND e.source_run_id = ?",
            (run_id,),
        ).fetchall()
    events = {}
    for asset, extra in rows:
        extra = json.loads(extra)
        assert asset == f"subscription_exports/s3_export/{extra['table']}"
        events[f"{extra['bucket']}/{extra['key']}"] = extra
    assert sorted(events) == sorted(expected_objects(src)), "one event per exported (destination, table)"
    by_destination = {(e["destination"], e["table"]) for e in events.values()}
    assert ("ios-selected", "paywall_visits") not in by_destination
    assert ("android-gzip", "events") not in by_destination
    for name, extra in events.items():
        manifest = manifests[name + ".manifest.json"]
        assert extra["sha256"] == manifest["sha256"] == hashlib.sha256(objects[name]).hexdigest()
        assert (extra["rows"], extra["bytes"], extra["window"]) == (
            manifest["rows"], manifest["bytes"], manifest["window"]
        )  # fmt: skip


def test_files_match_the_reference_byte_for_byte(pg_run, src):
    _, objects = pg_run
    for name, want in expected_objects(src).items():
        got = objects[name]
        if name.endswith(".gz"):
            got, want = gzip.decompress(got), gzip.decompress(want)
        assert got == want, f"{name} differs from the reference"


def test_headers_are_the_seed_columns_in_order(pg_run):
    _, objects = pg_run
    ios_events = objects[key("adapty-events/com.acme.ios/exports", "events")].decode()
    assert ios_events.split("\r\n", 1)[0].split(",") == ref.EVENTS_COLUMNS
    assert "profile_county" in ref.EVENTS_COLUMNS  # sic, as the seed spells it
    android_events = objects[key("adapty-events/android/settings", "events")].decode()
    assert android_events.split("\r\n", 1)[0].split(",") == [*ref.EVENTS_COLUMNS, "attributes"]
    visits = objects[key("adapty-events/com.acme.ios/exports", "paywall_visits")].decode()
    assert visits.split("\r\n", 1)[0].split(",") == ref.PAYWALL_VISITS_COLUMNS


def _rows_created_at(src: dict, app: str, instant: dt.datetime) -> list[dict]:
    return [e for e in src["events"] if e["app_id"] == app and e["created_at"] == instant]


def _line_for(src: dict, event: dict) -> str:
    """The expected CSV line of one source event (as the reference renders it)."""
    csv_bytes = ref.expected_events(
        src,
        app_id=event["app_id"],
        start=event["created_at"],
        end=event["created_at"] + dt.timedelta(microseconds=1),
        event_types=ALL_TYPES,
        include_without_profile=True,
        exclude_historical=False,
        with_attributes=True,
    )
    lines = [ln for ln in csv_bytes.decode().split("\r\n")[1:] if ln]
    return next(ln for ln in lines if event["event_type"].lower() in ln)


def test_window_boundaries_and_late_arrivals(pg_run, src):
    _, objects = pg_run
    body = objects[key("adapty-events/android/settings", "events")].decode()
    first = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
    last = dt.datetime(2026, 3, 7, 23, 59, 59, 999999, tzinfo=dt.UTC)
    next_day = dt.datetime(2026, 3, 8, tzinfo=dt.UTC)
    before = dt.datetime(2026, 3, 6, 23, 59, 59, 999999, tzinfo=dt.UTC)
    for instant in (first, last):
        rows = _rows_created_at(src, ANDROID, instant)
        assert rows, f"seed has no row recorded at {instant}"
        assert all(_line_for(src, r) in body for r in rows), f"row recorded at {instant} missing"
    for instant in (next_day, before):
        for r in _rows_created_at(src, ANDROID, instant):
            assert _line_for(src, r) not in body, f"row recorded at {instant} must not be in {DAY}"
    late = [
        e
        for e in src["events"]
        if e["app_id"] == ANDROID and START <= e["created_at"] < END and e["event_datetime"] < START
    ]
    assert late, "seed has no late arrivals"
    assert all(_line_for(src, e) in body for e in late)
    # ...and the late arrivals into the next day are not here
    later = [
        e for e in src["events"] if e["app_id"] == ANDROID and e["created_at"] >= END and e["event_datetime"] < END
    ]
    assert later and not any(_line_for(src, e) in body for e in later)


def test_hostile_text_round_trips_through_csv_and_pandas(pg_run, src):
    _, objects = pg_run
    name = key("adapty-events/android/settings", "events")
    body = objects[name]
    expected_rows = list(csv.reader(io.StringIO(expected_objects(src)[name].decode(), newline="")))
    assert list(csv.reader(io.StringIO(body.decode(), newline=""))) == expected_rows
    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    assert frame.columns.tolist() == expected_rows[0]
    assert frame.values.tolist() == expected_rows[1:]
    text = body.decode()
    for needle in ('""', "\n", "\r", "🎉", ",=", "NaN"):
        assert needle in text, f"seed data should exercise {needle!r}"


def test_settings_and_event_selection(pg_run):
    _, objects = pg_run
    selected = list(csv.DictReader(io.StringIO(objects[key("exports/selected", "events")].decode(), newline="")))
    types = {r["event_type"] for r in selected}
    assert types <= (SELECTED - set(RENAMES)) | set(RENAMES.values())
    assert {"trial", "billing_issue"} <= types and "trial_started" not in types
    default = list(
        csv.DictReader(io.StringIO(objects[key("adapty-events/com.acme.ios/exports", "events")].decode(), newline=""))
    )
    assert all(r["profile_id"] for r in default), "events without profile are dropped by default"
    settings = list(
        csv.DictReader(io.StringIO(objects[key("adapty-events/android/settings", "events")].decode(), newline=""))
    )
    assert any(not r["profile_id"] for r in settings), "include_events_without_profile keeps them"
    assert any(r["attributes"].startswith("{") for r in settings)


def test_manifests_describe_their_files(pg_run):
    _, objects = pg_run
    for name, data in data_objects(objects).items():
        manifest = json.loads(objects[f"{name}.manifest.json"])
        plain = gzip.decompress(data) if name.endswith(".gz") else data
        rows = list(csv.reader(io.StringIO(plain.decode(), newline="")))
        bucket, _, object_key = name.partition("/")
        assert manifest["object"] == {"bucket": bucket, "key": object_key}
        assert manifest["rows"] == len(rows) - 1
        assert manifest["bytes"] == len(data)
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["columns"] == rows[0]
        assert manifest["window"]["start"] == START.isoformat() and manifest["window"]["end"] == END.isoformat()
        assert manifest["schema_version"] == 1 and manifest["run_id"]
        assert manifest["compression"] == ("gzip" if name.endswith(".gz") else None)


def test_secret_never_in_logs(pg_run):
    result, _ = pg_run
    assert EXPORTER.secret_key not in result.stdout + result.stderr


def test_postgresql_and_sqlite_give_byte_identical_files(pg_run, airflow_db, seaweedfs, sqlite_source):
    _, pg_objects = pg_run
    admin = seaweedfs.admin_client()
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections=connections(seaweedfs, sqlite_source),
        variables=destinations_var(DESTINATIONS),
    )
    sqlite_objects = snapshot_and_empty(admin)
    assert_ok(result)
    assert sorted(data_objects(sqlite_objects)) == sorted(data_objects(pg_objects))
    for name, data in data_objects(pg_objects).items():
        assert sqlite_objects[name] == data, f"{name}: SQLite and PostgreSQL exports differ"


def test_empty_day_gives_header_only_files(airflow_db, seaweedfs, pg_source):
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    empty_day = dt.date(2026, 4, 1)
    result = run_dag(
        "s3_export",
        logical_date=empty_day.isoformat(),
        connections=connections(seaweedfs, pg_source),
        variables=destinations_var(DESTINATIONS[:1]),
    )
    objects = snapshot_and_empty(admin)
    assert_ok(result)
    prefix = "adapty-events/com.acme.ios/exports"
    assert objects[key(prefix, "events", empty_day)] == (",".join(ref.EVENTS_COLUMNS) + "\r\n").encode()
    assert objects[key(prefix, "paywall_visits", empty_day)] == (",".join(ref.PAYWALL_VISITS_COLUMNS) + "\r\n").encode()
    assert json.loads(objects[key(prefix, "events", empty_day) + ".manifest.json"])["rows"] == 0


def test_bad_destinations_fail_alone_with_one_line_cause(airflow_db, seaweedfs, pg_source):
    """A wrong secret and a missing bucket fail their own check, write nothing, and do not block others."""
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    wrong = Identity("exporter", EXPORTER.access_key, "not-the-secret-Xy12", EXPORTER.actions)
    dests = [
        DESTINATIONS[0],
        {"name": "wrong-secret", "conn_id": "exports_wrong", "bucket": "exports", "folder": "w", "app_id": IOS},
        {"name": "no-bucket", "conn_id": "exports_s3", "bucket": MISSING_BUCKET, "folder": "m", "app_id": IOS},
        {"name": "no-conn", "conn_id": "exports_undefined", "bucket": "exports", "folder": "n", "app_id": IOS},
    ]
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections=connections(seaweedfs, pg_source, exports_wrong=aws_connection(seaweedfs, wrong)),
        variables=destinations_var(dests),
    )
    objects = snapshot_and_empty(admin)
    logs = result.stdout + result.stderr
    assert result.returncode != 0
    # the good destination still exported both tables
    prefix = "adapty-events/com.acme.ios/exports"
    assert {key(prefix, "events"), key(prefix, "paywall_visits")} <= set(objects)
    # the bad ones wrote nothing at all
    assert not [k for k in objects if not k.startswith(prefix)], objects.keys()
    assert admin.list_objects_v2(Bucket="exports").get("KeyCount", 0) == 0
    expected_causes = [
        "destination 'wrong-secret' (connection 'exports_wrong', bucket 'exports'): check failed: "
        "SignatureDoesNotMatch",
        f"destination 'no-bucket' (connection 'exports_s3', bucket '{MISSING_BUCKET}'): check failed: NoSuchBucket",
        "destination 'no-conn' (connection 'exports_undefined', bucket 'exports'): cannot use the connection: "
        "connection 'exports_undefined' is not defined",
    ]
    for cause in expected_causes:
        assert cause in logs, f"missing one-line cause: {cause}\n{logs[-4000:]}"
    assert wrong.secret_key not in logs and EXPORTER.secret_key not in logs


def test_least_privilege_identity_cannot_touch_other_buckets(seaweedfs):
    """The exporter's identity (used by every run above) holds only Read/Write/List on its buckets."""
    from botocore.exceptions import ClientError

    client = seaweedfs.client_for(EXPORTER)
    with pytest.raises(ClientError) as err:
        client.create_bucket(Bucket="exporter-may-not-create")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert set(BUCKETS) <= {b["Name"] for b in seaweedfs.admin_client().list_buckets()["Buckets"]}


def test_manual_range_export_writes_its_own_keys(airflow_db, seaweedfs, pg_source, src):
    """A triggered run with date_from/date_to: one file per table covering the range, own keys."""
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    result = run_dag(
        "s3_export",
        conf={"date_from": "2026-03-06", "date_to": "2026-03-07"},
        connections=connections(seaweedfs, pg_source),
        variables=destinations_var(DESTINATIONS[:1]),
    )
    objects = snapshot_and_empty(admin)
    assert_ok(result)
    prefix = "adapty-events/com.acme.ios/exports"
    start, end = dt.datetime(2026, 3, 6, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, tzinfo=dt.UTC)
    events = f"{prefix}/events/manual/2026-03-06_2026-03-07/events_2026-03-06_2026-03-07.csv"
    visits = f"{prefix}/paywall_visits/manual/2026-03-06_2026-03-07/paywall_visits_2026-03-06_2026-03-07.csv"
    assert sorted(data_objects(objects)) == sorted([events, visits])
    assert objects[events] == ref.expected_events(src, app_id=IOS, start=start, end=end, event_types=ALL_TYPES)
    assert objects[visits] == ref.expected_paywall_visits(src, app_id=IOS, start=start, end=end)
    manifest = json.loads(objects[events + ".manifest.json"])
    assert manifest["window"] == {
        "kind": "range",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "date_from": "2026-03-06",
        "date_to": "2026-03-07",
    }


@pytest.mark.parametrize(
    ("conf", "cause"),
    [
        ({"date_from": "2026-03-07", "date_to": "2026-03-06"}, "date range is inverted: date_from 2026-03-07 is after"),
        ({"date_from": "2026-03-06", "date_to": "2999-01-01"}, "param 'date_to': 2999-01-01 is not over yet"),
        ({"date_from": "2024-01-01", "date_to": "2025-01-01"}, "spans 367 days; the maximum is 366"),
        ({"date_from": "2026-03-06"}, "param 'date_to' is missing"),
        ({"date_from": "2026-03-06", "date_to": "03/07/2026"}, "03/07/2026"),
    ],
    ids=["inverted", "future", "too-long", "missing", "malformed"],
)
def test_bad_manual_ranges_fail_at_once_and_write_nothing(airflow_db, seaweedfs, pg_source, conf, cause):
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    result = run_dag(
        "s3_export",
        conf=conf,
        connections=connections(seaweedfs, pg_source),
        variables=destinations_var(DESTINATIONS[:1]),
    )
    objects = snapshot_and_empty(admin)
    assert result.returncode != 0
    assert objects == {}
    assert cause in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
@pytest.mark.parametrize("send", [False, True])
def test_attributes_are_read_only_for_a_destination_that_sends_them(dialect, send, pg_source, sqlite_source) -> None:
    """Without send_user_attributes the SQL returns NULL for `attributes`: the profiles' JSON is not
    read, sent or parsed (about a tenth of an `events` stream). The file is the same either way."""
    import sqlite3

    import psycopg2

    from subscription_exports import exporter, source
    from subscription_exports.config import validate_destination
    from subscription_exports.windows import day_window

    dest = validate_destination(DESTINATIONS[0] | {"send_user_attributes": send}, S3_EXPORT, origin="test")
    spec = S3_EXPORT.table("events")
    sql, params = exporter.source_query(S3_EXPORT, spec, dest, day_window(DAY), dialect)
    conn = (
        psycopg2.connect(pg_source)
        if dialect == "postgres"
        else sqlite3.connect(sqlite_source, check_same_thread=False)
    )
    try:
        with source.stream_csv(dialect, conn, sql, params) as stream:
            rows = list(csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8", newline="")))
    finally:
        conn.close()
    attributes = [row["attributes"] for row in rows]
    assert len(rows) > 50
    assert any(value.startswith("{") for value in attributes) if send else set(attributes) == {""}
