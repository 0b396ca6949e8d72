"""Targets, ``generate`` and the command line (``python -m devtools.synthetic``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Iterator

from devtools.synthetic.context import _AppContext
from devtools.synthetic.events import _event_rows
from devtools.synthetic.profiles import _profile_rows
from devtools.synthetic.schema import ALL_TABLES, DEPENDENCIES, SQL_DIR
from devtools.synthetic.ua import _campaign_rows, _metric_rows, _ua_event_rows
from devtools.synthetic.visits import _visit_rows
from devtools.synthetic.writers import _pg_copy, _sqlite_insert

log = logging.getLogger(__name__)


def parse_target(url: str) -> tuple[str, str]:
    """-> (dialect, connect argument): ('postgres', dsn) or ('sqlite', path)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise ValueError("sqlite target needs a path: sqlite:///path/to/file.db")
        return "sqlite", path
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+")[0] in ("postgresql", "postgres"):
        return "postgres", f"postgresql://{rest}"
    raise ValueError(f"unsupported target {url!r}: use postgresql://user@host:port/db or sqlite:///path")


def schema_sql(dialect: str) -> str:
    return (SQL_DIR / dialect / "schema.sql").read_text(encoding="utf-8")


def _resolve_tables(tables: Iterable[str] | None) -> list[str]:
    if tables is None:
        return list(ALL_TABLES)
    wanted = set(tables)
    unknown = wanted - set(ALL_TABLES)
    if unknown:
        raise ValueError(f"unknown table(s) {sorted(unknown)}; known: {', '.join(ALL_TABLES)}")
    for t in list(wanted):
        wanted.update(DEPENDENCIES.get(t, ()))
    return [t for t in ALL_TABLES if t in wanted]


def table_rows(
    table: str, *, apps: list[str], start: dt.date, days: int, rows_per_day: int, seed: int
) -> Iterator[list]:
    """All rows of ``table`` in load order (apps, then days), as lists in COLUMNS order."""
    for app in apps:
        ctx = _AppContext(seed, app, start, days, rows_per_day)
        if table == "profiles":
            for k in range(days + 1):
                yield from _profile_rows(ctx, k)
        elif table == "ua_campaigns":
            yield from _campaign_rows(ctx)
        else:
            for k in range(1, days + 1):
                if table == "events":
                    yield from _event_rows(ctx, k, rows_per_day)
                elif table == "paywall_visits":
                    yield from _visit_rows(ctx, k, rows_per_day)
                elif table == "ua_events":
                    yield from _ua_event_rows(ctx, k, rows_per_day)
                elif table == "ua_ad_metrics_daily":
                    yield from _metric_rows(ctx, k)
                else:
                    raise ValueError(f"unknown table {table!r}")


def generate(
    target_url: str,
    *,
    apps: list[str],
    start: dt.date,
    days: int,
    rows_per_day: int,
    seed: int,
    recreate: bool = False,
    tables: Iterable[str] | None = None,
) -> dict[str, int]:
    """Generate and load synthetic data; returns rows written per table.

    ``tables`` (default: all six) names the tables to fill; dimension tables the named ones join
    to are added (events/paywall_visits/ua_events -> profiles; ua_* -> ua_campaigns).
    ``recreate`` drops the six tables and re-creates them from the schema file; otherwise the
    schema is created if missing and rows are appended (same arguments twice collide on keys).
    """
    if not apps:
        raise ValueError("at least one app is needed")
    if days < 1 or rows_per_day < 1:
        raise ValueError("days and rows_per_day must be >= 1")
    if isinstance(start, dt.datetime):
        start = start.date()
    chosen = _resolve_tables(tables)
    dialect, arg = parse_target(target_url)
    kwargs = dict(apps=list(apps), start=start, days=days, rows_per_day=rows_per_day, seed=seed)
    counts: dict[str, int] = {}
    if dialect == "postgres":
        import psycopg2

        conn = psycopg2.connect(arg)
        try:
            conn.set_client_encoding("UTF8")
            with conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
                cur.execute("SET synchronous_commit = off")
                if recreate:
                    cur.execute(f"DROP TABLE IF EXISTS {', '.join(ALL_TABLES)} CASCADE")
                cur.execute(schema_sql("postgres"))
            conn.commit()
            for table in chosen:
                t0 = time.monotonic()
                counts[table] = _pg_copy(conn, table, table_rows(table, **kwargs))
                conn.commit()
                log.info("%s: %d rows copied in %.1f s", table, counts[table], time.monotonic() - t0)
            t0 = time.monotonic()
            with conn.cursor() as cur:
                for table in chosen:
                    cur.execute(f"ANALYZE {table}")
            conn.commit()
            log.info("analyze: %.1f s", time.monotonic() - t0)
        finally:
            conn.close()
    else:
        import sqlite3

        conn = sqlite3.connect(arg)
        try:
            if recreate:
                for table in ALL_TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.executescript(schema_sql("sqlite"))
            for table in chosen:
                t0 = time.monotonic()
                with conn:
                    counts[table] = _sqlite_insert(conn, table, table_rows(table, **kwargs))
                log.info("%s: %d rows inserted in %.1f s", table, counts[table], time.monotonic() - t0)
        finally:
            conn.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.synthetic",
        description="Deterministic synthetic source data for tests, the demo and the benchmark.",
    )
    parser.add_argument("--target", required=True, help="postgresql://user@host:port/db or sqlite:///path/to/file.db")
    parser.add_argument("--apps", required=True, help="comma-separated app ids")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rows-per-day", type=int, default=1000, help="events rows per app per day (about)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--recreate", action="store_true", help="drop and re-create the six tables first")
    parser.add_argument("--tables", default=None, help=f"comma-separated subset of: {', '.join(ALL_TABLES)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    apps = [a.strip() for a in args.apps.split(",") if a.strip()]
    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    t0 = time.monotonic()
    try:
        counts = generate(
            args.target,
            apps=apps,
            start=args.start,
            days=args.days,
            rows_per_day=args.rows_per_day,
            seed=args.seed,
            recreate=args.recreate,
            tables=tables,
        )
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.monotonic() - t0
    print(json.dumps(counts))
    print(f"done in {elapsed:.1f} s")
    return 0
