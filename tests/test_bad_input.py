"""Bad input: one-line causes naming the destination and the field, and nothing written.

tests/test_config.py holds most of the pure validation; this file fills its gaps (unit level) and runs
the cases only a real run can show through `airflow dags test`: a bad Variable, connections that are
missing, of the wrong type or without credentials, and a source connection of the wrong type.
Each run asserts the task's log line and a bucket that is byte-for-byte unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from conftest import aws_connection, run_dag, source_connection

from devtools import airflow_env
from devtools.seaweedfs import list_all_keys
from subscription_exports.config import ConfigError, validate_destination
from subscription_exports.integrations import S3_EXPORT

ORIGIN = "Airflow Variable 's3_export_destinations'"
DAY = dt.date(2026, 3, 7)
APP = "com.bad.input"


def raw(**fields: Any) -> dict[str, Any]:
    base = {"name": "acme-ios", "conn_id": "exports_s3", "bucket": "exports", "folder": "f", "app_id": APP}
    return {**base, **fields}


def cause(integration=S3_EXPORT, **fields: Any) -> str:
    with pytest.raises(ConfigError) as info:
        validate_destination(raw(**fields), integration, origin=ORIGIN)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


# -- unit: the gaps tests/test_config.py leaves ----------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "hint"),
    [
        # missing table selection: null, a bare string, an empty list
        ({"tables": None}, "tables", "valid tuple"),
        ({"tables": "events"}, "tables", "valid tuple"),
        ({"tables": []}, "tables", "select at least one table"),
        # event selection: empty, null, a bare group name instead of a list, a table-less UA group
        ({"event_types": []}, "event_types", "select at least one event type"),
        ({"event_types": None}, "event_types", "valid tuple"),
        ({"event_types": "trials"}, "event_types", "valid tuple"),
        ({"event_types": ["Trials"]}, "event_types", "'Trials'"),  # groups are lower case
        ({"event_types": ["trial_started", 5]}, "event_types.1", "valid string"),
        # bucket: a URL or a leading slash instead of a bucket name
        ({"bucket": "s3://exports"}, "bucket", "invalid S3 bucket name 's3:'"),
        ({"bucket": "/exports"}, "bucket", "invalid S3 bucket name ''"),
        ({"bucket": "exports/../other"}, "bucket", "'..'"),
        # folder: '..' anywhere, a leading '/'
        ({"folder": "a/.."}, "folder", "'..'"),
        ({"folder": "/etc"}, "folder", "must not start with '/'"),
        # connection ids of the wrong type
        ({"conn_id": 42}, "conn_id", "valid string"),
        ({"conn_id": None}, "conn_id", "valid string"),
        ({"conn_id": "exports/s3"}, "conn_id", "not a valid Airflow connection id"),
        # key templates: conversions and format specs put quotes into keys or fail on text
        ({"key_template": "{table!r}/{date}.{ext}"}, "key_template", "placeholder {table!r}"),
        ({"key_template": "{table}/{date:%Y}.{ext}"}, "key_template", "write {date}"),
        ({"range_key_template": "{table}/{date_from!s}_{date_to}.{ext}"}, "range_key_template", "{date_from!s}"),
        ({"key_template": ""}, "key_template", "{date}"),
        # server-side encryption spelled as a bare string
        ({"server_side_encryption": "AES256"}, "server_side_encryption", "valid dictionary"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_bad_destination_field(fields: dict[str, Any], field: str, hint: str) -> None:
    message = cause(**fields)
    assert message.startswith(f"{ORIGIN}: destination 'acme-ios': field '{field}': "), message
    assert hint in message, message


# -- through real DAG runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_source(pg_database_factory) -> str:
    return pg_database_factory(apps=[APP], start=DAY, days=1, rows_per_day=20, seed=3)


@pytest.fixture
def bucket_before(seaweedfs, s3) -> dict[str, bytes]:
    """The buckets hold one object that must survive untouched; returns the full content before the run."""
    s3.put_object(Bucket="exports", Key="bad-input/keep.csv", Body=b"a,b\r\n1,2\r\n")
    return bucket_content(s3)


def bucket_content(client) -> dict[str, bytes]:
    return {
        f"{b}/{k}": client.get_object(Bucket=b, Key=k)["Body"].read()
        for b in ("adapty-events", "adapty-ua", "exports")
        for k in list_all_keys(client, b)
    }


def variable(dests: list[dict[str, Any]], source_conn_id: str = "subscription_source") -> dict[str, str]:
    return {"s3_export_destinations": json.dumps({"source_conn_id": source_conn_id, "destinations": dests})}


def logs_of(result) -> str:
    return result.stdout + result.stderr


@pytest.mark.system
def test_a_bad_destination_in_the_variable_fails_alone(airflow_db, seaweedfs, s3, pg_source, bucket_before):
    dests = [raw(name="ok-one", folder="bad-input/ok"), raw(name="typo", event_types=["trials", "trial_strated"])]
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={"subscription_source": source_connection(pg_source), "exports_s3": aws_connection(seaweedfs)},
        variables=variable(dests),
    )
    assert result.returncode != 0
    expected = (
        f"{ORIGIN}: destination 'typo': field 'event_types': unknown event type or group 'trial_strated' "
        "(groups: ['issues', 'subscriptions', 'trials']; or single event types, or 'all')"
    )
    assert expected in logs_of(result), logs_of(result)[-4000:]
    # the valid destination exported both tables; the bad one wrote nothing
    written = {k: v for k, v in bucket_content(s3).items() if k not in bucket_before}
    assert sorted(written) == sorted(
        f"exports/bad-input/ok/{t}/dt={DAY}/{t}_{DAY}.csv{suffix}"
        for t in ("events", "paywall_visits")
        for suffix in ("", ".manifest.json")
    )


@pytest.mark.system
def test_a_bad_variable_document_fails_the_run_before_any_destination(
    airflow_db, seaweedfs, s3, pg_source, bucket_before
):
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={"subscription_source": source_connection(pg_source), "exports_s3": aws_connection(seaweedfs)},
        variables={"s3_export_destinations": json.dumps({"destinations": [raw(name="a"), raw(name="a")]})},
    )
    assert result.returncode != 0
    assert f"{ORIGIN}: field 'destinations': destination name 'a' is used twice" in logs_of(result)
    assert bucket_content(s3) == bucket_before


@pytest.mark.system
def test_bad_connections_fail_their_destination_and_write_nothing(airflow_db, seaweedfs, s3, pg_source, bucket_before):
    no_credentials = airflow_env.aws_connection_json(seaweedfs.endpoint_url, "", "")
    dests = [
        # the source (postgres) connection named where an aws one belongs
        raw(name="postgres-conn", conn_id="subscription_source", folder="bad-input/pg"),
        # an aws connection without access key and secret
        raw(name="no-credentials", conn_id="exports_nocreds", folder="bad-input/nocreds"),
        # a connection id nobody defined
        raw(name="undefined-conn", conn_id="exports_undefined", folder="bad-input/undefined"),
        # a good destination, but the run's source_conn_id names the aws connection
        raw(name="aws-as-source", folder="bad-input/source"),
    ]
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={
            "subscription_source": source_connection(pg_source),
            "exports_s3": aws_connection(seaweedfs),
            "exports_nocreds": no_credentials,
        },
        variables=variable(dests, source_conn_id="exports_s3"),
    )
    logs = logs_of(result)
    assert result.returncode != 0
    for line in [
        "destination 'postgres-conn' (connection 'subscription_source', bucket 'exports'): cannot use the "
        "connection: connection 'subscription_source' has type 'postgres', expected 'aws'",
        "destination 'no-credentials' (connection 'exports_nocreds', bucket 'exports'): check failed: "
        "NoCredentialsError: Unable to locate credentials",
        "destination 'undefined-conn' (connection 'exports_undefined', bucket 'exports'): cannot use the "
        "connection: connection 'exports_undefined' is not defined",
        "destination 'aws-as-source': source connection 'exports_s3': source connection type 'aws' is not "
        "supported (use 'postgres' or 'sqlite')",
    ]:
        assert line in logs, f"missing: {line}\n{logs[-5000:]}"
    assert bucket_content(s3) == bucket_before


@pytest.mark.system
def test_undefined_source_connection_fails_at_once_and_writes_nothing(
    airflow_db, seaweedfs, s3, pg_source, bucket_before
):
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={"exports_s3": aws_connection(seaweedfs)},
        variables=variable([raw(name="ok-one")], source_conn_id="source_undefined"),
        env={"SUBSCRIPTION_EXPORTS_RETRIES": "3"},
    )
    logs = logs_of(result)
    assert result.returncode != 0
    line = "destination 'ok-one': source connection 'source_undefined': connection 'source_undefined' is not defined"
    assert line in logs, logs[-5000:]
    assert "up_for_retry" not in logs.lower(), "a missing connection is not retried"
    assert bucket_content(s3) == bucket_before
