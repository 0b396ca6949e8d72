"""`make bench`: our exporter against the physical limits and SqlToS3Operator, on the same data.

Generates one day of `events` (default 1,000,000 rows) in PostgreSQL, starts SeaweedFS, and
measures in one run, each path in its own process (wall time, peak RSS of the process tree):

* COPY baseline: `psql -o FILE -c 'COPY (the events query) TO STDOUT CSV'`
* upload baseline: boto3 `upload_file` of that CSV to SeaweedFS
* SqlToS3Operator (amazon provider, defaults) running the same query
* ours: the package's export of `events` (the code `export_tables` runs), plain and gzip

Repeated runs, medians. Our output is checked byte for byte against tests/reference.py (a
plain, slow, obviously correct path) so a fast wrong exporter cannot pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from devtools.seaweedfs import Identity, SeaweedFS

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
PG = "postgresql://postgres@127.0.0.1:5432"
DB = "se_bench"
APP = "com.bench.app"
DAY = dt.date(2026, 3, 7)
BUCKET = "bench"
IDENTITY = Identity(
    "bench", "BENCHKEY000000000001", "bench-secret-value", [f"{v}:{BUCKET}" for v in ("Read", "Write", "List")]
)
PYTHON = sys.executable


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run ``cmd``; return (wall seconds, peak RSS bytes of the process tree, stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.monotonic() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{err[-3000:]}")
    return wall, peak, out


def events_query() -> str:
    """The package's events SQL with the benchmark's values bound by psycopg (same query for all paths)."""
    sys.path.insert(0, str(ROOT / "plugins"))
    import psycopg

    from subscription_exports import source
    from subscription_exports.integrations import S3_EXPORT
    from subscription_exports.windows import day_window

    params = source.QueryParams(APP, day_window(DAY), S3_EXPORT.all_event_types, True, False).for_dialect("postgres")
    with psycopg.connect(f"{PG}/{DB}") as conn:
        return psycopg.ClientCursor(conn).mogrify(source.read_sql("postgres", "events"), params)


OURS = textwrap.dedent(
    """
    import datetime as dt, json, sys
    sys.path[:0] = [{plugins!r}]
    from subscription_exports import exporter, s3, source
    from subscription_exports.config import validate_destination
    from subscription_exports.integrations import S3_EXPORT
    from subscription_exports.windows import day_window
    dest = validate_destination({dest!r}, S3_EXPORT, origin="bench")
    dialect, conn = source.connect("bench_source")
    result = exporter.export_table(integration=S3_EXPORT, spec=S3_EXPORT.table("events"), dest=dest,
        window=day_window(dt.date.fromisoformat({day!r})), dialect=dialect, connection=conn,
        client=s3.s3_client("bench_s3"), run_id="bench")
    print(json.dumps(result.to_dict()))
    """
)

SQL_TO_S3 = textwrap.dedent(
    """
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
    op = SqlToS3Operator(task_id="sql_to_s3", query=open({query!r}).read(), s3_bucket={bucket!r},
        s3_key="sqltos3/events.csv", sql_conn_id="bench_source", aws_conn_id="bench_s3", replace=True)
    op.execute(context={{}})
    """
)

UPLOAD = textwrap.dedent(
    """
    import boto3
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url={endpoint!r}, aws_access_key_id={key!r}, aws_secret_access_key={secret!r},
        region_name="us-east-1", config=Config(s3={{"addressing_style": "path"}}))
    c.upload_file({path!r}, {bucket!r}, "baseline/events.csv")
    """
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark the events export")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (median reported)")
    parser.add_argument("--sqltos3-repeat", type=int, default=1, help="SqlToS3Operator is slow; runs of it")
    parser.add_argument("--skip-sqltos3", action="store_true")
    parser.add_argument("--no-verify", action="store_true", help="skip the byte-for-byte reference check")
    parser.add_argument("--reuse-data", action="store_true", help="keep the database of a previous run")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "plugins"))
    sys.path.insert(0, str(ROOT / "tests"))

    WORK.mkdir(exist_ok=True)
    if not args.reuse_data:
        prepare_database(args.rows)
    query = events_query()
    query_file = WORK / "events_query.sql"
    query_file.write_text(query)

    weed_dir = WORK / "seaweedfs"
    shutil.rmtree(weed_dir, ignore_errors=True)
    results: dict[str, list[tuple[float, int]]] = {}
    outputs: dict[str, str] = {}
    with SeaweedFS(weed_dir, [IDENTITY], buckets=[BUCKET]) as store:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(WORK / "airflow"),
            "AIRFLOW_CONN_BENCH_SOURCE": f"{PG}/{DB}",
            "AIRFLOW_CONN_BENCH_S3": json.dumps(
                {
                    "conn_type": "aws",
                    "login": IDENTITY.access_key,
                    "password": IDENTITY.secret_key,
                    "extra": {
                        "endpoint_url": store.endpoint_url,
                        "config_kwargs": {"s3": {"addressing_style": "path"}},
                    },
                }
            ),
        }
        csv_path = Path(tempfile.gettempdir()) / "se_bench_copy.csv"
        copy_sql = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)"
        copy_cmd = ["psql", f"{PG}/{DB}", "-q", "-o", str(csv_path), "-c", copy_sql]
        upload_cmd = [
            PYTHON,
            "-c",
            UPLOAD.format(
                endpoint=store.endpoint_url,
                key=IDENTITY.access_key,
                secret=IDENTITY.secret_key,
                path=str(csv_path),
                bucket=BUCKET,
            ),
        ]
        plain = {"name": "bench", "conn_id": "bench_s3", "bucket": BUCKET, "folder": "ours", "app_id": APP}
        gz = {**plain, "folder": "ours-gzip", "gzip": True}
        ours_cmd = [PYTHON, "-c", OURS.format(plugins=str(ROOT / "plugins"), dest=plain, day=DAY.isoformat())]
        gzip_cmd = [PYTHON, "-c", OURS.format(plugins=str(ROOT / "plugins"), dest=gz, day=DAY.isoformat())]
        sql_cmd = [PYTHON, "-c", SQL_TO_S3.format(query=str(query_file), bucket=BUCKET)]

        for i in range(args.repeat):
            # interleave the paths so drift on the machine affects them alike
            for name, cmd in (("copy", copy_cmd), ("upload", upload_cmd), ("ours", ours_cmd), ("ours_gzip", gzip_cmd)):
                wall, peak, out = measure(cmd, env)
                results.setdefault(name, []).append((wall, peak))
                if name.startswith("ours"):
                    outputs[name] = out
                print(f"run {i + 1}/{args.repeat} {name:10s} {wall:7.1f} s  {peak / 2**20:7.0f} MB", flush=True)
        if not args.skip_sqltos3:
            for i in range(args.sqltos3_repeat):
                wall, peak, _ = measure(sql_cmd, env)
                results.setdefault("sqltos3", []).append((wall, peak))
                print(f"run {i + 1}/{args.sqltos3_repeat} SqlToS3Operator {wall:7.1f} s  {peak / 2**20:7.0f} MB")

        ours = json.loads(outputs["ours"].strip().splitlines()[-1])
        client = store.admin_client()
        body = client.get_object(Bucket=BUCKET, Key=ours["key"])["Body"].read()
        verdict = verify(body, args) if not args.no_verify else "not checked (--no-verify)"
        gz = json.loads(outputs["ours_gzip"].strip().splitlines()[-1])
        csv_path.unlink(missing_ok=True)

    report(results, rows=ours["rows"], csv_bytes=ours["bytes"], gzip_bytes=gz["bytes"], verdict=verdict, args=args)
    return 0 if verdict.startswith("identical") or args.no_verify else 1


def prepare_database(rows: int) -> None:
    import psycopg

    from subscription_exports.synthetic import generate

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    started = time.monotonic()
    counts = generate(
        f"{PG}/{DB}", apps=[APP], start=DAY, days=1, rows_per_day=rows, seed=5, recreate=True, tables={"events"}
    )
    print(f"generated {counts} in {time.monotonic() - started:.0f} s", flush=True)


def verify(body: bytes, args: argparse.Namespace) -> str:
    import reference as ref

    from subscription_exports.integrations import S3_EXPORT

    started = time.monotonic()
    src = ref.load_source(f"{PG}/{DB}")
    start = dt.datetime.combine(DAY, dt.time.min, tzinfo=dt.UTC)
    expected = ref.expected_events(
        src, app_id=APP, start=start, end=start + dt.timedelta(days=1), event_types=set(S3_EXPORT.all_event_types)
    )
    took = time.monotonic() - started
    if body == expected:
        return f"identical to the reference exporter (sha256 {hashlib.sha256(body).hexdigest()[:16]}..., {took:.0f} s)"
    return f"DIFFERENT from the reference exporter ({len(body)} vs {len(expected)} bytes)"


def report(results, *, rows: int, csv_bytes: int, gzip_bytes: int, verdict: str, args) -> None:
    med = {k: (statistics.median(w for w, _ in v), max(p for _, p in v)) for k, v in results.items()}
    labels = {
        "copy": "COPY (query) TO file, psql",
        "upload": "boto3 upload_file of that CSV",
        "sqltos3": "SqlToS3Operator (defaults)",
        "ours": "ours: events export, PostgreSQL -> S3",
        "ours_gzip": "ours with gzip",
    }
    print(f"\n{rows:,} events rows, {csv_bytes / 1e6:.0f} MB CSV ({gzip_bytes / 1e6:.0f} MB gzip); "
          f"medians of {args.repeat} runs (SqlToS3Operator: {args.sqltos3_repeat}); peak RSS = max\n")  # fmt: skip
    print("| path | wall | peak RSS | rows/s |")
    print("|---|---:|---:|---:|")
    for key, label in labels.items():
        if key in med:
            wall, peak = med[key]
            print(f"| {label} | {wall:.1f} s | {peak / 2**20:.0f} MB | {rows / wall:,.0f} |")
    ours, floor = med["ours"][0], med["copy"][0] + med["upload"][0]
    print(f"\nours / (COPY + upload) = {ours / floor:.2f}x   (bar: at most 2x)")
    if "sqltos3" in med:
        print(f"SqlToS3Operator / ours = {med['sqltos3'][0] / ours:.1f}x faster   (bar: at least 5x)")
    print(f"gzip cost: {med['ours_gzip'][0] / ours:.2f}x the time, {gzip_bytes / csv_bytes:.0%} of the bytes")
    print(f"peak RSS of our export: {med['ours'][1] / 2**20:.0f} MB   (bar: at most 300 MB)")
    print(f"output: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
