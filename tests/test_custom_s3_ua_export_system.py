"""System tests: the whole `custom_s3_ua_export` DAG under `airflow dags test`, PostgreSQL (and SQLite)
to SeaweedFS, over plain HTTP and over HTTPS with a private CA.

Every expectation comes from tests/reference.py (plain SQL, ordinary Python, no package code), the
seed's column lists, or Decimal arithmetic written out here. The synthetic source carries fixed
fixture rows for the edge cases (see ``UA_EVENT_FIXTURES`` and ``METRIC_FIXTURES`` in
devtools/synthetic/); the tests look them up by id and assert on them by name.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest
import reference as ref
from conftest import (
    EXPORTER,
    assert_ok,
    aws_connection,
    data_objects,
    run_dag,
    snapshot_and_empty,
    source_connection,
)

from devtools.seaweedfs import SeaweedFS, list_all_keys
from devtools.synthetic import METRIC_FIXTURES, UA_EVENT_FIXTURES, build_campaigns
from devtools.tls import make_ca_and_server_cert
from subscription_exports.integrations import UA_EVENT_GROUPS

pytestmark = pytest.mark.system

DAG_ID = "custom_s3_ua_export"
IOS, ANDROID = "com.acme.ios", "com.acme.android"
DAY = dt.date(2026, 3, 7)
START = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)
SEED_ARGS = {"apps": [IOS, ANDROID], "start": dt.date(2026, 3, 6), "days": 3, "rows_per_day": 150, "seed": 11}
ALL_UA_TYPES = {t for types in UA_EVENT_GROUPS.values() for t in types}
BUCKET = "adapty-ua"
UA, CP = "ua_events", "campaign_performance"

# Prefixes (bucket/nested dirs/folder) of the destinations below.
IOS_DEFAULT = "adapty-ua/com.acme.ios/exports"
IOS_SETTINGS = "adapty-ua/ios/settings"
ANDROID_SELECTED = "adapty-ua/android/selected"
ANDROID_GZIP = "adapty-ua/android/gz"

DESTINATIONS = [
    # defaults, nested directory in the bucket field
    {"name": "ios-default", "conn_id": "ua_s3", "bucket": "adapty-ua/com.acme.ios", "folder": "exports",
     "app_id": IOS},
    # every setting flipped from its default, same app as ios-default
    {"name": "ios-settings", "conn_id": "ua_s3", "bucket": BUCKET, "folder": "ios/settings", "app_id": IOS,
     "include_events_without_profile": True, "exclude_historical_events": False, "send_user_attributes": True},
    # event selection by group and single type, with a rename; one table only
    {"name": "android-selected", "conn_id": "ua_s3", "bucket": BUCKET, "folder": "android/selected",
     "app_id": ANDROID, "tables": [UA], "event_types": ["attribution", "trial_started"],
     "rename_event_types": {"install": "app_install"}},
    # defaults with gzip, the other app
    {"name": "android-gzip", "conn_id": "ua_s3", "bucket": BUCKET, "folder": "android/gz", "app_id": ANDROID,
     "gzip": True},
]  # fmt: skip

SELECTED = set(UA_EVENT_GROUPS["attribution"]) | {"trial_started"}
RENAMES = {"install": "app_install"}
SETTINGS_FLIPPED = {"include_without_profile": True, "exclude_historical": False, "with_attributes": True}


def key(prefix: str, table: str, day: dt.date = DAY, ext: str = "csv") -> str:
    return f"{prefix}/{table}/dt={day}/{table}_{day}.{ext}"


def expected_objects(src: dict) -> dict[str, bytes]:
    """Data objects the main run must write, keyed bucket/key, from the reference exporter."""
    w = {"start": START, "end": END}
    ios_cp = ref.expected_campaign_performance(src, app_id=IOS, date_from=DAY, date_to=DAY)
    android_cp = ref.expected_campaign_performance(src, app_id=ANDROID, date_from=DAY, date_to=DAY)
    return {
        key(IOS_DEFAULT, UA): ref.expected_ua_events(src, app_id=IOS, event_types=ALL_UA_TYPES, **w),
        key(IOS_DEFAULT, CP): ios_cp,
        key(IOS_SETTINGS, UA): ref.expected_ua_events(
            src, app_id=IOS, event_types=ALL_UA_TYPES, **SETTINGS_FLIPPED, **w
        ),
        key(IOS_SETTINGS, CP): ios_cp,  # settings do not touch campaign performance
        key(ANDROID_SELECTED, UA): ref.expected_ua_events(
            src, app_id=ANDROID, event_types=SELECTED, rename=RENAMES, **w
        ),
        key(ANDROID_GZIP, UA, ext="csv.gz"): gzip.compress(
            ref.expected_ua_events(src, app_id=ANDROID, event_types=ALL_UA_TYPES, **w)
        ),
        key(ANDROID_GZIP, CP, ext="csv.gz"): gzip.compress(android_cp),
    }


def destinations_var(dests: list[dict]) -> dict[str, str]:
    return {f"{DAG_ID}_destinations": json.dumps({"source_conn_id": "subscription_source", "destinations": dests})}


def plain(name: str, data: bytes) -> bytes:
    return gzip.decompress(data) if name.endswith(".gz") else data


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def header_of(data: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(data.decode(), newline="")))


# -- sources and the main run -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_source(pg_database_factory) -> str:
    return pg_database_factory(**SEED_ARGS)


@pytest.fixture(scope="module")
def sqlite_source(sqlite_database_factory) -> str:
    return str(sqlite_database_factory(**SEED_ARGS))


@pytest.fixture(scope="module")
def src(pg_source) -> dict:
    return ref.load_source(pg_source)


def run_main(seaweedfs, source_url: str):
    admin = seaweedfs.admin_client()
    snapshot_and_empty(admin)
    result = run_dag(
        DAG_ID,
        logical_date=DAY.isoformat(),
        connections={"subscription_source": source_connection(source_url), "ua_s3": aws_connection(seaweedfs)},
        variables=destinations_var(DESTINATIONS),
    )
    return result, snapshot_and_empty(admin)


@pytest.fixture(scope="module")
def pg_run(airflow_db, seaweedfs, pg_source):
    """One scheduled-day run over four destinations; returns (result, {bucket/key: bytes})."""
    return run_main(seaweedfs, pg_source)


@pytest.fixture(scope="module")
def objects(pg_run) -> dict[str, bytes]:
    result, objs = pg_run
    assert_ok(result)
    return objs


# -- helpers to find fixture rows ---------------------------------------------------------------


def ua_event(src: dict, app: str, day: dt.date, fixture: str) -> dict:
    """The source row of a UA fixture (ids are uae-<app>-<YYYYMMDD>-<fixture index:07d>)."""
    wanted = f"uae-{app}-{day:%Y%m%d}-{UA_EVENT_FIXTURES.index(fixture):07d}"
    return next(u for u in src["ua_events"] if u["ua_event_id"] == wanted)


def ua_record(src: dict, u: dict, *, with_attributes: bool = False) -> str:
    """The CSV record (may span lines, ends with CRLF) the reference renders for one source row."""
    body = ref.expected_ua_events(
        src,
        app_id=u["app_id"],
        start=u["created_at"],
        end=u["created_at"] + dt.timedelta(microseconds=1),
        event_types=ALL_UA_TYPES,
        include_without_profile=True,
        exclude_historical=False,
        with_attributes=with_attributes,
    ).decode()
    assert len(rows_of(body.encode())) == 1, f"{u['ua_event_id']}: not the only row recorded at {u['created_at']}"
    _, _, records = body.partition("\r\n")
    return "\r\n" + records  # anchored at the start of a record


# -- 1. files, keys ----------------------------------------------------------------------------


def test_run_writes_exactly_the_expected_keys(objects, src):
    expected = expected_objects(src)
    assert sorted(data_objects(objects)) == sorted(expected)
    assert sorted(k for k in objects if k.endswith(".manifest.json")) == sorted(f"{k}.manifest.json" for k in expected)
    assert len(objects) == 2 * len(expected)  # nothing else: no probe objects, no stray keys


def test_files_match_the_reference_byte_for_byte(objects, src):
    for name, want in expected_objects(src).items():
        got = objects[name]
        if name.endswith(".gz"):
            got, want = gzip.decompress(got), gzip.decompress(want)
            assert objects[name][:2] == b"\x1f\x8b", f"{name} is not gzip"
        assert got == want, f"{name} differs from the reference"


def test_manifests_describe_their_files(objects):
    for name, data in data_objects(objects).items():
        manifest = json.loads(objects[f"{name}.manifest.json"])
        table = UA if f"/{UA}/" in name else CP
        rows = list(csv.reader(io.StringIO(plain(name, data).decode(), newline="")))
        bucket, _, object_key = name.partition("/")
        assert manifest["table"] == table
        assert manifest["object"] == {"bucket": bucket, "key": object_key}
        assert manifest["rows"] == len(rows) - 1 > 0
        assert manifest["bytes"] == len(data)
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["columns"] == rows[0]
        assert manifest["window"]["start"] == START.isoformat() and manifest["window"]["end"] == END.isoformat()
        assert manifest["compression"] == ("gzip" if name.endswith(".gz") else None)


# -- 2. shape -----------------------------------------------------------------------------------


def test_headers_are_the_seed_columns_in_order(objects):
    assert header_of(objects[key(IOS_DEFAULT, UA)]) == ref.UA_EVENTS_COLUMNS
    assert header_of(objects[key(IOS_DEFAULT, CP)]) == ref.CAMPAIGN_PERFORMANCE_COLUMNS
    assert header_of(objects[key(ANDROID_SELECTED, UA)]) == ref.UA_EVENTS_COLUMNS
    # settings append columns at the end only; the documented shape stays a prefix
    assert header_of(objects[key(IOS_SETTINGS, UA)]) == [*ref.UA_EVENTS_COLUMNS, "attributes"]
    assert header_of(objects[key(IOS_SETTINGS, CP)]) == ref.CAMPAIGN_PERFORMANCE_COLUMNS
    for name in (key(ANDROID_GZIP, UA, ext="csv.gz"), key(ANDROID_GZIP, CP, ext="csv.gz")):
        want = ref.UA_EVENTS_COLUMNS if f"/{UA}/" in name else ref.CAMPAIGN_PERFORMANCE_COLUMNS
        assert header_of(gzip.decompress(objects[name])) == want
    # the first line is exactly the comma-joined names (no quoting, CRLF)
    assert objects[key(IOS_DEFAULT, UA)].startswith((",".join(ref.UA_EVENTS_COLUMNS) + "\r\n").encode())


def test_campaign_name_and_platform_come_from_ua_campaigns(objects, src):
    for app, name in ((IOS, key(IOS_SETTINGS, UA)), (ANDROID, key(ANDROID_SELECTED, UA))):
        campaigns = {c["campaign_id"]: c for c in src["ua_campaigns"] if c["app_id"] == app}
        rows = rows_of(objects[name])
        with_campaign = [r for r in rows if r["campaign_id"]]
        assert with_campaign and len(with_campaign) < len(rows), "seed should have rows with and without campaign"
        for r in with_campaign:
            c = campaigns[r["campaign_id"]]
            assert r["campaign_name"] == (c["campaign_name"] or ""), r
            assert r["platform"] == (c["platform"] or ""), r
        assert all(r["campaign_name"] == "" and r["platform"] == "" for r in rows if not r["campaign_id"])
    # hostile campaign names survive the join and the CSV quoting
    names = {r["campaign_name"] for r in rows_of(objects[key(IOS_DEFAULT, CP)])}
    assert {'Spring Sale, US "Broad" — Zoë 🎉', '=HYPERLINK("http://example.com","TikTok")'} <= names
    organic = ua_event(src, IOS, DAY, "organic")
    assert organic["campaign_id"] is None
    default = objects[key(IOS_DEFAULT, UA)].decode()
    assert ua_record(src, organic) in default, "organic (no campaign) rows are kept and not historical"


def test_custom_parameters_is_a_compact_json_object(objects, src):
    rows = rows_of(objects[key(IOS_SETTINGS, UA)])
    values = [r["custom_parameters"] for r in rows if r["custom_parameters"]]
    assert values and any(v != "{}" for v in values)
    for v in values:
        parsed = json.loads(v, parse_float=Decimal)
        assert isinstance(parsed, dict), v
        assert v == ref._json(parsed), f"not compact JSON with sorted keys: {v!r}"
    # ... and equal to the source's value
    empty = ua_event(src, IOS, DAY, "empty_strings")
    assert empty["custom_parameters"] == {}
    assert ua_record(src, empty, with_attributes=True) in objects[key(IOS_SETTINGS, UA)].decode()


def test_hostile_text_round_trips_through_csv_and_pandas(objects, src):
    name = key(IOS_SETTINGS, UA)
    body = objects[name]
    expected_rows = list(csv.reader(io.StringIO(expected_objects(src)[name].decode(), newline="")))
    assert list(csv.reader(io.StringIO(body.decode(), newline=""))) == expected_rows
    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    assert frame.columns.tolist() == expected_rows[0]
    assert frame.values.tolist() == expected_rows[1:]
    text = body.decode()
    for needle in ('""', "\n", "\r", "🎉", ",=", "NaN"):
        assert needle in text, f"seed data should exercise {needle!r}"


# -- 3. campaign performance -------------------------------------------------------------------


RATIOS = {  # name: (numerator, denominator, scale), as the seed and SPEC section 5 define them
    "cpi_usd": ("spend_usd", "installs", 1),
    "cpc_usd": ("spend_usd", "clicks", 1),
    "cpm_usd": ("spend_usd", "impressions", 1000),
    "ctr": ("clicks", "impressions", 1),
    "icr": ("installs", "clicks", 1),
    "ipm": ("installs", "impressions", 1000),
}


def decimal_ratio(row: dict[str, str], metric: str) -> Decimal | None:
    num, den, scale = RATIOS[metric]
    if not row[num] or not row[den] or Decimal(row[den]) == 0:
        return None
    return (Decimal(row[num]) * scale / Decimal(row[den])).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def metric_fixture_rows(objects: dict[str, bytes], app: str, name: str) -> list[dict[str, str]]:
    """The CSV rows of campaign 0's six ads, in METRIC_FIXTURES order."""
    campaign = build_campaigns(SEED_ARGS["seed"], app, SEED_ARGS["start"], SEED_ARGS["days"])[0]
    ad_ids = [ad.ad_id for adset in campaign.adsets for ad in adset.ads]
    rows = {r["ad_id"]: r for r in rows_of(plain(name, objects[name])) if r["campaign_id"] == campaign.campaign_id}
    assert sorted(rows) == sorted(ad_ids), "campaign 0 should have one row per ad on the day"
    return [rows[a] for a in ad_ids]


