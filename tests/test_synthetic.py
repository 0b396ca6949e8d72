"""The synthetic-data generator: deterministic, identical in both dialects, edge cases present."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from devtools import synthetic as syn

ROOT = Path(__file__).resolve().parents[1]
APPS = ["com.acme.ios", "com.acme.android"]
START = dt.date(2026, 3, 1)
DAYS = 2
ARGS = dict(apps=APPS, start=START, days=DAYS, rows_per_day=150, seed=7)
DAY_LIST = [START + dt.timedelta(days=i) for i in range(DAYS)]

PRIMARY_KEYS = {
    "profiles": ("profile_id",),
    "events": ("event_id",),
    "paywall_visits": ("visit_id",),
    "ua_campaigns": ("app_id", "campaign_id"),
    "ua_events": ("ua_event_id",),
    "ua_ad_metrics_daily": ("app_id", "campaign_id", "adset_id", "ad_id", "date"),
}
FACT_TABLES = ("events", "paywall_visits", "ua_events")


def _sqlite_dump(path: Path, table: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        cols = ", ".join(syn.COLUMNS[table])
        order = ", ".join(PRIMARY_KEYS[table])
        return con.execute(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
    finally:
        con.close()


def _pg_norm(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _pg_dump(conn, table: str) -> list[tuple]:
    json_cols = syn.JSON_COLUMNS.get(table, ())
    cols = ", ".join(f"{c}::text" if c in json_cols else c for c in syn.COLUMNS[table])
    # COLLATE "C": byte order, like SQLite's default BINARY collation.
    order = ", ".join(f'{c} COLLATE "C"' if c != "date" else c for c in PRIMARY_KEYS[table])
    with conn.cursor() as cur:
        cur.execute(f"SELECT {cols} FROM {table} ORDER BY {order}")
        return [tuple(_pg_norm(v) for v in row) for row in cur.fetchall()]


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "source.db"
    counts = syn.generate(f"sqlite:///{path}", recreate=True, **ARGS)
    assert set(counts) == set(syn.ALL_TABLES)
    return path


@pytest.fixture(scope="module")
def pg_conn(pg_database_factory):
    import psycopg2

    conn = psycopg2.connect(pg_database_factory(**ARGS))
    conn.set_session(readonly=True, autocommit=True)
    yield conn
    conn.close()


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_rows(tmp_path, sqlite_db):
    again = tmp_path / "again.db"
    syn.generate(f"sqlite:///{again}", recreate=True, **ARGS)
    for table in syn.ALL_TABLES:
        assert _sqlite_dump(again, table) == _sqlite_dump(sqlite_db, table), table


def test_other_seed_other_rows(tmp_path, sqlite_db):
    other = tmp_path / "other.db"
    syn.generate(f"sqlite:///{other}", recreate=True, **{**ARGS, "seed": 8})
    assert _sqlite_dump(other, "events") != _sqlite_dump(sqlite_db, "events")


def test_table_subset_adds_dependencies_and_keeps_rows(tmp_path, sqlite_db):
    sub = tmp_path / "sub.db"
    counts = syn.generate(f"sqlite:///{sub}", recreate=True, tables={"events"}, **ARGS)
    assert set(counts) == {"profiles", "events"}
    assert _sqlite_dump(sub, "events") == _sqlite_dump(sqlite_db, "events")
    assert _sqlite_dump(sub, "ua_events") == []


def test_recreate_and_append(tmp_path):
    path = tmp_path / "append.db"
    url = f"sqlite:///{path}"
    small = {**ARGS, "apps": ["com.acme.ios"], "days": 1, "rows_per_day": 10}
    first = syn.generate(url, recreate=True, **small)
    syn.generate(url, recreate=False, **{**small, "start": START + dt.timedelta(days=1)})
    assert len(_sqlite_dump(path, "events")) == 2 * first["events"]
    syn.generate(url, recreate=True, **small)
    assert len(_sqlite_dump(path, "events")) == first["events"]


def test_cli(tmp_path):
    path = tmp_path / "cli.db"
    # From the repository root, as docs/development.md shows it: no PYTHONPATH needed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.synthetic",
            "--target",
            f"sqlite:///{path}",
            "--apps",
            "com.acme.ios",
            "--start",
            "2026-03-01",
            "--days",
            "1",
            "--rows-per-day",
            "20",
            "--seed",
            "7",
            "--recreate",
            "--tables",
            "events,ua_ad_metrics_daily",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    counts = json.loads(out.stdout.splitlines()[0])
    assert set(counts) == {"profiles", "events", "ua_campaigns", "ua_ad_metrics_daily"}
    assert counts["events"] == len(syn.EVENT_FIXTURES)  # rows_per_day below the fixture count


def test_runtime_package_is_only_the_product() -> None:
    """The generator is development tooling: nothing under plugins/ ships or imports it."""
    package = ROOT / "plugins" / "subscription_exports"
    assert not (package / "synthetic.py").exists()
    importers = [p.name for p in package.rglob("*.py") if "devtools" in p.read_text(encoding="utf-8")]
    assert importers == []


# ---------------------------------------------------------------------------------------------
# PostgreSQL and SQLite hold the same values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", syn.ALL_TABLES)
def test_postgres_matches_sqlite(pg_conn, sqlite_db, table):
    pg_rows = _pg_dump(pg_conn, table)
    lite_rows = _sqlite_dump(sqlite_db, table)
    assert len(pg_rows) == len(lite_rows) > 0
    for pg_row, lite_row in zip(pg_rows, lite_rows, strict=False):
        assert pg_row == lite_row


def test_sqlite_storage_classes(sqlite_db):
    con = sqlite3.connect(sqlite_db)
    kinds = con.execute(
        "SELECT DISTINCT typeof(revenue_usd), typeof(ab_test_revision), typeof(created_at) FROM events"
    ).fetchall()
    assert {k[0] for k in kinds} == {"real", "null"}
    assert {k[1] for k in kinds} == {"integer", "null"}
    assert {k[2] for k in kinds} == {"text"}
    bad = con.execute(
        "SELECT count(*) FROM events WHERE created_at NOT GLOB "
        "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]'"
    ).fetchone()[0]
    assert bad == 0
    # Money has at most 4 decimals and prints as a plain decimal.
    for (value,) in con.execute("SELECT revenue_usd FROM events WHERE revenue_usd IS NOT NULL"):
        text = repr(value)
        assert "e" not in text and Decimal(text) == Decimal(text).quantize(Decimal("0.0001"))


def test_postgres_keeps_empty_strings_apart_from_null(pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE paywall_name = ''), count(*) FILTER (WHERE paywall_name IS NULL),"
            " count(*) FILTER (WHERE paywall_name = 'None'), count(*) FILTER (WHERE paywall_name = 'NULL')"
            " FROM events"
        )
        empty, null, none_text, null_text = cur.fetchone()
    assert empty >= len(APPS) * DAYS and null > 0 and none_text >= len(APPS) * DAYS and null_text >= len(APPS) * DAYS


# ---------------------------------------------------------------------------------------------
# Edge cases, every app and every day
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite(sqlite_db):
    con = sqlite3.connect(sqlite_db)
    yield con
    con.close()


def _one(con, sql, *params):
    return con.execute(sql, params).fetchone()[0]


def _each_app_day():
    for app in APPS:
        for day in DAY_LIST:
            yield app, day.isoformat(), (day - dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "table,ts_col",
    [("events", "event_datetime"), ("paywall_visits", "paywall_showed_at"), ("ua_events", "event_datetime")],
)
def test_boundaries_and_late_arrivals(lite, table, ts_col):
    for app, day, prev in _each_app_day():
        q = f"SELECT count(*) FROM {table} WHERE app_id = ? AND "
        assert _one(lite, q + "created_at = ?", app, f"{day} 00:00:00.000000") >= 1
        assert _one(lite, q + "created_at = ?", app, f"{day} 23:59:59.999999") >= 1
        assert _one(lite, q + "created_at LIKE ? AND created_at LIKE '%.000000'", app, f"{day}%") >= 1
        assert _one(lite, q + "created_at LIKE ? AND created_at NOT LIKE '%.000000'", app, f"{day}%") >= 1
        late = _one(
            lite,
            q + f"created_at BETWEEN ? AND ? AND {ts_col} BETWEEN ? AND ?",
            app,
            f"{day} 00:00:00.000000",
            f"{day} 00:09:59.999999",
            f"{prev} 23:50:00.000000",
            f"{prev} 23:59:59.999999",
        )
        assert late >= 2, (table, app, day)
    # Every row belongs to a generated day, and only to the given apps.
    assert (
        _one(
            lite,
            f"SELECT count(*) FROM {table} WHERE created_at < ? OR created_at >= ?",
            f"{DAY_LIST[0]} 00:00:00.000000",
            f"{DAY_LIST[-1] + dt.timedelta(days=1)} 00:00:00.000000",
        )
        == 0
    )
    assert {r[0] for r in lite.execute(f"SELECT DISTINCT app_id FROM {table}")} == set(APPS)


@pytest.mark.parametrize("table", syn.ALL_TABLES)
def test_every_nullable_column_has_nulls(lite, table):
    for col in syn.COLUMNS[table]:
        if col in syn.NOT_NULL[table]:
            continue
        if table in FACT_TABLES:
            for app, day, _ in _each_app_day():
                n = _one(
                    lite,
                    f"SELECT count(*) FROM {table} WHERE app_id = ? AND created_at LIKE ? AND {col} IS NULL",
                    app,
                    f"{day}%",
                )
                assert n >= 1, (table, col, app, day)
        else:
            assert _one(lite, f"SELECT count(*) FROM {table} WHERE {col} IS NULL") >= 1, (table, col)


def test_profiles_without_and_before_install(lite):
    for app, day, _ in _each_app_day():
        created = "app_id = ? AND created_at LIKE ?"
        assert _one(lite, f"SELECT count(*) FROM events WHERE {created} AND profile_id IS NULL", app, f"{day}%") >= 1
        assert _one(lite, f"SELECT count(*) FROM ua_events WHERE {created} AND profile_id IS NULL", app, f"{day}%") >= 1
        before = _one(
            lite,
            "SELECT count(*) FROM events e JOIN profiles p USING (profile_id) "
            "WHERE e.app_id = ? AND e.created_at LIKE ? AND e.event_datetime < p.install_date",
            app,
            f"{day}%",
        )
        assert before >= 1
        before_campaign = _one(
            lite,
            "SELECT count(*) FROM ua_events u JOIN ua_campaigns c USING (app_id, campaign_id) "
            "WHERE u.app_id = ? AND u.created_at LIKE ? AND u.event_datetime < c.created_at",
            app,
            f"{day}%",
        )
        assert before_campaign >= 1
    # Every referenced profile exists, belongs to the same app and was created before its events,
    # apart from the deliberate "before install" history.
    for table, ts_col in (
        ("events", "event_datetime"),
        ("paywall_visits", "paywall_showed_at"),
        ("ua_events", "event_datetime"),
    ):
        dangling = _one(
            lite,
            f"SELECT count(*) FROM {table} t LEFT JOIN profiles p "
            f"ON p.profile_id = t.profile_id AND p.app_id = t.app_id "
            f"WHERE t.profile_id IS NOT NULL AND p.profile_id IS NULL",
        )
        assert dangling == 0, table
        inverted = _one(
            lite,
            f"SELECT count(*) FROM {table} t JOIN profiles p USING (profile_id) "
            f"WHERE t.{ts_col} < p.created_at AND NOT t.{ts_col} < p.install_date",
        )
        assert inverted == 0, table
        assert _one(lite, "SELECT count(*) FROM profiles WHERE install_date > created_at") == 0


@pytest.mark.parametrize(
    "table,column",
    [
        ("events", "paywall_name"),
        ("events", "product_id"),
        ("events", "cancellation_reason"),
        ("events", "ab_test_name"),
        ("paywall_visits", "paywall_name"),
        ("ua_events", "user_agent"),
        ("ua_events", "ad_name"),
        ("ua_events", "attribution_campaign"),
    ],
)
def test_hostile_text_every_day(lite, table, column):
    for app, day, _ in _each_app_day():
        values = {
            r[0]
            for r in lite.execute(
                f"SELECT {column} FROM {table} WHERE app_id = ? AND created_at LIKE ?", (app, f"{day}%")
            )
        }
        missing = [t for t in syn.HOSTILE_TEXT if t not in values]
        assert not missing, (table, column, app, day, missing)
    for needle in ("\n", "\r\n", '"', ",", "🎉", "Zoë", "日本語", "  leading"):
        assert any(needle in v for v in values if v)
    assert any(v.startswith("=") for v in values if v)
    assert {"NA", "null", "NaN", ""} <= values and None in values


def test_hostile_profiles_are_referenced(lite):
    for app, day, _ in _each_app_day():
        for table in FACT_TABLES:
            n = _one(
                lite,
                f"SELECT count(DISTINCT p.customer_user_id) FROM {table} t JOIN profiles p "
                f"USING (profile_id) WHERE t.app_id = ? AND t.created_at LIKE ?",
                app,
                f"{day}%",
            )
            assert n >= len(set(syn.HOSTILE_TEXT)) - 1, (table, app, day)  # '' and friends count once


def test_event_types_stores_currencies(lite):
    for app, day, _ in _each_app_day():
        where = "WHERE app_id = ? AND created_at LIKE ?"
        params = (app, f"{day}%")
        types = {r[0] for r in lite.execute(f"SELECT DISTINCT event_type FROM events {where}", params)}
        assert {t.lower() for t in types} == set(syn.EVENT_TYPES)
        assert {"Trial_Started", "SUBSCRIPTION_RENEWED"} <= types
        ua_types = {r[0] for r in lite.execute(f"SELECT DISTINCT event_type FROM ua_events {where}", params)}
        assert {t.lower() for t in ua_types} == set(syn.UA_EVENT_TYPES)
        assert any(t != t.lower() for t in ua_types)
        stores = {r[0] for r in lite.execute(f"SELECT DISTINCT store FROM events {where}", params)}
        assert {"app_store", "play_store", "stripe"} <= stores
        currencies = {r[0] for r in lite.execute(f"SELECT DISTINCT currency FROM events {where}", params)}
        assert set(syn.CURRENCIES) <= currencies
        envs = {r[0] for r in lite.execute(f"SELECT DISTINCT environment FROM events {where}", params)}
        assert {"Sandbox", "Production"} <= envs
        revenue = {r[0] for r in lite.execute(f"SELECT DISTINCT revenue_usd FROM events {where}", params)}
        assert {9.99, 0.1, 4.495, 1234.5, 0.0, 0.0001, 9999999.9999, None} <= revenue


def test_json_columns(lite):
    for table, col in (("profiles", "attributes"), ("ua_events", "custom_parameters")):
        values = [r[0] for r in lite.execute(f"SELECT {col} FROM {table}")]
        assert None in values and "{}" in values
        parsed = [json.loads(v) for v in values if v is not None]
        assert all(isinstance(p, dict) for p in parsed)
        assert any(any(isinstance(x, dict) for x in p.values()) for p in parsed)  # nested
        assert any("\n" in v or "🎉" in v for v in values if v)


def test_campaigns_and_metrics(lite):
    for app in APPS:
        created = [r[0] for r in lite.execute("SELECT created_at FROM ua_campaigns WHERE app_id = ?", (app,))]
        assert any(c < f"{START} 00:00:00.000000" for c in created)
        assert any(f"{START} 00:00:00.000000" <= c < f"{DAY_LIST[-1]} 23:59:59.999999~" for c in created)
        platforms = {r[0] for r in lite.execute("SELECT platform FROM ua_campaigns WHERE app_id = ?", (app,))}
        assert {"Meta", "TikTok", "Google Ads"} <= platforms
        for day in DAY_LIST:
            q = "SELECT count(*) FROM ua_ad_metrics_daily WHERE app_id = ? AND date = ? AND "
            d = day.isoformat()
            assert _one(lite, q + "impressions = 0 AND clicks = 0 AND installs = 0", app, d) >= 1
            assert _one(lite, q + "impressions > 0 AND clicks = 0", app, d) >= 1
            assert _one(lite, q + "clicks > 0 AND installs = 0", app, d) >= 1
            assert _one(lite, q + "spend_usd IS NULL", app, d) >= 1
            assert _one(lite, q + "impressions IS NULL", app, d) >= 1
            assert 20 <= _one(lite, q + "1", app, d) <= 60
    # Metrics only name campaigns that exist.
    assert (
        _one(
            lite,
            "SELECT count(*) FROM ua_ad_metrics_daily m LEFT JOIN ua_campaigns c "
            "USING (app_id, campaign_id) WHERE c.campaign_id IS NULL",
        )
        == 0
    )


def test_volumes(lite):
    per_app_day = {t: _one(lite, f"SELECT count(*) FROM {t}") / (len(APPS) * DAYS) for t in FACT_TABLES}
    for table, n in per_app_day.items():
        assert n == max(
            ARGS["rows_per_day"],
            len(
                getattr(
                    syn,
                    {"events": "EVENT_FIXTURES", "paywall_visits": "VISIT_FIXTURES", "ua_events": "UA_EVENT_FIXTURES"}[
                        table
                    ],
                )
            ),
        ), table
    assert _one(lite, "SELECT count(*) FROM ua_campaigns") == 6 * len(APPS)


def test_csv_line_quotes_what_it_must():
    assert syn.csv_line(["a", None, "", "None", 'x"y', "1,2", "l\r\nm", 9.99, 0.0001, 7]) == (
        'a,None,"","None","x""y","1,2","l\r\nm",9.99,0.0001,7'
    )
