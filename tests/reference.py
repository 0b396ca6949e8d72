"""A plain, slow, obviously correct exporter used as the expectation in tests and the benchmark.

It shares no code with the package: it reads whole source tables with ``SELECT *``, filters,
joins and formats rows in ordinary Python, and writes them with the ``csv`` module. Column
lists are spelled out here from the seeds on purpose, so a drift in the package's table
declarations shows up as a failing test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

UTC = dt.UTC

EVENTS_COLUMNS = [
    "profile_id",
    "event_type",
    "event_datetime",
    "transaction_id",
    "original_transaction_id",
    "subscription_expires_at",
    "environment",
    "revenue_usd",
    "proceeds_usd",
    "net_revenue_usd",
    "tax_amount_usd",
    "revenue_local",
    "proceeds_local",
    "net_revenue_local",
    "tax_amount_local",
    "customer_user_id",
    "store",
    "product_id",
    "base_plan_id",
    "developer_id",
    "ab_test_name",
    "ab_test_revision",
    "paywall_name",
    "paywall_revision",
    "profile_county",
    "install_date",
    "idfv",
    "idfa",
    "advertising_id",
    "ip_address",
    "cancellation_reason",
    "android_app_set_id",
    "android_id",
    "device",
    "currency",
    "store_country",
    "attribution_source",
    "attribution_network_user_id",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_ad_group",
    "attribution_ad_set",
    "attribution_creative",
]
PAYWALL_VISITS_COLUMNS = [
    "profile_id",
    "customer_user_id",
    "profile_country",
    "install_date",
    "store",
    "paywall_showed_at",
    "developer_id",
    "ab_test_name",
    "ab_test_revision",
    "paywall_name",
    "paywall_revision",
]
UA_EVENTS_COLUMNS = [
    "profile_id",
    "event_type",
    "event_datetime",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "platform",
    "attribution_source",
    "attribution_network_user_id",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_ad_group",
    "attribution_ad_set",
    "attribution_creative",
    "click_datetime",
    "install_datetime",
    "conversion_datetime",
    "conversion_type",
    "conversion_value_usd",
    "conversion_value_local",
    "currency",
    "country",
    "device_type",
    "os_version",
    "app_version",
    "user_agent",
    "ip_address",
    "idfa",
    "idfv",
    "advertising_id",
    "android_id",
    "android_app_set_id",
    "device",
    "custom_parameters",
]
CAMPAIGN_PERFORMANCE_COLUMNS = [
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "platform",
    "date",
    "impressions",
    "clicks",
    "installs",
    "conversions",
    "spend_usd",
    "spend_local",
    "cpi_usd",
    "cpc_usd",
    "cpm_usd",
    "ctr",
    "icr",
    "ipm",
    "ltv_usd",
]

TIMESTAMP_COLUMNS = {
    "event_datetime",
    "subscription_expires_at",
    "install_date",
    "paywall_showed_at",
    "created_at",
    "click_datetime",
    "install_datetime",
    "conversion_datetime",
}
JSON_COLUMNS = {"attributes", "custom_parameters"}
SOURCE_TABLES = ("profiles", "events", "paywall_visits", "ua_campaigns", "ua_events", "ua_ad_metrics_daily")


# -- reading the source as plain Python values --------------------------------------------------


def _norm(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in TIMESTAMP_COLUMNS:
        if isinstance(value, str):
            return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if column in JSON_COLUMNS:
        return json.loads(value, parse_float=Decimal) if isinstance(value, str) else value
    if column == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def load_source(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every source table, as dicts of normalized Python values."""
    if url.startswith("postgresql://"):
        import psycopg2
        import psycopg2.extras

        conn = psycopg2.connect(url)
        # jsonb numbers as Decimal, not float, so nothing is rounded on the way in
        psycopg2.extras.register_default_jsonb(conn, loads=lambda text: json.loads(text, parse_float=Decimal))
        cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        fetch = lambda table: (cur.execute(f"SELECT * FROM {table}"), cur.fetchall())[1]  # noqa: E731
    else:
        import sqlite3

        conn = sqlite3.connect(url)
        conn.row_factory = sqlite3.Row
        fetch = lambda table: conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: E731
    try:
        return {t: [{k: _norm(k, row[k]) for k in row.keys()} for row in fetch(t)] for t in SOURCE_TABLES}  # noqa: SIM118
    finally:
        conn.close()


