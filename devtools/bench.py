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
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from devtools import pgserver
from devtools.airflow_env import source_connection
from devtools.seaweedfs import Identity, SeaweedFS
from devtools.threadcpu import SAMPLER

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
PG = ""  # postgresql://postgres@HOST:PORT, chosen in main() by devtools.pgserver
DB = "se_bench"
APP = "com.bench.app"
DAY = dt.date(2026, 3, 7)
BUCKET = "bench"
IDENTITY = Identity(
    "bench", "BENCHKEY000000000001", "bench-secret-value", [f"{v}:{BUCKET}" for v in ("Read", "Write", "List")]
)
PYTHON = sys.executable


@dataclass(frozen=True)
class Measured:
    """One run of one path: wall seconds, peak RSS of the process tree, CPU seconds, stdout."""

    wall: float
    peak: int
    cpu: float  # user + system of the process and every child it waited for (os.wait4)
    out: str
    faults: int = 0  # minor page faults of the same (a fresh page mapped in: the cost of a fresh buffer)
    anon: int = 0  # of the peak: anonymous memory (the rest is file-backed, mostly shared libraries' code)


def tree_memory(ps: psutil.Process) -> tuple[int, int]:
    """(RSS, anonymous) bytes of a process and its children, from the kernel's counters in
    /proc/PID/status (cheap: smaps_rollup walks every page, which would load the machine it measures);
    anonymous is 0 where those are missing (RSS then comes from psutil)."""
    rss = anon = 0
    for proc in [ps, *ps.children(recursive=True)]:
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                fields = dict(line.split()[:2] for line in status if line.startswith("Rss"))
            anon += int(fields["RssAnon:"]) * 1024
            rss += sum(int(fields[k]) for k in ("RssAnon:", "RssFile:", "RssShmem:")) * 1024
        except (OSError, KeyError, ValueError):
            rss += proc.memory_info().rss
    return rss, anon


