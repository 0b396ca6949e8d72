"""`make bench-deliveries`: the deliveries page's server work at scale (default 1,100 destinations x 14 days).

A PostgreSQL metadata database migrated by Airflow (`airflow db migrate`) is filled with what 14 daily
runs of `s3_export` over N destinations leave behind, row for row as the export tasks write it: per run a
dag_run, the resolve_window and load_destinations task instances with their XComs (the window, the N
names), N export_tables map indexes (97% success: their return value, rows per table, and their
`delivery` XCom, bucket, key, bytes per table; 3% failed: the cause in that XCom), and the destinations
Variable in the database (N entries, validated as a run validates them). Then, in this process, what one
page request does after authentication: `store.read_matrix` (five queries, the matrix), the HTML
(`page.matrix_page`) and the JSON: wall and CPU seconds, the first request (imports; the configuration
validated, then cached until it changes) and the median of the next ones. Then the same two routes
through a running api-server, signed in (`--no-http` skips it). No S3 call, no log read.
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
        # The Variable in the database, as `airflow variables set` leaves it (not encrypted: no Fernet key is
        # needed to read it back); too long for an AIRFLOW_VAR_ environment variable at 1,100 destinations.
        document = {"source_conn_id": "subscription_source", "destinations": destinations(count)}
        cur.execute(
            "INSERT INTO variable (key, val, is_encrypted) VALUES (%s, %s, false)",
            ("s3_export_destinations", json.dumps(document)),
        )
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
                rows = {"events": 10 + i, "paywall_visits": 5}
                objects = {
                    t: {"bucket": "scale", "key": f"d/{name}/{t}/dt={day}/{t}_{day}.csv",
                        "manifest_key": f"d/{name}/{t}/dt={day}/{t}_{day}.csv.manifest.json", "bytes": 1000 + i}
                    for t in ("events", "paywall_visits")
                }  # fmt: skip
                xcom(
                    "destination.export_tables",
                    i,
                    "return_value",
                    {"destination": name, "window": str(day), "rows": rows},
                )
                xcom("destination.export_tables", i, "delivery", {"rows": rows, "objects": objects})  # fmt: skip
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
    parser.add_argument("--no-http", action="store_true", help="only the in-process measurement")
    args = parser.parse_args(argv)

    url = recreate_database(META_DB)
    home = Path(tempfile.mkdtemp(prefix="bench-deliveries-airflow-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.replace("postgresql://", "postgresql+psycopg2://", 1),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    })  # fmt: skip
    airflow_bin = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow_bin), "db", "migrate"], check=True, capture_output=True, timeout=600)
    started = time.perf_counter()
    rows = fill(url, args.destinations, args.days)
    print(f"metadata database: {rows:,} rows of {args.days} runs x {args.destinations:,} destinations "
          f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
    sys.path.insert(0, str(ROOT / "plugins"))
    import warnings

    warnings.simplefilter("ignore")
    import airflow.settings  # noqa: F401  (initialised before the package reads Variables)

    warnings.simplefilter("ignore")
    result = measure(args.destinations, args.days, args.repeat)
    first, median = result["first"], result["median"]
    print(f"page of {args.destinations:,} destinations x {args.days} days ({first['rows']:,} rows, "
          f"{first['html_bytes'] / 1e6:.1f} MB HTML, {first['json_bytes'] / 1e6:.1f} MB JSON; last day "
          f"{first['delivered'][0]} of {first['delivered'][1]} delivered)")  # fmt: skip
    print("| request | matrix read (wall / CPU s) | + HTML (wall / CPU s) | matrix + JSON (wall s) |")
    print("|---|---|---|---|")
    print(f"| first (imports, configuration validated) | {first['read'][0]:.3f} / {first['read'][1]:.3f} | "
          f"{first['html'][0]:.3f} / {first['html'][1]:.3f} | {first['json']:.3f} |")  # fmt: skip
    print(f"| median of the next {args.repeat} | {median['read'][0]:.3f} / {median['read'][1]:.3f} | "
          f"{median['html'][0]:.3f} / {median['html'][1]:.3f} | {median['json']:.3f} |")  # fmt: skip
    if not args.no_http:
        http = measure_http(home, matrix_days(args.days), args.repeat)
        print(f"through a running api-server (GET /deliveries/dags/{DAG_ID}, signed in; first request, then "
              f"the median of {args.repeat}):")  # fmt: skip
        print("| route | first: wall / api-server CPU s | median: wall / api-server CPU s | bytes |")
        print("|---|---|---|---|")
        for route, (first_s, median_s, size) in http.items():
            print(f"| {route} | {first_s[0]:.3f} / {first_s[1]:.3f} | {median_s[0]:.3f} / {median_s[1]:.3f} | "
                  f"{size:,} |")  # fmt: skip
    return 0


def matrix_days(days: int) -> tuple[dt.date, dt.date]:
    return LAST_DAY - dt.timedelta(days=days - 1), LAST_DAY


def measure_http(home: Path, days: tuple[dt.date, dt.date], repeat: int) -> dict:
    """Wall time of each request on loopback and the api-server's CPU seconds it took (psutil), after
    authentication by the simple auth manager (a token of its all-admins mode)."""
    import socket
    import urllib.request

    import psutil

    from devtools import airflow_env

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = airflow_env.airflow_env(
        home,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        AIRFLOW__API__BASE_URL=base,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
    )
    log = (home / "api-server.log").open("wb")
    server = subprocess.Popen(
        [str(airflow_env.AIRFLOW_BIN), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the api-server did not start: see {home / 'api-server.log'}") from None
                time.sleep(1)
        with urllib.request.urlopen(f"{base}/auth/token", timeout=30) as resp:
            token = json.loads(resp.read())["access_token"]
        tree = [psutil.Process(server.pid)]

        def cpu() -> float:
            procs = tree + tree[0].children(recursive=True)
            return sum(p.cpu_times().user + p.cpu_times().system for p in procs if p.is_running())

        found = {}
        query = f"?from={days[0]}&to={days[1]}"
        for route in (f"/deliveries/dags/{DAG_ID}{query}", f"/deliveries/dags/{DAG_ID}/matrix.json{query}"):
            samples = []
            for _ in range(repeat + 1):
                request = urllib.request.Request(f"{base}{route}", headers={"Authorization": f"Bearer {token}"})
                before, wall = cpu(), time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as resp:
                    size = len(resp.read())
                samples.append((time.perf_counter() - wall, cpu() - before))
            rest = samples[1:]
            median = (statistics.median(w for w, _ in rest), statistics.median(c for _, c in rest))
            found[route.split("?")[0]] = (samples[0], median, size)
        return found
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