# -- formatting ---------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    if isinstance(value, bool):
        raise TypeError("no booleans in these tables")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dict, list)):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    """Compact JSON, sorted keys, numbers exactly as decimals."""
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _json(value[k]) for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)


def to_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[fmt(v) for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def with_values_replaced(reference_csv: bytes, columns: tuple[str, ...], replace: Any) -> bytes:
    """A reference file with each non-empty value of ``columns`` (those the header has) replaced by
    ``replace(value)``: what a destination's step that rewrites those columns must write."""
    rows = list(csv.reader(io.StringIO(reference_csv.decode("utf-8"), newline="")))
    at = [rows[0].index(c) for c in columns if c in rows[0]]
    for row in rows[1:]:
        for i in at:
            row[i] = replace(row[i]) if row[i] else ""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def _ratio(num: Any, den: Any, scale: int) -> Decimal | None:
    if num is None or den is None or Decimal(den) == 0:
        return None
    return (Decimal(num) * scale / Decimal(den)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


# -- the four tables ------------------------------------------------------------------------------


def _in_window(row: dict[str, Any], start: dt.datetime, end: dt.datetime) -> bool:
    return start <= row["created_at"] < end


def expected_events(
    src: dict[str, list[dict[str, Any]]],
    *,
    app_id: str,
    start: dt.datetime,
    end: dt.datetime,
    event_types: set[str],
    rename: dict[str, str] | None = None,
    exclude_historical: bool = True,
    include_without_profile: bool = False,
    with_attributes: bool = False,
) -> bytes:
    profiles = {(p["app_id"], p["profile_id"]): p for p in src["profiles"]}
    picked = []
    for e in src["events"]:
        if e["app_id"] != app_id or not _in_window(e, start, end):
            continue
        etype = e["event_type"].lower()
        if etype not in event_types:
            continue
        if e["profile_id"] is None and not include_without_profile:
            continue
        p = profiles.get((app_id, e["profile_id"])) or {}
        if exclude_historical and p.get("install_date") and e["event_datetime"] < p["install_date"]:
            continue
        picked.append((e["created_at"], e["event_id"], e, p, (rename or {}).get(etype, etype)))
    picked.sort(key=lambda t: (t[0], t[1]))
    rows = []
    for _, _, e, p, etype in picked:
        merged = {**{k: p.get(k) for k in p}, **e, "event_type": etype}
        merged["customer_user_id"] = p.get("customer_user_id")
        merged["profile_county"] = p.get("profile_country")
        for col in [
            "install_date",
            "idfv",
            "idfa",
            "advertising_id",
            "ip_address",
            "android_app_set_id",
            "android_id",
            "device",
            "store_country",
            "attribution_source",
            "attribution_network_user_id",
            "attribution_status",
            "attribution_channel",
            "attribution_campaign",
            "attribution_ad_group",
            "attribution_ad_set",
            "attribution_creative",
        ]:
            merged[col] = p.get(col)
        row = [merged.get(c) for c in EVENTS_COLUMNS]
        if with_attributes:
            row.append(p.get("attributes"))
        rows.append(row)
    return to_csv(EVENTS_COLUMNS + (["attributes"] if with_attributes else []), rows)


def expected_paywall_visits(
    src: dict[str, list[dict[str, Any]]],
    *,
    app_id: str,
    start: dt.datetime,
    end: dt.datetime,
    include_without_profile: bool = False,
    with_attributes: bool = False,
) -> bytes:
    profiles = {(p["app_id"], p["profile_id"]): p for p in src["profiles"]}
    picked = sorted(
        (v for v in src["paywall_visits"] if v["app_id"] == app_id and _in_window(v, start, end)),
        key=lambda v: (v["created_at"], v["visit_id"]),
    )
    rows = []
    for v in picked:
        if v["profile_id"] is None and not include_without_profile:
            continue
        p = profiles.get((app_id, v["profile_id"])) or {}
        merged = {
            **v,
            "customer_user_id": p.get("customer_user_id"),
            "profile_country": p.get("profile_country"),
            "install_date": p.get("install_date"),
        }
        row = [merged.get(c) for c in PAYWALL_VISITS_COLUMNS]
        if with_attributes:
            row.append(p.get("attributes"))
        rows.append(row)
    return to_csv(PAYWALL_VISITS_COLUMNS + (["attributes"] if with_attributes else []), rows)


def expected_ua_events(
    src: dict[str, list[dict[str, Any]]],
    *,
    app_id: str,
    start: dt.datetime,
    end: dt.datetime,
    event_types: set[str],
    rename: dict[str, str] | None = None,
    exclude_historical: bool = True,
    include_without_profile: bool = False,
    with_attributes: bool = False,
) -> bytes:
    profiles = {(p["app_id"], p["profile_id"]): p for p in src["profiles"]}
    campaigns = {(c["app_id"], c["campaign_id"]): c for c in src["ua_campaigns"]}
    picked = []
    for u in src["ua_events"]:
        if u["app_id"] != app_id or not _in_window(u, start, end):
            continue
        etype = u["event_type"].lower()
        if etype not in event_types:
            continue
        if u["profile_id"] is None and not include_without_profile:
            continue
        c = campaigns.get((app_id, u["campaign_id"])) or {}
        if exclude_historical and c.get("created_at") and u["event_datetime"] < c["created_at"]:
            continue
        picked.append((u["created_at"], u["ua_event_id"], u, c, (rename or {}).get(etype, etype)))
    picked.sort(key=lambda t: (t[0], t[1]))
    rows = []
    for _, _, u, c, etype in picked:
        merged = {**u, "event_type": etype, "campaign_name": c.get("campaign_name"), "platform": c.get("platform")}
        row = [merged.get(col) for col in UA_EVENTS_COLUMNS]
        if with_attributes:
            row.append((profiles.get((app_id, u["profile_id"])) or {}).get("attributes"))
        rows.append(row)
    return to_csv(UA_EVENTS_COLUMNS + (["attributes"] if with_attributes else []), rows)


def expected_campaign_performance(
    src: dict[str, list[dict[str, Any]]], *, app_id: str, date_from: dt.date, date_to: dt.date
) -> bytes:
    campaigns = {(c["app_id"], c["campaign_id"]): c for c in src["ua_campaigns"]}
    picked = sorted(
        (m for m in src["ua_ad_metrics_daily"] if m["app_id"] == app_id and date_from <= m["date"] <= date_to),
        key=lambda m: (m["date"], m["campaign_id"], m["adset_id"], m["ad_id"]),
    )
    rows = []
    for m in picked:
        c = campaigns.get((app_id, m["campaign_id"])) or {}
        merged = {
            **m,
            "campaign_name": c.get("campaign_name"),
            "platform": c.get("platform"),
            "cpi_usd": _ratio(m["spend_usd"], m["installs"], 1),
            "cpc_usd": _ratio(m["spend_usd"], m["clicks"], 1),
            "cpm_usd": _ratio(m["spend_usd"], m["impressions"], 1000),
            "ctr": _ratio(m["clicks"], m["impressions"], 1),
            "icr": _ratio(m["installs"], m["clicks"], 1),
            "ipm": _ratio(m["installs"], m["impressions"], 1000),
        }
        rows.append([merged.get(c) for c in CAMPAIGN_PERFORMANCE_COLUMNS])
    return to_csv(CAMPAIGN_PERFORMANCE_COLUMNS, rows)