CP_FILES = [(IOS, key(IOS_DEFAULT, CP)), (ANDROID, key(ANDROID_GZIP, CP, ext="csv.gz"))]


@pytest.mark.parametrize("app,name", CP_FILES, ids=["ios", "android-gzip"])
def test_derived_metrics_edge_cases(objects, app, name):
    all_zero, no_clicks, no_installs, null_spend, null_impressions, all_null = metric_fixture_rows(objects, app, name)
    assert len(METRIC_FIXTURES) == 6
    derived = list(RATIOS)

    # ad 0: everything zero -> every derived metric empty, the zeros themselves written as 0
    assert [all_zero[c] for c in ("impressions", "clicks", "installs", "conversions", "spend_usd")] == ["0"] * 5
    assert all_zero["spend_local"] == "0" and all_zero["ltv_usd"] == "0"
    assert [all_zero[m] for m in derived] == [""] * 6

    # ad 1: impressions > 0, clicks 0, installs 0 -> cpc/icr (zero clicks) and cpi (zero installs) empty
    assert int(no_clicks["impressions"]) > 0 and no_clicks["clicks"] == "0" and no_clicks["installs"] == "0"
    assert no_clicks["cpc_usd"] == no_clicks["icr"] == no_clicks["cpi_usd"] == ""
    assert no_clicks["ctr"] == "0" and no_clicks["ipm"] == "0"
    assert no_clicks["cpm_usd"] and Decimal(no_clicks["cpm_usd"]) == decimal_ratio(no_clicks, "cpm_usd")
    assert no_clicks["ltv_usd"] == ""

    # ad 2: clicks > 0, installs 0 -> only cpi empty
    assert int(no_installs["clicks"]) > 0 and no_installs["installs"] == "0"
    assert no_installs["cpi_usd"] == ""
    assert no_installs["icr"] == "0" and no_installs["ipm"] == "0"
    for m in ("cpc_usd", "cpm_usd", "ctr"):
        assert no_installs[m] and Decimal(no_installs[m]) == decimal_ratio(no_installs, m), m

    # ad 3: spend NULL -> the cost metrics empty; the rates present (non-zero denominators)
    assert null_spend["spend_usd"] == "" and null_spend["spend_local"] == ""
    assert null_spend["cpi_usd"] == null_spend["cpc_usd"] == null_spend["cpm_usd"] == ""
    assert all(int(null_spend[c]) > 0 for c in ("impressions", "clicks", "installs"))
    for m in ("ctr", "icr", "ipm"):
        assert null_spend[m] and Decimal(null_spend[m]) == decimal_ratio(null_spend, m), m

    # ad 4: impressions NULL (and conversions NULL) -> cpm/ctr/ipm empty; cpi/cpc/icr present
    assert null_impressions["impressions"] == "" and null_impressions["conversions"] == ""
    assert null_impressions["cpm_usd"] == null_impressions["ctr"] == null_impressions["ipm"] == ""
    for m in ("cpi_usd", "cpc_usd", "icr"):
        assert null_impressions[m] and Decimal(null_impressions[m]) == decimal_ratio(null_impressions, m), m

    # ad 5: every metric NULL -> every metric column empty, ids and names still there
    metric_columns = ref.CAMPAIGN_PERFORMANCE_COLUMNS[ref.CAMPAIGN_PERFORMANCE_COLUMNS.index("impressions") :]
    assert [all_null[c] for c in metric_columns] == [""] * len(metric_columns)
    assert all_null["campaign_id"] and all_null["ad_id"] and all_null["date"] == DAY.isoformat()


