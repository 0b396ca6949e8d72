"""`python -m subscription_exports.verify`: a downstream consumer re-reads an export and checks its manifest.

One real `s3_export` run (PostgreSQL to SeaweedFS, a plain and a gzip destination) gives the objects;
a consumer identity that may only read and list the bucket verifies them, then tampered copies fail
naming what differs.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import (
    AIRFLOW_HOME,
    ROOT,
    assert_ok,
    aws_connection,
    run_dag,
    snapshot_and_empty,
    source_connection,
)

from devtools import airflow_env
from devtools.seaweedfs import Identity
from subscription_exports.verify import VerifyResult, verify_object

pytestmark = pytest.mark.system

APP = "com.verify.ios"
DAY = dt.date(2026, 3, 7)
BUCKET = "exports"
# What a downstream consumer typically holds: read and list, no write.
CONSUMER = Identity(
    name="verify-consumer",
    access_key="VERIFYCONSUMERKEY0001",
    secret_key="verify-consumer-secret-7Hq2",
    actions=[f"Read:{BUCKET}", f"List:{BUCKET}"],
)
PLAIN = f"verify/plain/events/dt={DAY}/events_{DAY}.csv"
GZIPPED = f"verify/gz/paywall_visits/dt={DAY}/paywall_visits_{DAY}.csv.gz"


@pytest.fixture(scope="module")
def exported(airflow_db, seaweedfs, pg_database_factory) -> Iterator[dict[str, bytes]]:
    """A real export of one small day: {key: bytes} of data files and manifests, left in the bucket."""
    url = pg_database_factory(apps=[APP], start=DAY, days=1, rows_per_day=40, seed=5)
    if CONSUMER.access_key not in {i.access_key for i in seaweedfs.identities}:
        seaweedfs.reload_identities([*seaweedfs.identities, CONSUMER])
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    dests = [
        {"name": "verify-plain", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "verify/plain", "app_id": APP,
         "tables": ["events"]},
        {"name": "verify-gz", "conn_id": "exports_s3", "bucket": BUCKET, "folder": "verify/gz", "app_id": APP,
         "tables": ["paywall_visits"], "gzip": True},
    ]  # fmt: skip
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={"subscription_source": source_connection(url), "exports_s3": aws_connection(seaweedfs)},
        variables={"s3_export_destinations": json.dumps({"destinations": dests})},
    )
    assert_ok(result)
    objects = {k.partition("/")[2]: v for k, v in snapshot_and_empty(admin).items() if k.startswith(f"{BUCKET}/")}
    assert {PLAIN, GZIPPED, f"{PLAIN}.manifest.json", f"{GZIPPED}.manifest.json"} <= set(objects), sorted(objects)
    yield objects
    snapshot_and_empty(admin)


@pytest.fixture
def bucket(seaweedfs, exported) -> Iterator[object]:
    """The bucket holding exactly the exported objects, as the run left them (admin client for tampering)."""
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    for key, data in exported.items():
        admin.put_object(Bucket=BUCKET, Key=key, Body=data)
    yield admin
    snapshot_and_empty(admin)


@pytest.fixture(scope="module")
def consumer(seaweedfs, exported):
    return seaweedfs.client_for(CONSUMER)


def cli(seaweedfs, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as a consumer runs it: credentials in an Airflow connection given by environment."""
    env = airflow_env.airflow_env(AIRFLOW_HOME)
    env["AIRFLOW_CONN_EXPORTS_READER"] = aws_connection(seaweedfs, CONSUMER)
    return subprocess.run(
        [sys.executable, "-m", "subscription_exports.verify", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def manifest(exported: dict[str, bytes], key: str) -> dict:
    return json.loads(exported[f"{key}.manifest.json"])


# -- a real export verifies ----------------------------------------------------------------------


@pytest.mark.parametrize("key", [PLAIN, GZIPPED], ids=["plain", "gzip"])
def test_real_export_verifies_ok(bucket, consumer, exported, key):
    result = verify_object(consumer, BUCKET, key)
    want = manifest(exported, key)
    assert result == VerifyResult(BUCKET, key, rows=want["rows"], bytes=want["bytes"], sha256=want["sha256"])
    assert result.ok and want["rows"] > 0
    assert result.line() == f"OK s3://{BUCKET}/{key} rows={want['rows']} bytes={want['bytes']} sha256={want['sha256']}"


def test_cli_prints_one_ok_line_and_exits_0(bucket, seaweedfs, exported):
    done = cli(seaweedfs, "--conn-id", "exports_reader", f"s3://{BUCKET}/{PLAIN}", f"s3://{BUCKET}/{GZIPPED}")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines] == [["OK", f"s3://{BUCKET}/{PLAIN}"], ["OK", f"s3://{BUCKET}/{GZIPPED}"]]
    assert f"rows={manifest(exported, PLAIN)['rows']}" in lines[0]
    assert CONSUMER.secret_key not in done.stdout + done.stderr


# -- tampered or incomplete exports fail, naming what differs -------------------------------------


def test_one_changed_byte_fails_on_sha256(bucket, consumer, exported):
    data = bytearray(exported[PLAIN])
    last = data.rindex(b"\r\n", 0, len(data) - 2) + 2  # first byte of the last row
    data[last] = ord("X") if data[last] != ord("X") else ord("Y")
    bucket.put_object(Bucket=BUCKET, Key=PLAIN, Body=bytes(data))
    result = verify_object(consumer, BUCKET, PLAIN)
    assert not result.ok
    assert len(result.problems) == 1 and result.problems[0].startswith("sha256: object has "), result.problems
    assert result.line().startswith(f"FAILED s3://{BUCKET}/{PLAIN}: sha256: ")


def test_appended_row_fails_on_rows_bytes_and_sha256(bucket, consumer, exported):
    data = exported[PLAIN]
    last_row = data[data.rindex(b"\r\n", 0, len(data) - 2) + 2 :]
    bucket.put_object(Bucket=BUCKET, Key=PLAIN, Body=data + last_row)
    want = manifest(exported, PLAIN)
    result = verify_object(consumer, BUCKET, PLAIN)
    assert result.problems == (
        f"bytes: object has {len(data) + len(last_row)}, manifest says {want['bytes']}",
        f"sha256: object has {result.sha256}, manifest says {want['sha256']}",
        f"rows: object has {want['rows'] + 1}, manifest says {want['rows']}",
    )


def test_gzip_with_a_row_removed_fails_on_rows(bucket, consumer, exported):
    text = gzip.decompress(exported[GZIPPED])
    shorter = text[: text.rindex(b"\r\n", 0, len(text) - 2) + 2]
    bucket.put_object(Bucket=BUCKET, Key=GZIPPED, Body=gzip.compress(shorter, mtime=0))
    want = manifest(exported, GZIPPED)
    result = verify_object(consumer, BUCKET, GZIPPED)
    assert f"rows: object has {want['rows'] - 1}, manifest says {want['rows']}" in result.problems
    assert any(p.startswith("sha256: ") for p in result.problems)


def test_truncated_gzip_fails_naming_the_content(bucket, consumer, exported):
    bucket.put_object(Bucket=BUCKET, Key=GZIPPED, Body=exported[GZIPPED][:-20])
    result = verify_object(consumer, BUCKET, GZIPPED)
    assert not result.ok
    assert any("content is not gzip UTF-8 CSV" in p for p in result.problems), result.problems
    assert any(p.startswith("bytes: ") for p in result.problems)


def test_missing_manifest_fails_with_exit_1(bucket, seaweedfs):
    bucket.delete_object(Bucket=BUCKET, Key=f"{PLAIN}.manifest.json")
    done = cli(seaweedfs, "--conn-id", "exports_reader", f"s3://{BUCKET}/{PLAIN}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"FAILED s3://{BUCKET}/{PLAIN}: manifest s3://{BUCKET}/{PLAIN}.manifest.json is missing "
        "(export incomplete or not an export)"
    ]


def test_tampered_object_fails_the_cli_with_one_line(bucket, seaweedfs, exported):
    bucket.put_object(Bucket=BUCKET, Key=PLAIN, Body=exported[PLAIN] + b"x,y\r\n")
    done = cli(seaweedfs, "--conn-id", "exports_reader", f"s3://{BUCKET}/{PLAIN}")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"FAILED s3://{BUCKET}/{PLAIN}: bytes: object has ")
    assert "sha256: object has" in line and "rows: object has" in line


def test_object_missing_but_manifest_present(bucket, consumer):
    bucket.delete_object(Bucket=BUCKET, Key=PLAIN)
    assert verify_object(consumer, BUCKET, PLAIN).problems == ("object is missing but its manifest exists",)


def test_cli_usage_and_connection_errors_exit_2(seaweedfs):
    bad_uri = cli(seaweedfs, "--conn-id", "exports_reader", "exports/no-scheme.csv")
    assert bad_uri.returncode == 2 and bad_uri.stderr.strip() == (
        "FAILED expected s3://bucket/key, got 'exports/no-scheme.csv'"
    )
    no_conn = cli(seaweedfs, "--conn-id", "undefined_conn", f"s3://{BUCKET}/{PLAIN}")
    assert no_conn.returncode == 2
    assert no_conn.stderr.strip().splitlines() == [
        "FAILED connection 'undefined_conn': The conn_id `undefined_conn` isn't defined"
    ]
