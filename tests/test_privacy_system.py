"""The shipped pseudonymisation steps on real apps: whole DAG runs of both DAGs (`airflow dags test`,
PostgreSQL, SeaweedFS) on a day of an iOS-only app, an Android-only app and a mixed app.

A single-platform app holds the other platform's identifiers NULL in every row, so every chunk of its
day has columns with no value at all: before issue 35, ``Series.map(f, na_action="ignore")`` turned
them into ``null[pyarrow]`` and the text-only rule refused the step, failing the destination every day.

Each of the twelve destinations (2 DAGs x 2 steps x 3 apps) must write the reference exporter's file
(tests/reference.py) with the device identifiers replaced by an HMAC-SHA-256 or SHA-256 computed here
with ``hmac`` / ``hashlib``; its manifest counts and hashes exactly those bytes; the HMAC key is in
no log line, object, file or metadata row.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
from typing import Any

import psycopg2
import pytest
import reference as ref
from conftest import assert_secret_nowhere, aws_connection, run_dag, source_connection

from devtools.seaweedfs import list_all_keys
from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT, S3_EXPORT

pytestmark = pytest.mark.system

DAY = dt.date(2026, 3, 7)
WINDOW = {"start": dt.datetime(2026, 3, 7, tzinfo=dt.UTC), "end": dt.datetime(2026, 3, 8, tzinfo=dt.UTC)}
BUCKET = "exports"
IOS, ANDROID, MIXED = "com.solo.ios", "com.solo.android", "com.both.mixed"
KEY = "pseudonym-" + secrets.token_hex(15)  # 40 characters, as a user would put in the connection
IOS_IDS = ("idfa", "idfv")
ANDROID_IDS = ("advertising_id", "android_id", "android_app_set_id")
STEPS = {
    "hmac": ("export_transforms.privacy:hmac_device_ids", ("ip_address", *IOS_IDS, *ANDROID_IDS),
             lambda text: hmac.new(KEY.encode(), text.encode("utf-8"), hashlib.sha256).hexdigest()),
    "sha256": ("export_transforms.privacy:hash_device_ids", ("ip_address", "idfa"),
               lambda text: hashlib.sha256(text.encode("utf-8")).hexdigest()),
}  # fmt: skip
APPS = {"ios": IOS, "android": ANDROID, "mixed": MIXED}
DAGS = {S3_EXPORT.dag_id: S3_EXPORT, CUSTOM_S3_UA_EXPORT.dag_id: CUSTOM_S3_UA_EXPORT}

# Each app's identifiers as its platform gives them, in both tables that hold them: an iOS app has
# no Android identifier and (tracking not allowed) no idfa; an Android app has no idfa or idfv; in
# the mixed app every second profile and UA event is an Android device.
PLATFORM_SQL = [
    (f"UPDATE {table} SET idfa = NULL, advertising_id = NULL, android_id = NULL, android_app_set_id = NULL "
     f"WHERE app_id = %(ios)s") for table in ("profiles", "ua_events")
] + [
    f"UPDATE {table} SET idfa = NULL, idfv = NULL WHERE app_id = %(android)s" for table in ("profiles", "ua_events")
] + [
    (f"UPDATE {table} SET idfa = NULL, idfv = NULL, advertising_id = md5({pk}), "
     f"android_id = left(md5({pk} || 'a'), 16), android_app_set_id = md5({pk} || 's') "
     f"WHERE app_id = %(mixed)s AND right({pk}, 1) IN ('1', '3', '5', '7', '9')")
    for table, pk in (("profiles", "profile_id"), ("ua_events", "ua_event_id"))
]  # fmt: skip


def destinations(integration: Any) -> list[dict[str, Any]]:
    return [
        {"name": f"{app}-{step}", "conn_id": "exports_s3", "bucket": BUCKET, "folder": f"solo/{app}-{step}",
         "app_id": app_id, "transform": STEPS[step][0],
         **({"transform_conn_id": "pseudonym_key"} if step == "hmac" else {})}
        for app, app_id in APPS.items() for step in STEPS
    ]  # fmt: skip


@pytest.fixture(scope="module")
def source_db(pg_database_factory) -> str:
    url = pg_database_factory(apps=[IOS, ANDROID, MIXED], start=DAY, days=1, rows_per_day=800, seed=35)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        for sql in PLATFORM_SQL:
            cur.execute(sql, {"ios": IOS, "android": ANDROID, "mixed": MIXED})
        # the premise: a single-platform app's day holds no value of the other platform's identifiers
        for table in ("profiles", "ua_events"):
            for app_id, absent in ((IOS, ("idfa", *ANDROID_IDS)), (ANDROID, IOS_IDS)):
                cur.execute(
                    f"SELECT {', '.join(f'count({c})' for c in absent)} FROM {table} WHERE app_id = %s", (app_id,)
                )
                assert set(cur.fetchone()) == {0}, (table, app_id)
            cur.execute(f"SELECT count(idfv), count(android_id) FROM {table} WHERE app_id = %s", (MIXED,))
            assert min(cur.fetchone()) > 50, table
    conn.close()
    return url


@pytest.fixture(scope="module")
def runs(airflow_db, seaweedfs, source_db) -> dict[str, Any]:
    admin = seaweedfs.admin_client()
    for key in list_all_keys(admin, BUCKET, "solo/"):
        admin.delete_object(Bucket=BUCKET, Key=key)
    results = {}
    for dag_id, integration in DAGS.items():
        results[dag_id] = run_dag(
            dag_id,
            logical_date=DAY.isoformat(),
            connections={
                "subscription_source": source_connection(source_db),
                "exports_s3": aws_connection(seaweedfs),
                "pseudonym_key": json.dumps({"conn_type": "generic", "password": KEY}),
            },
            variables={
                integration.variable_key: json.dumps(
                    {"source_conn_id": "subscription_source", "destinations": destinations(integration)}
                )
            },
        )
    objects = {
        key: admin.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in list_all_keys(admin, BUCKET, "solo/")
    }
    logs = "".join(r.stdout + r.stderr for r in results.values())
    return {"results": results, "objects": objects, "logs": logs}


def expected_files(src: dict[str, Any], dag_id: str, app_id: str) -> dict[str, bytes]:
    """The reference exporter's plain files of the day, by table."""
    if dag_id == S3_EXPORT.dag_id:
        types = set(S3_EXPORT.all_event_types)
        return {
            "events": ref.expected_events(src, app_id=app_id, event_types=types, **WINDOW),
            "paywall_visits": ref.expected_paywall_visits(src, app_id=app_id, **WINDOW),
        }
    types = set(CUSTOM_S3_UA_EXPORT.all_event_types)
    return {
        "ua_events": ref.expected_ua_events(src, app_id=app_id, event_types=types, **WINDOW),
        "campaign_performance": ref.expected_campaign_performance(src, app_id=app_id, date_from=DAY, date_to=DAY),
    }


