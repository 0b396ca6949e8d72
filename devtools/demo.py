"""`make demo`: the real export DAGs on embedded defaults (SQLite source, local SeaweedFS).

Seeds a SQLite source with demo data for two apps, starts SeaweedFS on loopback with a
least-privilege identity, runs both DAGs with `airflow dags test` for the last few days
(using the shipped include/destinations/*.yaml), downloads every object into demo-output/
mirroring bucket/key, prints what was written, and stops SeaweedFS. Safe to run again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from devtools import airflow_env
from devtools.seaweedfs import Identity, SeaweedFS, list_all_keys

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".demo"
OUTPUT = ROOT / "demo-output"
APPS = ["com.acme.ios", "com.acme.android"]
BUCKETS = ["adapty-events", "adapty-ua"]
DAGS = ["s3_export", "custom_s3_ua_export"]
DEMO_IDENTITY = Identity(
    name="demo-exporter",
    access_key="DEMOEXPORTER00000001",
    secret_key="demo-exporter-secret",
    actions=[f"{verb}:{bucket}" for bucket in BUCKETS for verb in ("Read", "Write", "List")],
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2, help="how many past days to export (default 2)")
    parser.add_argument("--rows-per-day", type=int, default=300)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "plugins"))
    from devtools.synthetic import generate

    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=args.days)
    WORK.mkdir(exist_ok=True)
    source_db = WORK / "source.db"
    counts = generate(
        f"sqlite:///{source_db}",
        apps=APPS,
        start=first_day,
        days=args.days,
        rows_per_day=args.rows_per_day,
        seed=2026,
        recreate=True,
    )
    print(f"seeded {source_db.relative_to(ROOT)}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))

    home = WORK / "airflow"
    airflow_env.migrate(home)
    weed_dir = WORK / "seaweedfs"
    shutil.rmtree(weed_dir, ignore_errors=True)  # a fresh, empty store each time
    with SeaweedFS(weed_dir, [DEMO_IDENTITY], buckets=BUCKETS) as store:
        print(f"SeaweedFS S3 on {store.endpoint_url} (identity with Read/Write/List on {', '.join(BUCKETS)} only)")
        connections = {
            "subscription_source": airflow_env.source_connection(str(source_db)),
            "exports_s3": airflow_env.aws_connection_json(
                store.endpoint_url, DEMO_IDENTITY.access_key, DEMO_IDENTITY.secret_key
            ),
        }
        for offset in range(args.days, 0, -1):
            day = (today - dt.timedelta(days=offset)).isoformat()
            for dag_id in DAGS:
                started = time.monotonic()
                result = airflow_env.dags_test(home, dag_id, logical_date=day, connections=connections)
                status = "ok" if result.returncode == 0 else "FAILED"
                print(f"airflow dags test {dag_id} {day}: {status} ({time.monotonic() - started:.0f} s)")
                if result.returncode != 0:
                    log = WORK / f"{dag_id}-{day}.log"
                    log.write_text(result.stdout + result.stderr)
                    print(f"  see {log.relative_to(ROOT)}")
                    return 1
        download(store.admin_client())
    return 0


def download(client) -> None:
    shutil.rmtree(OUTPUT, ignore_errors=True)
    rows = []
    for bucket in BUCKETS:
        for key in list_all_keys(client, bucket):
            target = OUTPUT / bucket / key
            target.parent.mkdir(parents=True, exist_ok=True)
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            target.write_bytes(body)
            if key.endswith(".manifest.json"):
                manifest = json.loads(body)
                rows.append((f"{bucket}/{manifest['object']['key']}", manifest["rows"], manifest["bytes"]))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'object':<{width}}  {'rows':>7}  {'bytes':>9}")
    for name, count, size in sorted(rows):
        print(f"{name:<{width}}  {count:>7}  {size:>9}")
    print(f"\n{len(rows)} files (+ manifests) downloaded to {OUTPUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    sys.exit(main())