@pytest.mark.parametrize("name", [name for _, name in CP_FILES], ids=["ios", "android-gzip"])
def test_derived_metrics_are_decimal_arithmetic_rounded_half_up(objects, name):
    rows = rows_of(plain(name, objects[name]))
    checked = 0
    for r in rows:
        for m in RATIOS:
            want = decimal_ratio(r, m)
            if want is None:
                assert r[m] == "", (m, r)
                continue
            text = r[m]
            # plain decimal, at most 6 places, no exponent, no trailing zeros, no float noise
            assert re.fullmatch(r"-?\d+(\.\d{0,5}[1-9])?", text), (m, text)
            assert Decimal(text) == want, (m, r)
            checked += 1
    assert checked > 100
    # a normal row spelled out: the first row with every input present and non-zero
    normal = next(r for r in rows if all(r[c] not in ("", "0") for c in ("impressions", "clicks", "installs")))
    spend, installs, clicks, imps = (Decimal(normal[c]) for c in ("spend_usd", "installs", "clicks", "impressions"))
    six = Decimal("0.000001")
    assert Decimal(normal["cpi_usd"]) == (spend / installs).quantize(six, ROUND_HALF_UP)
    assert Decimal(normal["cpc_usd"]) == (spend / clicks).quantize(six, ROUND_HALF_UP)
    assert Decimal(normal["cpm_usd"]) == (1000 * spend / imps).quantize(six, ROUND_HALF_UP)
    assert Decimal(normal["ctr"]) == (clicks / imps).quantize(six, ROUND_HALF_UP)
    assert Decimal(normal["icr"]) == (installs / clicks).quantize(six, ROUND_HALF_UP)
    assert Decimal(normal["ipm"]) == (1000 * installs / imps).quantize(six, ROUND_HALF_UP)


