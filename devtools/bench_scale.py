"""`make bench-scale`: one run of `s3_export` over many destinations (default 1,100) on a RUNNING Airflow.

Proves that more destinations than Airflow's default ``[core] max_map_length`` (1024) export when
the setting is raised, and measures what sizes a deployment, per destination at demo scale (tiny
tables: the fixed costs, not the data):

* wall time of the run; per `export_tables` map index: queue wait, task duration, and the phases of
  the task body from its last log line (``destination ... done in ...``: imports, config =
  read/validate/key check, check = S3 client + write probe, export = source connection + every
  table); task start = duration - body;
* CPU seconds of each Airflow component's process tree during the run (scheduler itself, executor
  workers with the task processes, api-server, dag-processor) -> per destination, and destinations
  per hour per worker core;
* rows the run leaves in the metadata database, per table.

Components: tests/airflow_cluster.py (api-server, scheduler with the LocalExecutor, dag-processor,
PostgreSQL metadata database), SeaweedFS, a seeded PostgreSQL source. Heavy: minutes of every core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from devtools.airflow_env import aws_connection_json, source_connection
from devtools.seaweedfs import Identity, SeaweedFS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
WORK = ROOT / ".bench"
PG = "postgresql://postgres@127.0.0.1:5432"
SOURCE_DB, META_DB = "se_bench_scale", "se_bench_scale_meta"
APP = "com.bench.scale"
DAY = dt.date(2026, 3, 7)
BUCKET = "scale"
IDENTITY = Identity(
    "scale", "SCALEKEY000000000001", "scale-secret-value", [f"{v}:{BUCKET}" for v in ("Read", "Write", "List")]
)
# export_tables' last line (tasks._log_timings), e.g. "destination d-1 done in 0.412 s: imports 0.101 s,
# configuration 0.020 s, destination check 0.051 s, export 0.240 s".
TIMINGS = re.compile(
    r"destination (?P<destination>\S+) done in (?P<body>[\d.]+) s: imports (?P<imports>[\d.]+) s, "
    r"configuration (?P<config>[\d.]+) s, destination check (?P<check>[\d.]+) s, export (?P<export>[\d.]+) s"
)


def recreate_database(name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return f"{PG}/{name}"


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, live and already reaped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def own_cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def cpu_snapshot(af: Any) -> dict[str, float]:
    scheduler = af.procs["scheduler"].pid
    snap = {name: tree_cpu(proc.pid) for name, proc in af.procs.items()}
    snap["scheduler (own process)"] = own_cpu(scheduler)
    return snap


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def metadata_rows(af: Any, run_id: str) -> dict[str, int]:
    """Rows tied to the run in every metadata table with a run_id column, plus asset events and log rows."""
    tables = af.query(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'run_id'"
    )
    rows = {}
    for t in sorted({r["table_name"] for r in tables}):
        count = af.query(f'SELECT count(*) AS n FROM "{t}" WHERE run_id = %s', run_id)[0]["n"]
        if count:
            rows[t] = count
    rows["asset_event"] = af.query("SELECT count(*) AS n FROM asset_event WHERE source_run_id = %s", run_id)[0]["n"]
    rows["(total)"] = sum(rows.values())
    return rows


def api_requests(log: Path, offset: int) -> dict[str, int]:
    """Requests the api-server finished after `offset` in its log, by method and path (ids and names folded)."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    counts: dict[str, int] = {}
    for method, path in re.findall(r"request finished.*?method=(\w+) path=(\S+)", text):
        path = re.sub(r"/[0-9a-f-]{36}", "/{id}", path)
        path = re.sub(r"^/execution/xcoms/[^/]+/[^/]+/[^/]+/", "/execution/xcoms/{dag}/{run}/{task}/", path)
        path = re.sub(r"^/execution/(variables|connections)/.*", r"/execution/\1/{name}", path)
        counts[f"{method} {path}"] = counts.get(f"{method} {path}", 0) + 1
    counts["(total)"] = sum(counts.values())
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--destinations", type=int, default=1100)
    parser.add_argument("--parallelism", type=int, default=8, help="[core] parallelism (LocalExecutor workers)")
    parser.add_argument("--max-map-length", type=int, default=5000)
    parser.add_argument("--rows-per-day", type=int, default=5, help="source rows per table and day (tiny)")
    parser.add_argument("--timeout", type=int, default=4 * 3600)
    args = parser.parse_args()

    from airflow_cluster import running_airflow

    from devtools.synthetic import generate

    WORK.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scale-", dir=WORK))
    (work / "airflow").mkdir()
    source_url = recreate_database(SOURCE_DB)
    generate(source_url, apps=[APP], start=DAY, days=1, rows_per_day=args.rows_per_day, seed=3, recreate=True)
    destinations = [
        {"name": f"dest-{i:05d}", "conn_id": "exports_s3", "bucket": BUCKET, "folder": f"d{i:05d}", "app_id": APP}
        for i in range(args.destinations)
    ]
    variable = json.dumps({"source_conn_id": "subscription_source", "destinations": destinations})
    report: dict[str, Any] = {
        "destinations": args.destinations,
        "parallelism": args.parallelism,
        "max_map_length": args.max_map_length,
        "cpu_count": psutil.cpu_count(),
        "load_before": [round(x, 2) for x in psutil.getloadavg()],
    }
    with (
        SeaweedFS(work / "s3", [IDENTITY], buckets=[BUCKET]) as store,
        running_airflow(
            work / "airflow",
            recreate_database(META_DB),
            expect_dags=["s3_export"],
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
            AIRFLOW__CORE__PARALLELISM=str(args.parallelism),
            AIRFLOW__CORE__MAX_MAP_LENGTH=str(args.max_map_length),
            AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=str(args.parallelism),
            SUBSCRIPTION_EXPORTS_MAX_ACTIVE_EXPORTS=str(args.parallelism),
            AIRFLOW_VAR_S3_EXPORT_DESTINATIONS=variable,
            AIRFLOW_CONN_SUBSCRIPTION_SOURCE=source_connection(source_url),
            AIRFLOW_CONN_EXPORTS_S3=aws_connection_json(store.endpoint_url, IDENTITY.access_key, IDENTITY.secret_key),
        ) as af,
    ):
        af.cli("dags", "unpause", "s3_export")
        run_id = "bench-scale"
        api_log_start = af.log_path("api-server").stat().st_size
        before = cpu_snapshot(af)
        wall0 = time.monotonic()
        conf = {"date_from": DAY.isoformat(), "date_to": DAY.isoformat()}
        af.cli("dags", "trigger", "s3_export", "--run-id", run_id, "--conf", json.dumps(conf))
        deadline = time.monotonic() + args.timeout
        last_print = 0.0
        while True:
            run = af.runs().get(run_id)
            if run and run["state"] in ("success", "failed"):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {args.timeout}s: {af.task_states(run_id)}")
            if time.monotonic() - last_print > 60:
                done = af.query(
                    "SELECT state, count(*) AS n FROM task_instance WHERE run_id = %s GROUP BY state", run_id
                )
                print(f"[{time.monotonic() - wall0:7.0f}s] {[(r['state'], r['n']) for r in done]}", flush=True)
                last_print = time.monotonic()
            af.check_alive()
            time.sleep(5)
        wall = time.monotonic() - wall0
        after = cpu_snapshot(af)
        report["load_after"] = [round(x, 2) for x in psutil.getloadavg()]
        report["run_state"] = run["state"]
        report["wall_seconds"] = round(wall, 1)
        tis = af.query(
            "SELECT task_id, map_index, state, "
            "EXTRACT(EPOCH FROM (end_date - start_date)) AS duration, "
            "EXTRACT(EPOCH FROM (start_date - queued_dttm)) AS queued, start_date, end_date "
            "FROM task_instance WHERE run_id = %s",
            run_id,
        )
        exports = [t for t in tis if t["task_id"].endswith("export_tables")]
        report["task_states"] = {
            s: sum(1 for t in tis if t["state"] == s) for s in sorted({str(t["state"]) for t in tis})
        }
        report["export_tables"] = {
            "count": len(exports),
            "duration_s": stats([float(t["duration"]) for t in exports if t["duration"] is not None]),
            "queue_wait_s": stats([float(t["queued"]) for t in exports if t["queued"] is not None]),
        }
        first = min(t["start_date"] for t in exports)
        last = max(t["end_date"] for t in exports)
        report["export_span_seconds"] = round((last - first).total_seconds(), 1)
        # Phases of each task body, from its log; task start = duration - body.
        phases: dict[str, list[float]] = {k: [] for k in ("imports", "config", "check", "export", "body", "start")}
        durations = {t["map_index"]: float(t["duration"] or 0) for t in exports}
        logs = af.home / "logs" / "dag_id=s3_export" / f"run_id={run_id}" / "task_id=destination.export_tables"
        for path in logs.rglob("*.log"):
            match = TIMINGS.search(path.read_text(errors="replace"))
            index = re.search(r"map_index=(\d+)", str(path))
            if not match or not index:
                continue
            values = {k: float(match[k]) for k in ("imports", "config", "check", "export", "body")}
            for key, value in values.items():
                phases[key].append(value)
            phases["start"].append(durations.get(int(index.group(1)), 0.0) - values["body"])
        report["export_tables_phases_s"] = {k: stats(v) for k, v in phases.items()}
        cpu = {name: round(after[name] - before.get(name, 0.0), 1) for name in after}
        report["cpu_seconds"] = cpu
        n = args.destinations
        worker = cpu["scheduler"] - cpu["scheduler (own process)"]
        report["per_destination_cpu_s"] = {
            "scheduler (own process)": round(cpu["scheduler (own process)"] / n, 3),
            "executor + task processes": round(worker / n, 3),
            "api-server": round(cpu["api-server"] / n, 3),
            "dag-processor": round(cpu["dag-processor"] / n, 3),
        }
        report["destinations_per_hour_per_worker_core"] = round(3600 / (worker / n)) if worker else None
        report["metadata_rows"] = metadata_rows(af, run_id)
        report["execution_api_requests"] = api_requests(af.log_path("api-server"), api_log_start)
        keys = 0
        paginator = store.admin_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET):
            keys += page.get("KeyCount", 0)
        report["objects_written"] = keys
    out = WORK / f"scale-{args.destinations}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    print(f"report: {out}")
    return 0 if report["run_state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