def column(body: bytes, name: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    return [row[rows[0].index(name)] for row in rows[1:]]


@pytest.mark.parametrize("dag_id", sorted(DAGS))
def test_both_steps_pseudonymise_every_app_exactly(runs, source_db, dag_id) -> None:
    result = runs["results"][dag_id]
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    src = ref.load_source(source_db)
    objects = runs["objects"]
    for app, app_id in APPS.items():
        plain = expected_files(src, dag_id, app_id)
        for step, (_, columns, digest) in STEPS.items():
            for table, reference in plain.items():
                key = f"solo/{app}-{step}/{table}/dt={DAY}/{table}_{DAY}.csv"
                expected = ref.with_values_replaced(reference, columns, digest)
                assert objects.get(key) == expected, (key, runs["logs"][-3000:])
                manifest = json.loads(objects[key + ".manifest.json"])
                assert manifest["rows"] == len(column(expected, manifest["columns"][0]))
                assert manifest["bytes"] == len(expected)
                assert manifest["sha256"] == hashlib.sha256(expected).hexdigest()
            # the day really is the app's: its identifiers have values, the other platform's none
            events = plain["events" if dag_id == S3_EXPORT.dag_id else "ua_events"]
            present = {name for name in (*IOS_IDS, *ANDROID_IDS) if any(column(events, name))}
            assert len(column(events, "idfv")) > 50
            assert present == {"ios": {"idfv"}, "android": set(ANDROID_IDS), "mixed": {*IOS_IDS, *ANDROID_IDS}}[app]


def test_the_hmac_key_is_in_no_log_line_object_or_file(runs) -> None:
    assert all(r.returncode == 0 for r in runs["results"].values())
    assert_secret_nowhere(KEY, logs=runs["logs"], objects=runs["objects"])