def test_tiny_spend_rounds_to_zero_not_to_noise(objects, src):
    # campaign 1's first ad: spend_usd 0.0001, spend_local 9999999.9999, ltv 1234.5
    campaign = build_campaigns(SEED_ARGS["seed"], IOS, SEED_ARGS["start"], SEED_ARGS["days"])[1]
    ad_id = campaign.adsets[0].ads[0].ad_id
    row = next(r for r in rows_of(objects[key(IOS_DEFAULT, CP)]) if r["ad_id"] == ad_id)
    assert (row["spend_usd"], row["spend_local"], row["ltv_usd"]) == ("0.0001", "9999999.9999", "1234.5")
    for m in ("cpi_usd", "cpc_usd", "cpm_usd"):
        want = decimal_ratio(row, m)
        assert row[m] == ("0" if want == 0 else format(want.normalize(), "f")), (m, row[m])


def test_campaign_performance_is_keyed_by_metric_date(objects, src):
    for app, name in ((IOS, key(IOS_DEFAULT, CP)), (ANDROID, key(ANDROID_GZIP, CP, ext="csv.gz"))):
        rows = rows_of(plain(name, objects[name]))
        assert {r["date"] for r in rows} == {DAY.isoformat()}
        source_days = {m["date"] for m in src["ua_ad_metrics_daily"] if m["app_id"] == app}
        assert {DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)} <= source_days, "seed covers 3 days"
        on_day = [m for m in src["ua_ad_metrics_daily"] if m["app_id"] == app and m["date"] == DAY]
        assert len(rows) == len(on_day) > 0
        # a campaign created during the day has that day's metrics, one created later has none
        campaigns = {c["campaign_id"]: c for c in src["ua_campaigns"] if c["app_id"] == app}
        ids = {r["campaign_id"] for r in rows}
        assert any(START < campaigns[i]["created_at"] < END for i in ids)
        assert not any(c["created_at"] >= END for i, c in campaigns.items() if i in ids)


