"""`make bench-deliveries`: the deliveries page's server work at scale (default 1,100 destinations x 14 days).

A PostgreSQL metadata database migrated by Airflow (`airflow db migrate`) is filled with what 14 daily
runs of `s3_export` over N destinations leave behind, row for row as the export tasks write it: per run a
dag_run, the resolve_window and load_destinations task instances with their XComs (the window, the N
names), N export_tables map indexes (97% success with their return value: rows, bucket, key, bytes per
table; 3% failed with the cause XCom), and the destinations Variable (N entries, validated as a run
validates them). Then, in this process, what one page request does after authentication:
`store.read_matrix` (five queries, the matrix) and the HTML (`page.matrix_page`), and the JSON
(`matrix.json`): wall and CPU seconds, the first request (the configuration validated: cached until
it changes) and the median of the next ones. No S3 call, no log read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from devtools.bench_scale import recreate_database

ROOT = Path(__file__).resolve().parents[1]
META_DB = "se_bench_deliveries_meta"
DAG_ID = "s3_export"
LAST_DAY = dt.date(2026, 3, 20)


def destinations(count: int) -> list[dict]:
    return [
        {"name": f"dest-{i:05d}", "conn_id": "exports_s3", "bucket": "scale", "folder": f"d/dest-{i:05d}",
         "app_id": f"com.bench.app{i % 50}"}
        for i in range(count)
    ]  # fmt: skip


def _row_makers(tis: list, xcoms: list, dag_run_id: int, run_id: str, end: dt.datetime) -> tuple:
    """Appenders of task_instance and xcom rows of one run (the columns the inserts below name)."""

    def ti(task_id: str, map_index: int, state: str, label: str | None = None) -> None:
        tis.append((str(uuid.uuid4()), task_id, DAG_ID, run_id, map_index, 1, 0, "default_pool", 1,
                    state, end, end + dt.timedelta(minutes=5), label, "not_started"))  # fmt: skip

    def xcom(task_id: str, map_index: int, key: str, value: object) -> None:
        xcoms.append((dag_run_id, task_id, map_index, key, DAG_ID, run_id, end, json.dumps(value)))

    return ti, xcom


def fill(url: str, count: int, days: int) -> int:
    """The metadata rows of `days` daily runs over `count` destinations; returns the rows written."""
    import psycopg2
    import psycopg2.extras

    names = [d["name"] for d in destinations(count)]
    conn = psycopg2.connect(url)
    written = 0
    with conn, conn.cursor() as cur:
        for n in range(days):
            day = LAST_DAY - dt.timedelta(days=days - 1 - n)
            start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
            run_id = f"backfill__{start.isoformat()}"
            cur.execute(
                "INSERT INTO dag_run (dag_id, run_id, run_type, run_after, logical_date, data_interval_start, "
                "data_interval_end, state, start_date, end_date, conf, clear_number, span_status) "
                "VALUES (%s, %s, 'backfill', %s, %s, %s, %s, 'success', %s, %s, '{}', 0, 'not_started') RETURNING id",
                (DAG_ID, run_id, end, start, start, end, end, end + dt.timedelta(minutes=20)),
            )
            dag_run_id = cur.fetchone()[0]
            tis: list[tuple] = []
            xcoms: list[tuple] = []
            ti, xcom = _row_makers(tis, xcoms, dag_run_id, run_id, end)

            ti("resolve_window", -1, "success")
            xcom("resolve_window", -1, "return_value", {"start": start.isoformat(), "end": end.isoformat(),
                                                        "kind": "daily"})  # fmt: skip
            ti("load_destinations", -1, "success")
            xcom("load_destinations", -1, "return_value", names)
            for i, name in enumerate(names):
                failed = (i * 7 + n) % 33 == 0  # about 3%
                ti("destination.export_tables", i, "failed" if failed else "success", f"{name} (#{i})")
                if failed:
                    cause = (f"destination '{name}' (connection 'exports_s3', bucket 'scale'): check failed: "
                             "AccessDenied")  # fmt: skip
                    xcom("destination.export_tables", i, "delivery",
                         {"cause": cause, "table": None, "try_number": 1})  # fmt: skip
                    continue
                objects = {
                    t: {"bucket": "scale", "key": f"d/{name}/{t}/dt={day}/{t}_{day}.csv",
                        "manifest_key": f"d/{name}/{t}/dt={day}/{t}_{day}.csv.manifest.json", "bytes": 1000 + i}
                    for t in ("events", "paywall_visits")
                }  # fmt: skip
                xcom(
                    "destination.export_tables",
                    i,
                    "return_value",
                    {"destination": name, "window": str(day), "rows": {"events": 10 + i, "paywall_visits": 5}},
                )
                xcom("destination.export_tables", i, "delivery", {"objects": objects})  # fmt: skip
            psycopg2.extras.execute_values(
                cur,
                "INSERT INTO task_instance (id, task_id, dag_id, run_id, map_index, try_number, max_tries, pool, "
                "pool_slots, state, start_date, end_date, rendered_map_index, span_status) VALUES %s",
                tis,
                page_size=2000,
            )
            psycopg2.extras.execute_values(
                cur,
                'INSERT INTO xcom (dag_run_id, task_id, map_index, key, dag_id, run_id, "timestamp", value) VALUES %s',
                xcoms,
                template="(%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                page_size=2000,
            )
            written += 1 + len(tis) + len(xcoms)
    with conn, conn.cursor() as cur:
        cur.execute("ANALYZE")
    conn.close()
    return written


def measure(count: int, days: int, repeat: int) -> dict:
    from subscription_exports.deliveries import matrix, page, store

    shown = matrix.day_range(LAST_DAY, days)
    samples = []
    for _ in range(repeat + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        mx = store.read_matrix(DAG_ID, shown)
        read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
        html = page.matrix_page(mx, prefix="/deliveries", ui_base="", rows=mx.rows, filters={}, apps=[])
        html_wall, html_cpu = time.perf_counter() - wall, time.process_time() - cpu
        body = json.dumps(mx.to_dict())
        json_wall = time.perf_counter() - wall - html_wall + read_wall
        samples.append({"read": (read_wall, read_cpu), "html": (html_wall, html_cpu), "json": json_wall,
                        "html_bytes": len(html), "json_bytes": len(body), "rows": len(mx.rows),
                        "delivered": mx.delivered(shown[-1])})  # fmt: skip
    first, rest = samples[0], samples[1:]
    return {"first": first, "median": {
        "read": (statistics.median(s["read"][0] for s in rest), statistics.median(s["read"][1] for s in rest)),
        "html": (statistics.median(s["html"][0] for s in rest), statistics.median(s["html"][1] for s in rest)),
        "json": statistics.median(s["json"] for s in rest),
    }}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-deliveries", description=__doc__.split("\n\n")[0])
    parser.add_argument("--destinations", type=int, default=1100)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    url = recreate_database(META_DB)
    home = Path(tempfile.mkdtemp(prefix="bench-deliveries-airflow-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.replace("postgresql://", "postgresql+psycopg2://", 1),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_VAR_S3_EXPORT_DESTINATIONS": json.dumps(
            {"source_conn_id": "subscription_source", "destinations": destinations(args.destinations)}),
    })  # fmt: skip
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=600)
    started = time.perf_counter()
    rows = fill(url, args.destinations, args.days)
    print(f"metadata database: {rows:,} rows of {args.days} runs x {args.destinations:,} destinations "
          f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
    sys.path.insert(0, str(ROOT / "plugins"))
    import warnings

    warnings.simplefilter("ignore")
    import airflow.settings

    warnings.simplefilter("ignore")
    result = measure(args.destinations, args.days, args.repeat)
    first, median = result["first"], result["median"]
    print(f"page of {args.destinations:,} destinations x {args.days} days ({first['rows']:,} rows, "
          f"{first['html_bytes'] / 1e6:.1f} MB HTML, {first['json_bytes'] / 1e6:.1f} MB JSON; last day "
          f"{first['delivered'][0]} of {first['delivered'][1]} delivered)")  # fmt: skip
    print("| request | matrix read (wall / CPU s) | + HTML (wall / CPU s) | matrix + JSON (wall s) |")
    print("|---|---|---|---|")
    print(f"| first (configuration validated) | {first['read'][0]:.3f} / {first['read'][1]:.3f} | "
          f"{first['html'][0]:.3f} / {first['html'][1]:.3f} | {first['json']:.3f} |")  # fmt: skip
    print(f"| median of the next {args.repeat} | {median['read'][0]:.3f} / {median['read'][1]:.3f} | "
          f"{median['html'][0]:.3f} / {median['html'][1]:.3f} | {median['json']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
