"""A destination's own pandas step (``transform: "module:function"``), end to end.

Real PostgreSQL, real SeaweedFS, the package's exporter in this process (the code a task runs).
The example shipped in include/export_transforms/privacy.py hashes ``ip_address`` and ``idfa``:
the stored file must be the reference exporter's bytes (tests/reference.py) with exactly those
two columns replaced by their SHA-256. A transform that changes the columns, or returns non-text,
fails the export with one line naming the destination and the step, and nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import reference as ref
from conftest import assert_ok, aws_connection, run_dag, source_connection

from subscription_exports import exporter, s3, source
from subscription_exports.config import ConfigError, validate_destination
from subscription_exports.custom_transform import TransformError
from subscription_exports.integrations import S3_EXPORT
from subscription_exports.windows import day_window

pytestmark = pytest.mark.system

IOS = "com.acme.ios"
DAY = dt.date(2026, 3, 7)
START = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
BUCKET = "exports"
MASKING = "export_transforms.privacy:hash_device_ids"
DEST = {"name": "masked", "conn_id": "masking_s3", "bucket": BUCKET, "folder": "masked", "app_id": IOS,
        "tables": ["events"], "transform": MASKING}  # fmt: skip
KEY = f"masked/events/dt={DAY}/events_{DAY}.csv"


@pytest.fixture(scope="module")
def pg_url(pg_database_factory) -> str:
    return pg_database_factory(apps=[IOS], start=DAY, days=1, rows_per_day=3000, seed=31, tables=["events"])


@pytest.fixture
def admin(seaweedfs, monkeypatch, pg_url):
    monkeypatch.setenv("AIRFLOW_CONN_MASKING_SOURCE", source_connection(pg_url))
    monkeypatch.setenv("AIRFLOW_CONN_MASKING_S3", aws_connection(seaweedfs))
    client = seaweedfs.admin_client()
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET, Prefix="masked/").get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def export(raw: dict[str, Any], *, table: str = "events") -> exporter.ExportResult:
    dest = validate_destination(raw, S3_EXPORT, origin="test")
    dialect, connection = source.connect("masking_source")
    try:
        return exporter.export_table(
            integration=S3_EXPORT, spec=S3_EXPORT.table(table), dest=dest, window=day_window(DAY), dialect=dialect,
            connection=connection, client=s3.s3_client(dest.conn_id), run_id="masking-test",
        )  # fmt: skip
    finally:
        connection.close()


def masked(reference_csv: bytes, columns: tuple[str, ...]) -> bytes:
    """The reference file with ``columns`` replaced by the hex SHA-256 of their text (empty stays empty)."""
    rows = list(csv.reader(io.StringIO(reference_csv.decode("utf-8"), newline="")))
    at = [rows[0].index(c) for c in columns]
    for row in rows[1:]:
        for i in at:
            row[i] = hashlib.sha256(row[i].encode()).hexdigest() if row[i] else ""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def reference_events(pg_url: str) -> bytes:
    src = ref.load_source(pg_url)
    return ref.expected_events(
        src, app_id=IOS, start=START, end=START + dt.timedelta(days=1), event_types=set(S3_EXPORT.all_event_types)
    )


def test_masking_transform_gives_the_reference_bytes_with_hashed_ids(admin, pg_url) -> None:
    plain = reference_events(pg_url)
    expected = masked(plain, ("ip_address", "idfa"))
    assert expected != plain and len(expected.splitlines()) > 1000

    result = export(DEST)

    body = admin.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    assert body == expected
    assert result.rows == len(list(csv.reader(io.StringIO(expected.decode(), newline="")))) - 1
    assert result.sha256 == hashlib.sha256(expected).hexdigest()
    # Nothing else changed: every other column is the reference's, byte for byte.
    got = list(csv.reader(io.StringIO(body.decode(), newline="")))
    want = list(csv.reader(io.StringIO(plain.decode(), newline="")))
    kept = [i for i, name in enumerate(want[0]) if name not in ("ip_address", "idfa")]
    assert [[r[i] for i in kept] for r in got] == [[r[i] for i in kept] for r in want]


def test_a_dag_run_masks_only_the_destination_that_asks(admin, pg_url, airflow_db, seaweedfs) -> None:
    # The whole DAG with `airflow dags test`: the setting travels from the Variable to the task.
    plain_dest = {**DEST, "name": "plain", "folder": "masked/plain"}
    del plain_dest["transform"]
    dests = [{**DEST, "conn_id": "exports_s3"}, {**plain_dest, "conn_id": "exports_s3"}]
    result = run_dag(
        "s3_export",
        logical_date=DAY.isoformat(),
        connections={"subscription_source": source_connection(pg_url), "exports_s3": aws_connection(seaweedfs)},
        variables={
            "s3_export_destinations": json.dumps({"source_conn_id": "subscription_source", "destinations": dests})
        },
    )
    assert_ok(result)
    plain = reference_events(pg_url)
    assert admin.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == masked(plain, ("ip_address", "idfa"))
    plain_key = f"masked/plain/events/dt={DAY}/events_{DAY}.csv"
    assert admin.get_object(Bucket=BUCKET, Key=plain_key)["Body"].read() == plain


@pytest.mark.parametrize(
    ("function", "cause"),
    [
        ("drop_a_column", "must return the same columns in the same order: missing ['idfa'], unexpected []"),
        ("swap_columns", "must return the same columns in the same order: same columns in another order"),
        (
            "numbers",
            "returned column 'idfa' as int64, not text: format it yourself (e.g. .astype(str)) so the file says "
            "exactly what you mean",
        ),
    ],
)
def test_a_transform_that_breaks_the_shape_fails_naming_the_destination(admin, tmp_path, monkeypatch, function, cause):
    (tmp_path / "broken_transforms.py").write_text(
        "def drop_a_column(frame):\n    return frame.drop(columns=['idfa'])\n"
        "def swap_columns(frame):\n    names = list(frame.columns)\n    names[0], names[1] = names[1], names[0]\n"
        "    return frame[names]\n"
        "def numbers(frame):\n    return frame.assign(idfa=1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # A TransformError, not an ExportError: the task fails it at once (a retry gives the same result).
    with pytest.raises(TransformError) as failure:
        export({**DEST, "transform": f"broken_transforms:{function}"})
    message = str(failure.value)
    where = f"transform 'broken_transforms:{function}' of destination 'masked'"
    assert message == f"{where} {cause}"
    assert admin.list_objects_v2(Bucket=BUCKET, Prefix="masked/").get("KeyCount", 0) == 0
    assert admin.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ("hash_device_ids", "is not 'module:function'"),
        ("export_transforms.privacy.hash_device_ids", "is not 'module:function'"),
        ("no_such_module_here:mask", "cannot import 'no_such_module_here' (plugins/ or include/): ModuleNotFoundError"),
        ("export_transforms.privacy:no_such_function", "module 'export_transforms.privacy' has no function"),
    ],
)
def test_bad_transform_setting_is_one_line_naming_destination_and_field(value: str, cause: str) -> None:
    with pytest.raises(ConfigError) as failure:
        validate_destination({**DEST, "transform": value}, S3_EXPORT, origin="destinations file x.yaml")
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("destinations file x.yaml: destination 'masked': field 'transform': ")
    assert cause in message


def test_the_example_is_importable_from_include_without_pandas_at_parse_time() -> None:
    # Validating the setting imports the module (so a typo fails the DAG's config check), but the
    # example itself does not import pandas: config checks at DAG parse time stay light.
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys; from subscription_exports.config import validate_destination;"
        "from subscription_exports.integrations import S3_EXPORT;"
        f"d = validate_destination({DEST!r}, S3_EXPORT, origin='test');"
        "print(d.transform, 'export_transforms.privacy' in sys.modules, 'pandas' in sys.modules)"
    )
    env = {"PYTHONPATH": str(root / "plugins"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [MASKING, "True", "False"]