# -- 4. ua_events window and settings -----------------------------------------------------------


def test_ua_events_window_is_created_at_day(objects, src):
    default = objects[key(IOS_DEFAULT, UA)].decode()
    flipped = objects[key(IOS_SETTINGS, UA)].decode()
    first = ua_event(src, IOS, DAY, "boundary_start")
    last = ua_event(src, IOS, DAY, "boundary_end")
    next_day = ua_event(src, IOS, DAY + dt.timedelta(days=1), "boundary_start")
    prev_last = ua_event(src, IOS, DAY - dt.timedelta(days=1), "boundary_end")
    assert first["created_at"] == START
    assert last["created_at"] == dt.datetime(2026, 3, 7, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert next_day["created_at"] == END
    assert prev_last["created_at"] == START - dt.timedelta(microseconds=1)
    for u in (first, last):
        assert ua_record(src, u) in default, f"row recorded at {u['created_at']} missing"
        assert ua_record(src, u, with_attributes=True) in flipped
    for u in (next_day, prev_last):
        assert ua_record(src, u) not in default, f"row recorded at {u['created_at']} must not be in {DAY}"
        assert ua_record(src, u, with_attributes=True) not in flipped
    # late arrivals: happened the day before, recorded on DAY -> in; happened on DAY, recorded next day -> out
    for fixture in ("late_arrival", "late_arrival_edge"):
        late = ua_event(src, IOS, DAY, fixture)
        assert late["event_datetime"] < START <= late["created_at"]
        assert ua_record(src, late, with_attributes=True) in flipped
        later = ua_event(src, IOS, DAY + dt.timedelta(days=1), fixture)
        assert later["event_datetime"] < END <= later["created_at"]
        assert ua_record(src, later, with_attributes=True) not in flipped


def test_exclude_historical_events(objects, src):
    row = ua_event(src, IOS, DAY, "before_campaign")
    campaign = next(c for c in src["ua_campaigns"] if (c["app_id"], c["campaign_id"]) == (IOS, row["campaign_id"]))
    assert row["profile_id"] and row["event_datetime"] < campaign["created_at"]
    assert ua_record(src, row) not in objects[key(IOS_DEFAULT, UA)].decode(), "dropped by default"
    assert ua_record(src, row, with_attributes=True) in objects[key(IOS_SETTINGS, UA)].decode(), "kept when off"
    android = ua_event(src, ANDROID, DAY, "before_campaign")
    assert (
        ua_record(src, android).replace(",install,", ",app_install,", 1)
        not in objects[key(ANDROID_SELECTED, UA)].decode()
    )


def test_events_without_profile_and_user_attributes(objects, src):
    default = rows_of(objects[key(IOS_DEFAULT, UA)])
    flipped = rows_of(objects[key(IOS_SETTINGS, UA)])
    assert all(r["profile_id"] for r in default), "UA events without profile are dropped by default"
    assert any(not r["profile_id"] for r in flipped), "include_events_without_profile keeps them"
    for fixture in ("no_profile", "all_null"):
        u = ua_event(src, IOS, DAY, fixture)
        assert u["profile_id"] is None
        assert ua_record(src, u, with_attributes=True) in objects[key(IOS_SETTINGS, UA)].decode()
    # attributes: the profile's JSON object, empty when the row has no profile (or none set)
    assert all(r["attributes"] == "" for r in flipped if not r["profile_id"])
    with_attrs = [r["attributes"] for r in flipped if r["attributes"]]
    assert with_attrs and all(isinstance(json.loads(a), dict) for a in with_attrs)
    profiles = {p["profile_id"]: p for p in src["profiles"] if p["app_id"] == IOS}
    for r in flipped:
        if r["profile_id"]:
            want = profiles[r["profile_id"]]["attributes"]
            assert r["attributes"] == ("" if want is None else ref._json(want)), r["profile_id"]


def test_event_selection_and_rename(objects, src):
    rows = rows_of(objects[key(ANDROID_SELECTED, UA)])
    types = [r["event_type"] for r in rows]
    # one fixture row per UA type guarantees every selected type occurs
    assert set(types) == {"impression", "click", "app_install", "reinstall", "trial_started"}
    assert "install" not in types and "Install" not in types
    mixed = ua_event(src, ANDROID, DAY, "mixed_case")
    assert mixed["event_type"] == "Install"  # lower-cased, then renamed
    record = ua_record(src, mixed).replace(",install,", ",app_install,", 1)
    assert record in objects[key(ANDROID_SELECTED, UA)].decode()


# -- 5. SQLite --------------------------------------------------------------------------------------


def test_postgresql_and_sqlite_give_byte_identical_files(objects, airflow_db, seaweedfs, sqlite_source):
    result, sqlite_objects = run_main(seaweedfs, sqlite_source)
    assert_ok(result)
    assert sorted(data_objects(sqlite_objects)) == sorted(data_objects(objects))
    for name, data in data_objects(objects).items():
        assert sqlite_objects[name] == data, f"{name}: SQLite and PostgreSQL exports differ"
    assert EXPORTER.secret_key not in result.stdout + result.stderr


# -- 6. TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_store(tmp_path_factory):
    """A second SeaweedFS serving S3 over HTTPS with a private CA; plus a CA that did not sign it."""
    ca, cert, key_file = make_ca_and_server_cert(tmp_path_factory.mktemp("tls-ca"))
    other_ca, _, _ = make_ca_and_server_cert(tmp_path_factory.mktemp("tls-other-ca"))
    store = SeaweedFS(
        tmp_path_factory.mktemp("seaweedfs-tls"),
        [EXPORTER],
        buckets=[BUCKET],
        tls_cert=cert,
        tls_key=key_file,
        tls_ca=ca,
    )
    try:
        store.start()  # from the main thread: kill_with_parent ties weed to this thread
    except Exception as exc:
        pytest.fail(f"SeaweedFS (TLS) could not start: {exc}", pytrace=False)
    yield store, Path(ca), Path(other_ca)
    store.stop()


TLS_DESTINATIONS = [
    {"name": "tls-ok", "conn_id": "ua_tls_ok", "bucket": BUCKET, "folder": "tls/ok", "app_id": IOS},
    {"name": "tls-wrong-ca", "conn_id": "ua_tls_wrong_ca", "bucket": BUCKET, "folder": "tls/wrong", "app_id": IOS},
    {"name": "tls-default-bundle", "conn_id": "ua_tls_default", "bucket": BUCKET, "folder": "tls/default",
     "app_id": IOS},
]  # fmt: skip


@pytest.fixture(scope="module")
def tls_run(airflow_db, tls_store, pg_source):
    store, ca, other_ca = tls_store
    assert store.endpoint_url.startswith("https://127.0.0.1:")
    config = {"s3": {"addressing_style": "path"}, "retries": {"mode": "standard", "max_attempts": 2}}
    result = run_dag(
        DAG_ID,
        logical_date=DAY.isoformat(),
        connections={
            "subscription_source": source_connection(pg_source),
            "ua_tls_ok": aws_connection(store, config_kwargs=config, verify=str(ca)),
            "ua_tls_wrong_ca": aws_connection(store, config_kwargs=config, verify=str(other_ca)),
            "ua_tls_default": aws_connection(store, config_kwargs=config),
        },
        variables=destinations_var(TLS_DESTINATIONS),
    )
    admin = store.admin_client()
    objects = {
        f"{BUCKET}/{k}": admin.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in list_all_keys(admin, BUCKET)
    }
    return result, objects


def test_tls_with_the_servers_ca_exports(tls_run, src):
    result, objects = tls_run
    logs = result.stdout + result.stderr
    w = {"start": START, "end": END}
    expected = {
        key("adapty-ua/tls/ok", UA): ref.expected_ua_events(src, app_id=IOS, event_types=ALL_UA_TYPES, **w),
        key("adapty-ua/tls/ok", CP): ref.expected_campaign_performance(src, app_id=IOS, date_from=DAY, date_to=DAY),
    }
    # exactly the good destination's files and manifests, nothing from the failing ones
    assert sorted(objects) == sorted([*expected, *(f"{k}.manifest.json" for k in expected)]), logs[-4000:]
    for name, want in expected.items():
        assert objects[name] == want, f"{name} differs from the reference"
    assert "destination 'tls-ok' (connection 'ua_tls_ok', bucket 'adapty-ua'): bucket reachable" in logs


@pytest.mark.parametrize(
    "dest,conn",
    [("tls-wrong-ca", "ua_tls_wrong_ca"), ("tls-default-bundle", "ua_tls_default")],
    ids=["other-ca", "default-bundle"],
)
def test_tls_with_an_untrusted_certificate_fails_the_check(tls_run, dest, conn):
    result, objects = tls_run
    logs = result.stdout + result.stderr
    assert result.returncode != 0
    where = f"destination '{dest}' (connection '{conn}', bucket '{BUCKET}'): check failed: "
    lines = [ln for ln in logs.splitlines() if where in ln]
    assert lines, f"missing one-line cause for {dest}:\n{logs[-4000:]}"
    assert any(re.search("CERTIFICATE_VERIFY_FAILED|certificate verify failed", ln) for ln in lines), lines
    folder = next(d["folder"] for d in TLS_DESTINATIONS if d["name"] == dest)
    assert not [k for k in objects if k.startswith(f"{BUCKET}/{folder}/")], "a failed check writes nothing"


# -- 7. secrets -----------------------------------------------------------------------------------


def test_secret_never_in_logs(pg_run, tls_run):
    for result, _ in (pg_run, tls_run):
        assert EXPORTER.secret_key not in result.stdout + result.stderr