def evict_library_pages(prefix: Path = Path(sys.prefix)) -> int:
    """Drop the page cache of the environment's shared libraries that no process maps; how many files.

    Why: a library's pages count in a process's RSS as the kernel maps them, and a kernel with large
    page-cache folios (Linux 6.x on ext4) maps whole folios. How big those are depends on how the
    file got into the cache: written by ``pip install`` (a fresh venv, as in CI), they are large, and
    the same export peaks about 25 MB higher (measured: 285 against 259 MB at 1M rows, all of it
    file-backed) than when the libraries were read in by the loader's own page faults, as on a
    worker whose libraries were installed before it last started. Evicting them first measures
    every run in that second state, whatever the machine did before.
    """
    evicted = 0
    for path in prefix.glob("lib/python*/site-packages/**/*.so*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fdatasync(fd)  # only clean pages can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # pages mapped by a process stay
            evicted += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return evicted


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` and measure it. CPU comes from the kernel's accounting of the finished process
    (``os.wait4``), which moves far less than wall time when a neighbour loads the machine."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, env=env, stdout=out_file, stderr=err_file)
        ps = psutil.Process(proc.pid)
        peak = peak_anon = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                rss, anon = tree_memory(ps)
                if rss > peak:
                    peak, peak_anon = rss, anon
            except psutil.Error:
                pass
            time.sleep(0.02)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(errors="replace"), err_file.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{err[-3000:]}")
    return Measured(wall, peak, usage.ru_utime + usage.ru_stime, out, usage.ru_minflt, peak_anon)


def query_params(table: str, dialect: str) -> dict:
    """The values the exporter binds for `table` with a destination's default settings."""
    from subscription_exports import exporter
    from subscription_exports.config import validate_destination
    from subscription_exports.integrations import INTEGRATIONS
    from subscription_exports.windows import day_window

    integration = next(i for i in INTEGRATIONS.values() if table in i.table_names)
    dest = validate_destination(bench_destination("defaults"), integration, origin="bench")
    return exporter.source_query(integration, integration.table(table), dest, day_window(DAY), dialect)[1]


def bench_destination(folder: str, **settings) -> dict:
    return {"name": "bench", "conn_id": "bench_s3", "bucket": BUCKET, "folder": folder, "app_id": APP, **settings}


def ours_cmd(
    table: str, dest: dict, source_conn: str = "bench_source", root: Path = ROOT, *, dry_run: bool = False
) -> list[str]:
    """Our export of ``table`` in a process of its own; ``root``: another checkout's code (--compare-root);
    ``dry_run``: the dry run of the same export (everything but the upload, exporter.dry_run_table)."""
    from subscription_exports.integrations import INTEGRATIONS

    integration = next(i for i in INTEGRATIONS.values() if table in i.table_names)
    code = OURS.format(
        plugins=str(root / "plugins"),
        root=str(root),
        integration=integration.dag_id,
        dest=dest,
        source_conn=source_conn,
        table=table,
        day=DAY.isoformat(),
        function="dry_run_table" if dry_run else "export_table",
        stored="" if dry_run else ', client=client, run_id="bench"',
    )
    return [PYTHON, "-c", code]


def bound_query(table: str = "events", db: str = DB) -> str:
    """The package's SQL for `table` with the benchmark's values bound by psycopg (same query for all paths)."""
    sys.path.insert(0, str(ROOT / "plugins"))
    import psycopg

    from subscription_exports import source

    with psycopg.connect(f"{PG}/{db}") as conn:
        return psycopg.ClientCursor(conn).mogrify(source.read_sql("postgres", table), query_params(table, "postgres"))


# The Airflow paths start timing their task once `airflow.sdk` is imported: a real task process
# is forked by a worker that has Airflow loaded already (the process wall is reported as well).
TASK_PRELUDE = "import time, airflow.sdk; TASK_STARTED = time.monotonic(); TASK_CPU = time.process_time()\n"
TASK_EPILOGUE = (  # a .format() template
    '\nprint(f"task_seconds={{time.monotonic() - TASK_STARTED:.3f}}")'
    '\nprint(f"task_cpu_seconds={{time.process_time() - TASK_CPU:.3f}}")\n'
)

OURS = TASK_PRELUDE + textwrap.dedent(
    """
    import datetime as dt, json, sys
    sys.path[:0] = [{plugins!r}, {root!r}]
    from devtools.threadcpu import ThreadCpu
    from subscription_exports import exporter, s3, source
    from subscription_exports.config import validate_destination
    from subscription_exports.integrations import INTEGRATIONS
    from subscription_exports.windows import day_window
    integration = INTEGRATIONS[{integration!r}]
    dest = validate_destination({dest!r}, integration, origin="bench")
    dialect, conn = source.connect({source_conn!r})
    client = s3.s3_client("bench_s3")
    with ThreadCpu() as threads:
        result = exporter.{function}(integration=integration, spec=integration.table({table!r}), dest=dest,
            window=day_window(dt.date.fromisoformat({day!r})), dialect=dialect, connection=conn{stored})
    print("thread_cpu=" + json.dumps(threads.by_group()))
    print(json.dumps(result.to_dict()))
    """
).replace("print(json.dumps", TASK_EPILOGUE.strip() + "\nprint(json.dumps")

# The plain floor for SQLite (no COPY there): the same SQL, same bound values, csv.writer to a file.
SQLITE_DUMP = textwrap.dedent(
    """
    import csv, sqlite3
    con = sqlite3.connect({path!r})
    cur = con.execute(open({query!r}).read(), {params!r})
    with open({out!r}, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([d[0] for d in cur.description])
        while rows := cur.fetchmany(10000):
            w.writerows(rows)
    """
)

SQL_TO_S3 = (
    TASK_PRELUDE
    + textwrap.dedent(
        """
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
    op = SqlToS3Operator(task_id="sql_to_s3", query=open({query!r}).read(), s3_bucket={bucket!r},
        s3_key="sqltos3/events.csv", sql_conn_id="bench_source", aws_conn_id="bench_s3", replace=True)
    op.execute(context={{}})
    """
    )
    + TASK_EPILOGUE
)

UPLOAD = textwrap.dedent(
    """
    import boto3
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url={endpoint!r}, aws_access_key_id={key!r}, aws_secret_access_key={secret!r},
        region_name="us-east-1", config=Config(s3={{"addressing_style": "path"}}))
    c.upload_file({path!r}, {bucket!r}, {object_key!r})
    """
)


OTHER_TABLES = ("paywall_visits", "ua_events", "campaign_performance")
OTHERS_DB = "se_bench_all"
OTHER_SOURCE_TABLES = {"paywall_visits", "ua_events", "ua_ad_metrics_daily"}  # campaign_performance reads the last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark the exports against COPY + upload and SqlToS3Operator")
    parser.add_argument("--rows", type=int, default=1_000_000, help="events rows of the benchmark day")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (median reported)")
    parser.add_argument("--sqltos3-repeat", type=int, default=1, help="SqlToS3Operator is slow; runs of it")
    parser.add_argument("--skip-sqltos3", action="store_true")
    parser.add_argument(
        "--others-rows",
        type=int,
        default=200_000,
        help="rows per day for the other tables, PostgreSQL and SQLite (0 skips that part)",
    )
    parser.add_argument("--skip-events", action="store_true", help="only the other tables and SQLite")
    parser.add_argument("--no-verify", action="store_true", help="skip the byte-for-byte reference check")
    parser.add_argument("--reuse-data", action="store_true", help="keep the databases of a previous run")
    parser.add_argument(
        "--keep-page-cache",
        action="store_true",
        help="do not evict the environment's shared libraries from the page cache first (evict_library_pages): "
        "RSS then depends on how they got there",
    )
    parser.add_argument(
        "--compare-root",
        type=Path,
        help="another checkout of this repository (e.g. a git worktree of an older commit): its export runs "
        "interleaved with ours, same data and store, for a before/after ratio in one run",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "plugins"))
    sys.path.insert(0, str(ROOT / "tests"))
    WORK.mkdir(exist_ok=True)
    if not args.keep_page_cache:
        print(f"page cache: evicted {evict_library_pages()} shared libraries of {sys.prefix} (--keep-page-cache)")

    global PG
    server = pgserver.ensure_postgres()
    PG = server.url
    print(f"PostgreSQL: {server.kind} server on {server.host}:{server.port}", flush=True)
    if server.kind == "embedded" and args.reuse_data:
        print("--reuse-data ignored: the embedded server starts empty", flush=True)
        args.reuse_data = False
    weed_dir = WORK / "seaweedfs"
    shutil.rmtree(weed_dir, ignore_errors=True)
    ok = True
    try:
        with SeaweedFS(weed_dir, [IDENTITY], buckets=[BUCKET]) as store:
            if not args.skip_events:
                ok &= events_phase(store, args)
            if args.others_rows:
                ok &= others_phase(store, args)
    finally:
        server.stop()
    return 0 if ok else 1


def bench_env(store: SeaweedFS, source_url: str) -> dict[str, str]:
    """The environment of every measured path: this one's, without what importing the package set
    here (its allocator and thread settings), so that SqlToS3Operator runs with its own defaults as
    in a task of its own; our export's process sets them again when it imports the package."""
    import subscription_exports

    inherited = {k: v for k, v in os.environ.items() if k not in subscription_exports.ENVIRONMENT_SET_ON_IMPORT}
    return {
        **inherited,
        "AIRFLOW_HOME": str(WORK / "airflow"),
        "AIRFLOW_CONN_BENCH_SOURCE": source_url,
        "AIRFLOW_CONN_BENCH_S3": json.dumps(
            {
                "conn_type": "aws",
                "login": IDENTITY.access_key,
                "password": IDENTITY.secret_key,
                "extra": {"endpoint_url": store.endpoint_url, "config_kwargs": {"s3": {"addressing_style": "path"}}},
            }
        ),
    }


def upload_cmd(store: SeaweedFS, path: Path, key: str) -> list[str]:
    code = UPLOAD.format(
        endpoint=store.endpoint_url,
        key=IDENTITY.access_key,
        secret=IDENTITY.secret_key,
        path=str(path),
        bucket=BUCKET,
        object_key=key,
    )
    return [PYTHON, "-c", code]


def events_phase(store: SeaweedFS, args: argparse.Namespace) -> bool:
    if not args.reuse_data:
        prepare_database(DB, args.rows, tables={"events"})
    query = bound_query()
    query_file = WORK / "events_query.sql"
    query_file.write_text(query)
    env = bench_env(store, f"{PG}/{DB}")
    results: dict[str, list[Measured]] = {}
    task_times: dict[str, list[float]] = {}
    task_cpu: dict[str, list[float]] = {}
    threads: list[dict[str, float]] = []
    outputs: dict[str, str] = {}
    csv_path = Path(tempfile.gettempdir()) / "se_bench_copy.csv"
    copy_cmd = [pgserver.psql(), f"{PG}/{DB}", "-q", "-o", str(csv_path), "-c", copy_sql(query)]
    plain_cmd = ours_cmd("events", bench_destination("ours"))
    gzip_cmd = ours_cmd("events", bench_destination("ours-gzip", gzip=True))
    parquet_cmd = ours_cmd("events", bench_destination("ours-parquet", format="parquet"))
    snappy_cmd = ours_cmd("events", bench_destination("ours-snappy", format="parquet", compression="snappy"))
    system_cmd = ours_cmd("events", bench_destination("ours-system"))
    dry_run_cmd = ours_cmd("events", bench_destination("ours"), dry_run=True)
    system_env = {**env, "SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR": "system"}
    sql_cmd = [PYTHON, "-c", SQL_TO_S3.format(query=str(query_file), bucket=BUCKET)]
    paths = [
        ("copy", copy_cmd, env, args.repeat),
        ("upload", upload_cmd(store, csv_path, "baseline/events.csv"), env, args.repeat),
        ("ours", plain_cmd, env, args.repeat),
        ("ours_gzip", gzip_cmd, env, args.repeat),
        ("ours_parquet", parquet_cmd, env, args.repeat),
        ("ours_snappy", snappy_cmd, env, args.repeat),
        ("ours_system", system_cmd, system_env, args.repeat),
        ("ours_dry_run", dry_run_cmd, env, args.repeat),
    ]
    if args.compare_root:
        compare_cmd = ours_cmd("events", bench_destination("compared"), root=args.compare_root.resolve())
        paths.append(("compared", compare_cmd, env, args.repeat))
    if not args.skip_sqltos3:
        paths.append(("sqltos3", sql_cmd, env, args.sqltos3_repeat))
    for i in range(max(n for *_, n in paths)):
        # interleave the paths so drift on the machine affects them alike
        for name, cmd, path_env, runs in paths:
            if i >= runs:
                continue
            run = measure(cmd, path_env)
            results.setdefault(name, []).append(run)
            if name != "copy" and name != "upload":
                outputs[name] = run.out
                task_times.setdefault(name, []).append(task_seconds(run.out))
                by_thread = thread_cpu(run.out)
                spent = task_seconds(run.out, "task_cpu_seconds")
                # our paths run the per-thread sampler (devtools.threadcpu): the bench's instrument,
                # not the export, so its own CPU is not the task's
                spent = spent - by_thread.get(SAMPLER, 0.0) if spent is not None else None
                task_cpu.setdefault(name, []).append(spent)
                if name == "ours":
                    threads.append(by_thread)
            print(
                f"run {i + 1}/{runs} {name:10s} {run.wall:7.1f} s wall  {run.cpu:7.1f} s CPU  "
                f"{run.peak / 2**20:7.0f} MB",
                flush=True,
            )

    ours = last_json(outputs["ours"])
    body = store.admin_client().get_object(Bucket=BUCKET, Key=ours["key"])["Body"].read()
    verdict = verify(body, "events", f"{PG}/{DB}") if not args.no_verify else "not checked (--no-verify)"
    gz = last_json(outputs["ours_gzip"])
    stored = {name: last_json(outputs[name]) for name in FORMATS if name in outputs}
    for name in ("ours_parquet", "ours_snappy"):
        # The Parquet files hold the same rows: their footer's count against the CSV's.
        footer = parquet_rows(store.admin_client(), stored[name]["key"])
        if footer != ours["rows"]:
            verdict = f"DIFFERENT: {name} holds {footer} rows, the CSV {ours['rows']}"
    dry = last_json(outputs["ours_dry_run"])
    if (dry["rows"], dry["bytes"], dry["sha256"]) != (ours["rows"], ours["bytes"], ours["sha256"]):
        verdict = f"DIFFERENT: the dry run reported {dry['rows']} rows, {dry['bytes']} bytes, sha256 {dry['sha256']}"
    fence = fence_seconds(csv_path, args.repeat)
    csv_path.unlink(missing_ok=True)
    report(
        results,
        task_times,
        task_cpu,
        threads,
        rows=ours["rows"],
        csv_bytes=ours["bytes"],
        gzip_bytes=gz["bytes"],
        stored_bytes={name: result["bytes"] for name, result in stored.items()},
        verdict=verdict,
        fence=fence,
        args=args,
    )
    return verdict.startswith("identical") or args.no_verify


# The formats `make bench` prints side by side (issue 38): path name -> label.
FORMATS = {
    "ours": "plain CSV",
    "ours_gzip": "gzip CSV (ISA-L)",
    "ours_parquet": "Parquet, zstd",
    "ours_snappy": "Parquet, snappy",
}


def parquet_rows(client, key: str) -> int:
    import pyarrow.parquet as pq

    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return pq.ParquetFile(io.BytesIO(body)).metadata.num_rows


def report_formats(
    task: dict[str, float], tcpu: dict[str, float], peak: dict[str, int], stored_bytes: dict[str, int]
) -> None:
    """The formats side by side, each against plain CSV (bars: gzip 1.3x task CPU and 1.15x task time,
    at most 30% of the bytes; Parquet 1.5x task CPU, at most 25% of the bytes)."""
    print("\n| format | task CPU | task time | peak RSS | bytes | CPU / plain | time / plain | bytes / plain |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in FORMATS.items():
        if key in tcpu and key in stored_bytes:
            print(
                f"| {label} | {tcpu[key]:.1f} s | {task[key]:.1f} s | {peak[key] / 2**20:.0f} MB "
                f"| {stored_bytes[key] / 1e6:.1f} MB | {tcpu[key] / tcpu['ours']:.2f}x "
                f"| {task[key] / task['ours']:.2f}x "
                f"| {stored_bytes[key] / stored_bytes['ours']:.1%} |"
            )
    # The Parquet bars are the default's (zstd); snappy, printed beside it, trades bytes for speed.
    bars = {"ours_gzip": (1.3, 1.15, 0.30), "ours_parquet": (1.5, None, 0.25)}
    for key, (cpu_bar, time_bar, bytes_bar) in bars.items():
        if key not in tcpu or key not in stored_bytes:
            continue
        met = tcpu[key] / tcpu["ours"] <= cpu_bar and stored_bytes[key] / stored_bytes["ours"] <= bytes_bar
        met = met and (time_bar is None or task[key] / task["ours"] <= time_bar)
        time_text = f", {time_bar}x task time" if time_bar else ""
        print(f"{FORMATS[key]}: {'meets' if met else 'MISSES'} its bars ({cpu_bar}x task CPU{time_text}, "
              f"{bytes_bar:.0%} of the bytes)")  # fmt: skip


def others_phase(store: SeaweedFS, args: argparse.Namespace) -> bool:
    """The other three tables, from PostgreSQL and from SQLite: ours against dump + upload of the same rows."""
    sqlite_path = WORK / "bench_all.db"
    if not args.reuse_data or not sqlite_path.exists():
        prepare_database(OTHERS_DB, args.others_rows, tables=OTHER_SOURCE_TABLES)
        sqlite_path.unlink(missing_ok=True)
        prepare_sqlite(sqlite_path, args.others_rows, tables=OTHER_SOURCE_TABLES)
    sources = {"postgres": f"{PG}/{OTHERS_DB}", "sqlite": f"sqlite:///{sqlite_path}"}
    dump = Path(tempfile.gettempdir()) / "se_bench_dump.csv"
    rows_out: list[tuple] = []
    ok = True
    for table in OTHER_TABLES:
        bodies: dict[str, bytes] = {}
        for dialect, url in sources.items():
            env = bench_env(store, url if dialect == "postgres" else source_connection(str(sqlite_path)))
            if dialect == "postgres":
                dump_cmd = [pgserver.psql(), url, "-q", "-o", str(dump), "-c", copy_sql(bound_query(table, OTHERS_DB))]
            else:
                query_file = WORK / f"{table}_sqlite.sql"
                query_file.write_text(read_sql("sqlite", table))
                code = SQLITE_DUMP.format(
                    path=str(sqlite_path), query=str(query_file), params=query_params(table, "sqlite"), out=str(dump)
                )
                dump_cmd = [PYTHON, "-c", code]
            paths = (
                ("dump", dump_cmd),
                ("upload", upload_cmd(store, dump, f"baseline/{table}.csv")),
                ("ours", ours_cmd(table, bench_destination(f"ours-{dialect}"))),
            )
            times: dict[str, list[tuple[float, int]]] = {}
            in_task: list[float] = []
            result: dict = {}
            for _ in range(args.repeat):
                for name, cmd in paths:
                    run = measure(cmd, env)
                    times.setdefault(name, []).append((run.wall, run.peak))
                    if name == "ours":
                        result = last_json(run.out)
                        in_task.append(task_seconds(run.out))
            bodies[dialect] = store.admin_client().get_object(Bucket=BUCKET, Key=result["key"])["Body"].read()
            med = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
            peak = max(p for _, p in times["ours"])
            rows_out.append(
                (
                    table,
                    dialect,
                    result["rows"],
                    med["dump"],
                    med["upload"],
                    med["ours"],
                    statistics.median(in_task),
                    peak,
                )
            )
            print(f"{table:22s} {dialect:8s} ours {med['ours']:6.1f} s  {peak / 2**20:5.0f} MB", flush=True)
        same = bodies["postgres"] == bodies["sqlite"]
        verdict = verify(bodies["postgres"], table, sources["postgres"]) if not args.no_verify else "not checked"
        ok &= same and (verdict.startswith("identical") or args.no_verify)
        print(f"{table}: PostgreSQL and SQLite files {'identical' if same else 'DIFFERENT'}; reference: {verdict}")
    dump.unlink(missing_ok=True)

    print(f"\nother tables, {args.others_rows:,} rows per day generated; medians of {args.repeat} runs\n")
    print("| table | source | rows | dump + upload | ours, process | ours, task | ratio (process / task) | peak RSS |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for table, dialect, rows, dump_s, up_s, ours_s, task_s, peak in rows_out:
        floor = dump_s + up_s
        print(
            f"| {table} | {dialect} | {rows:,} | {floor:.1f} s | {ours_s:.1f} s | {task_s:.1f} s "
            f"| {ours_s / floor:.2f}x / {task_s / floor:.2f}x | {peak / 2**20:.0f} MB |"
        )
    return ok


def copy_sql(query: str) -> str:
    return f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)"


def read_sql(dialect: str, table: str) -> str:
    from subscription_exports import source

    return source.read_sql(dialect, table)


def task_seconds(out: str, name: str = "task_seconds") -> float | None:
    """The task time (or, with ``task_cpu_seconds``, its CPU) an Airflow path printed: from after
    `import airflow.sdk` to the end."""
    for line in out.splitlines():
        if line.startswith(f"{name}="):
            return float(line.split("=", 1)[1])
    return None


def thread_cpu(out: str) -> dict[str, float]:
    """The CPU seconds per thread group our export printed (devtools.threadcpu)."""
    for line in out.splitlines():
        if line.startswith("thread_cpu="):
            return json.loads(line.split("=", 1)[1])
    return {}


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def prepare_database(db: str, rows: int, tables: set[str]) -> None:
    import psycopg

    from devtools.synthetic import generate

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    started = time.monotonic()
    counts = generate(
        f"{PG}/{db}", apps=[APP], start=DAY, days=1, rows_per_day=rows, seed=5, recreate=True, tables=tables
    )
    print(f"generated {counts} in PostgreSQL in {time.monotonic() - started:.0f} s", flush=True)


def prepare_sqlite(path: Path, rows: int, tables: set[str]) -> None:
    from devtools.synthetic import generate

    started = time.monotonic()
    counts = generate(f"sqlite:///{path}", apps=[APP], start=DAY, days=1, rows_per_day=rows, seed=5, tables=tables)
    print(f"generated {counts} in SQLite in {time.monotonic() - started:.0f} s", flush=True)


def verify(body: bytes, table: str, source_url: str) -> str:
    """Compare with tests/reference.py: plain Python over the source rows, written with `csv`."""
    import reference as ref

    from subscription_exports.integrations import CUSTOM_S3_UA_EXPORT, S3_EXPORT

    started = time.monotonic()
    src = ref.load_source(source_url)
    start = dt.datetime.combine(DAY, dt.time.min, tzinfo=dt.UTC)
    window = {"app_id": APP, "start": start, "end": start + dt.timedelta(days=1)}
    if table == "events":
        expected = ref.expected_events(src, event_types=set(S3_EXPORT.all_event_types), **window)
    elif table == "paywall_visits":
        expected = ref.expected_paywall_visits(src, **window)
    elif table == "ua_events":
        expected = ref.expected_ua_events(src, event_types=set(CUSTOM_S3_UA_EXPORT.all_event_types), **window)
    else:
        expected = ref.expected_campaign_performance(src, app_id=APP, date_from=DAY, date_to=DAY)
    took = time.monotonic() - started
    if body == expected:
        return f"identical to the reference exporter (sha256 {hashlib.sha256(body).hexdigest()[:16]}..., {took:.0f} s)"
    return f"DIFFERENT from the reference exporter ({len(body)} vs {len(expected)} bytes)"


# The fence measured as an export runs it: in a process of its own, the package imported first (it
# configures Arrow's jemalloc before pyarrow loads) and the export's allocator settings applied. In
# the bench's own process Arrow's pool is another one, and the fence's fresh buffers cost differently.
FENCE = textwrap.dedent(
    """
    import json, statistics, sys, time
    sys.path[:0] = [{plugins!r}]
    from subscription_exports import memory, parsing
    memory.bound_process_memory()
    path = {csv!r}
    with open(path, "rb") as f:
        columns = f.readline().decode().rstrip("\\r\\n").split(",")
    own = [0.0]  # CPU spent in the fence's own code: the byte counts and finding row ends

    def timed(function):
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                own[0] += time.thread_time() - started
        return wrapper

    parsing.ByteCounts.add = timed(parsing.ByteCounts.add)
    parsing.RowAlignedReader._last_row_end = timed(parsing.RowAlignedReader._last_row_end)

    def parse(fenced):
        own[0] = 0.0
        started, cpu = time.perf_counter(), time.process_time()
        with open(path, "rb", buffering=1 << 20) as stream:
            if fenced:
                for _ in parsing.open_parsed_chunks(stream, columns):
                    pass
            else:
                # Without the fence the encoder still needs each chunk's quoting flags, which the
                # audit computes from the buffer it counts: an unfenced parse computes them alone.
                values = parsing.ChunkValues()
                for batch in parsing.arrow_reader(stream, columns, block_size=parsing.CHUNK_BYTES):
                    values.load(batch)
                    values.special(batch)
        return time.perf_counter() - started, time.process_time() - cpu, own[0]

    runs = [(parse(False), parse(True)) for _ in range({runs})]
    bare, fenced = [run[0] for run in runs], [run[1] for run in runs]
    print(json.dumps([statistics.median(b[0] for b in bare), statistics.median(f[0] for f in fenced),
                      statistics.median(b[1] for b in bare), statistics.median(f[1] for f in fenced),
                      statistics.median(f[2] for f in fenced)]))
    """
)


def fence_seconds(csv_path: Path, repeat: int) -> tuple[float, float, float, float, float]:
    """Medians of parsing the COPY output as the export does, without and with the exactness fence
    (row-aligned reads and the byte-balance audit of subscription_exports.parsing), in a process set
    up as an export's (FENCE): (wall bare, wall fenced, CPU bare, CPU fenced, CPU of the fence's own
    code). Both compute each chunk's quoting flags, which the encoder needs either way. CPU counts
    every thread (Arrow parses on its own pool); runs alternate, at least 5 of each."""
    code = FENCE.format(plugins=str(ROOT / "plugins"), csv=str(csv_path), runs=max(repeat, 5))
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the fence measurement failed:\n{result.stderr[-3000:]}")
    return tuple(json.loads(result.stdout.strip().splitlines()[-1]))


def _spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else "-"


def report(
    results: dict[str, list[Measured]],
    task_times: dict[str, list[float]],
    task_cpu: dict[str, list[float]],
    threads: list[dict[str, float]],
    *,
    rows: int,
    csv_bytes: int,
    gzip_bytes: int,
    stored_bytes: dict[str, int],
    verdict: str,
    fence: tuple[float, float, float, float, float],
    args: argparse.Namespace,
) -> None:
    wall = {k: statistics.median(r.wall for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r.cpu for r in v) for k, v in results.items()}
    peak = {k: max(r.peak for r in v) for k, v in results.items()}
    peak_anon = {k: max(v, key=lambda r: r.peak).anon for k, v in results.items()}  # of the same sample
    faults = {k: statistics.median(r.faults for r in v) for k, v in results.items()}
    task = {k: statistics.median(v) for k, v in task_times.items()}
    tcpu = {k: statistics.median(v) for k, v in task_cpu.items()}
    labels = {
        "copy": "COPY (query) TO file, psql",
        "upload": "boto3 upload_file of that CSV",
        "sqltos3": "SqlToS3Operator (defaults)",
        "ours": "ours: events export, PostgreSQL -> S3",
        "ours_gzip": "ours with gzip",
        "ours_parquet": "ours, Parquet (zstd)",
        "ours_snappy": "ours, Parquet (snappy)",
        "ours_system": "ours, Arrow on the system allocator (SUBSCRIPTION_EXPORTS_ARROW_ALLOCATOR)",
        "ours_dry_run": "ours, dry run (everything but the upload)",
        "compared": f"the export of --compare-root {args.compare_root}",
    }
    print(f"\n{rows:,} events rows, {csv_bytes / 1e6:.0f} MB CSV ({gzip_bytes / 1e6:.0f} MB gzip); "
          f"medians of {args.repeat} runs (SqlToS3Operator: {args.sqltos3_repeat}); peak RSS = max; "
          "CPU = user + system of the process and its children (no path counts the server's CPU); "
          "task CPU of our paths without the bench's per-thread sampler\n")  # fmt: skip
    print("| path | process wall (spread) | process CPU (spread) | task time | task CPU | peak RSS (anonymous) "
          "| page faults "
          "| rows/s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in labels.items():
        if key in wall:
            walls, cpus = [r.wall for r in results[key]], [r.cpu for r in results[key]]
            in_task = f"{task[key]:.1f} s" if key in task else "-"
            in_task_cpu = f"{tcpu[key]:.1f} s" if key in tcpu else "-"
            print(
                f"| {label} | {wall[key]:.1f} s ({_spread(walls)}) | {cpu[key]:.1f} s ({_spread(cpus)}) | {in_task} "
                f"| {in_task_cpu} | {peak[key] / 2**20:.0f} MB ({peak_anon[key] / 2**20:.0f}) | {faults[key]:,.0f} "
                f"| {rows / wall[key]:,.0f} |"
            )
    ours, floor = wall["ours"], wall["copy"] + wall["upload"]
    print(f"\nours / (COPY + upload) = {ours / floor:.2f}x process wall, {task['ours'] / floor:.2f}x task time"
          "   (bar: at most 1.3x by task time)")  # fmt: skip
    print(f"CPU of our export: {cpu['ours']:.1f} s process, {tcpu['ours']:.1f} s task; "
          f"{tcpu['ours'] / rows * 1e6:.1f} CPU-s per million rows (task)")  # fmt: skip
    if "sqltos3" in wall:
        print(f"SqlToS3Operator / ours = {wall['sqltos3'] / ours:.2f}x faster by process wall, "
              f"{task['sqltos3'] / task['ours']:.2f}x by task time   (bar: at least 5x)")  # fmt: skip
        print(f"SqlToS3Operator CPU / ours = {cpu['sqltos3'] / cpu['ours']:.2f}x by process CPU, "
              f"{tcpu['sqltos3'] / tcpu['ours']:.2f}x by task CPU   (bar: at least 8x)")  # fmt: skip
    print(f"gzip cost: {wall['ours_gzip'] / ours:.2f}x the time, {cpu['ours_gzip'] / cpu['ours']:.2f}x the CPU, "
          f"{gzip_bytes / csv_bytes:.0%} of the bytes")  # fmt: skip
    report_formats(task, tcpu, peak, stored_bytes)
    print(
        f"peak RSS of our export: {peak['ours'] / 2**20:.0f} MB   (bar: at most 280 MB); of it "
        f"{peak_anon['ours'] / 2**20:.0f} MB anonymous, {(peak['ours'] - peak_anon['ours']) / 2**20:.0f} MB "
        f"file-backed (libraries' pages; {'as the machine had them' if args.keep_page_cache else 'read in fresh'})"
    )
    for key, what in (
        ("ours_system", "Arrow on the system allocator"),
        ("ours_dry_run", "a dry run (per destination and table)"),
        ("compared", "--compare-root"),
    ):
        if key in tcpu:
            print(f"{what}: {tcpu[key] / tcpu['ours']:.2f}x our task CPU, {task[key] / task['ours']:.2f}x "
                  f"the task time, peak RSS {peak[key] / 2**20:.0f} MB ({(peak[key] - peak['ours']) / 2**20:+.0f} MB)"
                  f"; ours = {tcpu['ours'] / tcpu[key]:.2f}x its task CPU")  # fmt: skip
    if threads:
        medians = {g: statistics.median(t.get(g, 0.0) for t in threads) for t2 in threads for g in t2}
        groups = sorted(medians, key=lambda g: -medians[g])
        print(f"\nCPU per thread of our export (medians of {len(threads)} runs; sampled every 50 ms):")
        for group in groups:
            values = [t.get(group, 0.0) for t in threads]
            per_m = statistics.median(values) / rows * 1e6
            print(f"  {group:42s} {statistics.median(values):6.2f} s   {per_m:5.2f} CPU-s per million rows")
    bare, fenced, bare_cpu, fenced_cpu, own_cpu = fence
    # The fence's cost to an export is what fenced parsing costs over Arrow reading the stream itself
    # and finding each chunk's quoting flags (an export without the fence would do exactly that); the
    # CPU of the fence's own code (counting, finding row ends) is printed beside it: the row-aligned
    # reads into reused buffers save part of it back.
    print(f"exactness fence (row-aligned reads + parse audit), in a process set up as an export's: parse "
          f"{bare:.2f} s bare, {fenced:.2f} s fenced ({bare_cpu:.2f} / {fenced_cpu:.2f} CPU-s): cost "
          f"{(fenced_cpu - bare_cpu) / tcpu['ours']:.1%} of the export's task CPU   (bar: at most 3%), "
          f"{(fenced - bare) / task['ours']:.1%} of its task time; the fence's own code {own_cpu:.2f} CPU-s "
          f"({own_cpu / tcpu['ours']:.1%})")  # fmt: skip
    print(f"output: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
