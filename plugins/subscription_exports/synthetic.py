"""Deterministic synthetic source data for tests, the demo and the benchmark.

Fills the six reference tables (``include/sql/<dialect>/schema.sql``) of a PostgreSQL or SQLite
database with seeded, realistic-looking and deliberately hostile rows::

    PYTHONPATH=plugins python -m subscription_exports.synthetic \\
        --target postgresql://postgres@127.0.0.1:5432/db --apps com.acme.ios,com.acme.android \\
        --start 2026-03-01 --days 3 --rows-per-day 1000 --seed 7 [--recreate] [--tables events,...]

Determinism: the same arguments give the same rows, value for value, in both dialects. Every
(table, app, day) has its own ``random.Random`` seeded from a string, so a table's rows do not
depend on which other tables are generated. The wall clock is never read for data.

Value formats (identical in both dialects):

* timestamps: UTC; SQLite text ``YYYY-MM-DD HH:MM:SS.ffffff``; PostgreSQL timestamptz (loaded from
  the same text with the session time zone set to UTC);
* money: multiples of 0.0001 below 1e7, sent as the Python float ``m / 10000`` whose ``repr`` is
  the exact decimal (``9.99``, ``0.1``, ``1234.5``, ``0.0``, ``0.0001``); numeric(18,4) in PostgreSQL;
* JSON: the text PostgreSQL's ``jsonb::text`` prints (keys ordered by byte length then bytes,
  ``", "``/``": "`` separators, non-ASCII unescaped), so SQLite's TEXT equals the jsonb output;
* dates: ``YYYY-MM-DD``.

Every day of every app carries fixed "fixture" rows (ids ending ``-0000000`` upwards, see
``EVENT_FIXTURES`` and friends) with the edge cases: boundary instants, late arrivals, NULL and
empty values, hostile text, every event type, mixed-case types, money edge values. The remaining
rows are random. Loading uses ``COPY FROM STDIN`` (PostgreSQL, streamed in chunks from a producer
thread) or ``executemany`` (SQLite), so memory stays bounded by the chunk size.

Only the standard library is imported at module level: Airflow imports everything under plugins/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from subscription_exports.integrations import SUBSCRIPTION_EVENT_GROUPS

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"
log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Tables and columns (schema order)
# ---------------------------------------------------------------------------------------------

COLUMNS: dict[str, tuple[str, ...]] = {
    "profiles": (
        "profile_id",
        "app_id",
        "customer_user_id",
        "install_date",
        "profile_country",
        "store_country",
        "idfv",
        "idfa",
        "advertising_id",
        "android_id",
        "android_app_set_id",
        "device",
        "ip_address",
        "attribution_source",
        "attribution_network_user_id",
        "attribution_status",
        "attribution_channel",
        "attribution_campaign",
        "attribution_ad_group",
        "attribution_ad_set",
        "attribution_creative",
        "attributes",
        "created_at",
    ),
    "events": (
        "event_id",
        "app_id",
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
        "store",
        "product_id",
        "base_plan_id",
        "developer_id",
        "ab_test_name",
        "ab_test_revision",
        "paywall_name",
        "paywall_revision",
        "currency",
        "cancellation_reason",
        "created_at",
    ),
    "paywall_visits": (
        "visit_id",
        "app_id",
        "profile_id",
        "store",
        "paywall_showed_at",
        "developer_id",
        "ab_test_name",
        "ab_test_revision",
        "paywall_name",
        "paywall_revision",
        "created_at",
    ),
    "ua_campaigns": ("app_id", "campaign_id", "campaign_name", "platform", "created_at"),
    "ua_events": (
        "ua_event_id",
        "app_id",
        "profile_id",
        "event_type",
        "event_datetime",
        "campaign_id",
        "adset_id",
        "adset_name",
        "ad_id",
        "ad_name",
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
        "created_at",
    ),
    "ua_ad_metrics_daily": (
        "app_id",
        "campaign_id",
        "adset_id",
        "adset_name",
        "ad_id",
        "ad_name",
        "date",
        "impressions",
        "clicks",
        "installs",
        "conversions",
        "spend_usd",
        "spend_local",
        "ltv_usd",
    ),
}
ALL_TABLES: tuple[str, ...] = tuple(COLUMNS)
NOT_NULL: dict[str, frozenset[str]] = {
    "profiles": frozenset({"profile_id", "app_id", "created_at"}),
    "events": frozenset({"event_id", "app_id", "event_type", "event_datetime", "created_at"}),
    "paywall_visits": frozenset({"visit_id", "app_id", "paywall_showed_at", "created_at"}),
    "ua_campaigns": frozenset({"app_id", "campaign_id", "created_at"}),
    "ua_events": frozenset({"ua_event_id", "app_id", "event_type", "event_datetime", "created_at"}),
    "ua_ad_metrics_daily": frozenset({"app_id", "campaign_id", "adset_id", "ad_id", "date"}),
}
JSON_COLUMNS = {"profiles": ("attributes",), "ua_events": ("custom_parameters",)}
# Tables a fact table needs so that its joins find something.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "events": ("profiles",),
    "paywall_visits": ("profiles",),
    "ua_events": ("profiles", "ua_campaigns"),
    "ua_ad_metrics_daily": ("ua_campaigns",),
}

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

# The event types the exporter knows (one list for generator and exporter).
TRIAL_TYPES = SUBSCRIPTION_EVENT_GROUPS["trials"]
SUBSCRIPTION_TYPES = SUBSCRIPTION_EVENT_GROUPS["subscriptions"]
ISSUE_TYPES = SUBSCRIPTION_EVENT_GROUPS["issues"]
EVENT_TYPES = TRIAL_TYPES + SUBSCRIPTION_TYPES + ISSUE_TYPES
UA_ATTRIBUTION_TYPES = ("impression", "click", "install", "reinstall")
UA_EVENT_TYPES = UA_ATTRIBUTION_TYPES + EVENT_TYPES

_EVENT_WEIGHTS = {
    "trial_started": 12,
    "trial_converted": 6,
    "trial_renewal_cancelled": 5,
    "trial_renewal_reactivated": 1,
    "trial_expired": 4,
    "subscription_started": 10,
    "subscription_renewed": 25,
    "subscription_renewal_cancelled": 8,
    "subscription_renewal_reactivated": 2,
    "subscription_expired": 7,
    "subscription_paused": 1,
    "subscription_deferred": 1,
    "non_subscription_purchase": 5,
    "entered_grace_period": 2,
    "billing_issue_detected": 3,
    "subscription_refunded": 1,
    "non_subscription_purchase_refunded": 1,
}
_UA_WEIGHTS = {"impression": 15, "click": 20, "install": 25, "reinstall": 3, **{t: 2 for t in EVENT_TYPES}}
_UA_WEIGHTS.update(trial_started=6, subscription_started=5, subscription_renewed=4, non_subscription_purchase=3)

MONETARY_TYPES = frozenset(
    {
        "trial_converted",
        "subscription_started",
        "subscription_renewed",
        "non_subscription_purchase",
        "subscription_refunded",
        "non_subscription_purchase_refunded",
    }
)
ONE_TIME_TYPES = frozenset({"non_subscription_purchase", "non_subscription_purchase_refunded"})
CANCEL_TYPES = frozenset(
    {
        "trial_renewal_cancelled",
        "subscription_renewal_cancelled",
        "subscription_expired",
        "trial_expired",
        "subscription_refunded",
        "non_subscription_purchase_refunded",
    }
)
STARTING_TYPES = frozenset({"trial_started", "subscription_started", "non_subscription_purchase"})
UA_CONVERSION_TYPES = frozenset(
    {
        "trial_started",
        "trial_converted",
        "subscription_started",
        "subscription_renewed",
        "non_subscription_purchase",
    }
)


def mixed_case(event_type: str) -> str:
    """'trial_started' -> 'Trial_Started' (the exporter must lower-case it back)."""
    return "_".join(p.capitalize() for p in event_type.split("_"))


CURRENCIES = ("USD", "EUR", "GBP", "JPY", "BRL", "TRY", "INR")
_CURRENCY_WEIGHTS = {"USD": 50, "EUR": 15, "GBP": 8, "JPY": 7, "BRL": 7, "TRY": 5, "INR": 8}
_USD_RATE = {"USD": 1.0, "EUR": 1.0825, "GBP": 1.2671, "JPY": 0.006712, "BRL": 0.2013, "TRY": 0.03117, "INR": 0.012047}
_TAX_RATE = {"USD": 0.0, "EUR": 0.19, "GBP": 0.2, "JPY": 0.1, "BRL": 0.1725, "TRY": 0.2, "INR": 0.18}
_LOCAL_PRICES = {
    "USD": ("0.99", "4.99", "9.99", "29.99", "59.99", "99.99"),
    "EUR": ("1.09", "5.49", "10.99", "69.99"),
    "GBP": ("0.99", "4.99", "8.99", "49.99"),
    "JPY": ("160", "800", "1500", "9800"),
    "BRL": ("5.9", "27.9", "54.9", "299.9"),
    "TRY": ("49.99", "249.99", "1299.99"),
    "INR": ("99", "499", "1999", "4999"),
}
STORES = ("app_store", "play_store", "stripe")
COUNTRIES = ("US", "GB", "DE", "FR", "JP", "BR", "TR", "IN", "CA", "ES", "IT", "AU", "KR", "MX", "NL")
CANCELLATION_REASONS = (
    "voluntarily_cancelled",
    "billing_error",
    "price_increase",
    "product_was_not_available",
    "refund",
    "upgraded",
    "unknown",
)
PLACEMENTS = ("onboarding", "settings", "main", "paywall_after_trial", "promo")
AB_TESTS = ("Price test Q1", "onboarding_v2", "Annual vs monthly", "Black Friday")
PAYWALLS = ("Default paywall", "Onboarding A", "Onboarding B", "Promo 50% off", "Win-back")
IOS_DEVICES = (
    "iPhone 15 Pro",
    "iPhone 13",
    "iPhone SE (3rd generation)",
    "iPad Pro (12.9-inch) (6th generation)",
    "iPhone 16 Pro Max",
)
ANDROID_DEVICES = ("Pixel 8", "SM-S918B", "Redmi Note 12", "OnePlus 11", "moto g(8) power lite")
IOS_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Instagram 312.0.0.32.112 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 550310133)",
)
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36",
    "Dalvik/2.1.0 (Linux; U; Android 12; Redmi Note 12 MIUI/V14.0.4.0.SMTMIXM)",
)
ATTRIBUTION_SOURCES = ("Meta", "TikTok", "AppsFlyer", "Adjust", "Apple Search Ads", "Google Ads", "Branch")
ATTRIBUTION_CHANNELS = ("paid_social", "search", "display", "video", "influencer")

# Hostile text: every one of these goes into each hostile-capable text column of one fixture row
# per (app, day) and table, and into one profile fixture per pool day. No NUL bytes (PostgreSQL
# text cannot hold them) and no lone surrogates.
HOSTILE_TEXT: tuple[str, ...] = (
    "Zoë 🎉",
    "comma, separated, value",
    'say "hello"',
    '"',
    "line1\nline2",
    "crlf1\r\ncrlf2",
    "cr\ronly",
    "\nleading newline",
    "trailing newline\n",
    '=HYPERLINK("http://example.com/x","click me")',
    "=1+2",
    "+SUM(A1:A2)",
    "-2+3",
    "@cmd",
    "  leading and trailing spaces  ",
    " ",
    "",
    "NA",
    "null",
    "NaN",
    "NULL",
    "None",
    "N/A",
    "#N/A",
    "nan",
    "true",
    "\\N",
    "back\\slash",
    "tab\tseparated",
    "0012345",
    "1e5",
    "-0",
    "9007199254740993",
    "日本語のテキスト、カンマ,「引用」",
    "مرحبا بالعالم",
    '👩\u200d👩\u200d👧\u200d👦 family, "emoji"\r\n',
    "e\u0301 combining accent",
    "line\u2028separator\u2029para",
    "it's a 'single' quote",
    ";semi;colon;|pipe|",
    "<script>alert('x')</script>",
    "x" * 300 + ',"\n' + "y" * 300,
)

# ---------------------------------------------------------------------------------------------
# Time and value helpers
# ---------------------------------------------------------------------------------------------

SEC = 1_000_000
MINUTE = 60 * SEC
HOUR = 3600 * SEC
DAY_US = 86_400 * SEC
MAX_LAG = 6 * HOUR  # ordinary rows: event_datetime is at most this long before created_at
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY_PREFIX: dict[int, str] = {}


def day_us(day: dt.date) -> int:
    """Microseconds since the epoch at ``day`` 00:00:00 UTC."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_US


def ts(u: int) -> str:
    """Microseconds since the epoch -> 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)."""
    d, r = divmod(u, DAY_US)
    p = _DAY_PREFIX.get(d)
    if p is None:
        p = _DAY_PREFIX[d] = dt.date.fromordinal(d + _EPOCH_ORDINAL).isoformat() + " "
    s, f = divmod(r, SEC)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{p}{h:02d}:{m:02d}:{s:02d}.{f:06d}"


def money(value: str | int) -> float:
    """A decimal with at most 4 places as the float whose repr is exactly that decimal."""
    m = int(Decimal(value).scaleb(4))
    if Decimal(m).scaleb(-4) != Decimal(value) or abs(m) >= 10**11:
        raise ValueError(f"money value {value!r} needs more than 4 decimals or is >= 1e7")
    return m / 10000


def _m(units: int) -> float:
    return units / 10000


def jsonb_text(value: Any) -> str:
    """JSON text exactly as PostgreSQL prints ``jsonb::text`` (for the values this module makes)."""
    return json.dumps(_jsonb_order(value), ensure_ascii=False)


def _jsonb_order(value: Any) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise ValueError("JSON numbers must be finite")
    return value


def _money_tuple(currency: str, local_units: int, commission: float) -> tuple[float, ...]:
    """(revenue, proceeds, net_revenue, tax) in USD then local currency, consistent-ish."""
    t = _TAX_RATE[currency]
    rate = _USD_RATE[currency]
    rev_l = local_units
    tax_l = round(rev_l * t / (1 + t))
    proc_l = rev_l - round(rev_l * commission)
    net_l = round((rev_l - tax_l) * (1 - commission))
    loc = (rev_l, proc_l, net_l, tax_l)
    usd = tuple(round(x * rate) for x in loc)
    return tuple(_m(x) for x in usd + loc)


_MONEY_TABLE: dict[str, tuple[tuple[float, ...], ...]] = {
    cur: tuple(_money_tuple(cur, int(Decimal(p).scaleb(4)), c) for p in prices for c in (0.15, 0.30))
    for cur, prices in _LOCAL_PRICES.items()
}
_NULL_MONEY = (None,) * 8
_ZERO_MONEY = (0.0,) * 8


def _weighted(weights: dict[str, int]) -> tuple[str, ...]:
    return tuple(k for k, w in weights.items() for _ in range(w))


_EVENT_PICK = _weighted(_EVENT_WEIGHTS)
_UA_PICK = _weighted(_UA_WEIGHTS)
_CURRENCY_PICK = _weighted(_CURRENCY_WEIGHTS)


def _uuid(rng: random.Random) -> str:
    x = f"{rng.getrandbits(128):032x}"
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{x[16:20]}-{x[20:]}"


def _rng(seed: int, *parts: object) -> random.Random:
    # A str seed is hashed with SHA-512 (random.seed version 2): stable across runs and platforms.
    return random.Random("|".join(str(p) for p in (seed, *parts)))


# ---------------------------------------------------------------------------------------------
# Per-app context: profile pool and campaigns
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ad:
    ad_id: str
    ad_name: str | None


@dataclass(frozen=True)
class AdSet:
    adset_id: str
    adset_name: str | None
    ads: tuple[Ad, ...]


@dataclass(frozen=True)
class Campaign:
    index: int
    campaign_id: str
    campaign_name: str | None
    platform: str | None
    created_us: int
    currency: str
    adsets: tuple[AdSet, ...]


_ADSET_NAMES: tuple[str | None, ...] = (
    "Lookalike 1%, US",
    "NA",
    None,
    'Interests: "fitness"',
    "Retargeting\r\n7d",
    "",
    "Zoë 🎉 adset",
    " spaced ",
    "Broad – all",
    "null",
)
_AD_NAMES: tuple[str | None, ...] = (
    "Video 15s, v2",
    '=HYPERLINK("x")',
    None,
    'UGC "testimonial"',
    "Static\nbanner",
    "NaN",
    "広告クリエイティブ",
    "",
    "Carousel 🎠",
    "  padded  ",
    "null",
    "Ad – plain",
)
# (platform, name, days relative to start (or "mid"/"last"), time of day in µs)
_CAMPAIGN_SPECS: tuple[tuple[str | None, str | None, object, int], ...] = (
    ("Meta", 'Spring Sale, US "Broad" — Zoë 🎉', -60, 9 * HOUR + 15 * MINUTE),
    ("TikTok", '=HYPERLINK("http://example.com","TikTok")', -3, 14 * HOUR + 22 * MINUTE + 31 * SEC + 123456),
    ("Google Ads", "Brand Search\nJP 日本", -1, DAY_US - 1),
    ("Apple Search Ads", "  ASA exact match  ", "mid", 12 * HOUR),
    ("Snapchat", None, "last", 18 * HOUR + 30 * MINUTE + 15 * SEC + 500000),
    (None, "", -10, 3 * HOUR + 7 * SEC),
)


def build_campaigns(seed: int, app: str, start: dt.date, days: int) -> tuple[Campaign, ...]:
    """The app's UA campaigns (6), ad sets (2 each) and ads (3 each), deterministic."""
    rng = _rng(seed, "ua_campaigns", app, start.isoformat())
    out = []
    for k, (platform, name, when, tod) in enumerate(_CAMPAIGN_SPECS):
        if when == "mid":
            offset = days // 2
        elif when == "last":
            offset = days - 1
        else:
            offset = int(when)  # type: ignore[call-overload]
        created = day_us(start) + offset * DAY_US + tod
        if platform == "Meta":
            cid = f"1202{rng.randrange(10**14):014d}"
        elif platform == "TikTok":
            cid = f"17{rng.randrange(10**17):017d}"
        elif platform == "Google Ads":
            cid = str(rng.randrange(10**10, 10**11))
        elif platform == "Apple Search Ads":
            cid = str(rng.randrange(10**8, 10**9))
        elif platform == "Snapchat":
            cid = _uuid(rng)
        else:
            cid = f"000{rng.randrange(10**12):012d}"  # leading zeros: must stay text
        adsets = []
        for j in range(2):
            ads = tuple(
                Ad(
                    ad_id=f"{cid}{j + 1:02d}{a + 1:03d}" if k % 2 else str(rng.randrange(10**17, 10**18)),
                    ad_name=_AD_NAMES[(k * 6 + j * 3 + a) % len(_AD_NAMES)],
                )
                for a in range(3)
            )
            adsets.append(
                AdSet(
                    adset_id=f"{cid}{j + 1:02d}" if k % 2 else str(rng.randrange(10**17, 10**18)),
                    adset_name=_ADSET_NAMES[(k * 2 + j) % len(_ADSET_NAMES)],
                    ads=ads,
                )
            )
        currency = CURRENCIES[k % len(CURRENCIES)]
        out.append(Campaign(k, cid, name, platform, created, currency, tuple(adsets)))
    return tuple(out)


class _AppContext:
    """Profile pool of one app: pool day 0 is the day before ``start`` ("pre"), then one per day.

    Pool day k holds ``per_day`` profiles; profile n is created at ``day0 + n*step + jitter``
    (jitter < step), so an event at offset t into pool day k may use any n < t // step.
    Profile ids: ``prf-<app>-<YYYYMMDD>-<n:06d>`` and ``prf-<app>-pre<start YYYYMMDD>-<n:06d>``.
    """

    def __init__(self, seed: int, app: str, start: dt.date, days: int, rows_per_day: int):
        self.seed = seed
        self.app = app
        self.android = "android" in app.lower()
        self.start = start
        self.days = days
        self.rows_per_day = rows_per_day
        self.per_day = max(rows_per_day // 5, N_PROFILE_FIXTURES + 16)
        self.step = DAY_US // self.per_day
        self.labels = [f"pre{start:%Y%m%d}"] + [f"{start + dt.timedelta(days=i):%Y%m%d}" for i in range(days)]
        self.day0 = [day_us(start) + (i - 1) * DAY_US for i in range(days + 1)]
        self.prefixes = [f"prf-{app}-{label}-" for label in self.labels]
        self.campaigns = build_campaigns(seed, app, start, days)

    def profile_id(self, k: int, n: int) -> str:
        return f"{self.prefixes[k]}{n:06d}"

    def pick_profile(self, rnd: Callable[[], float], ev: int) -> str | None:
        """A profile created (and installed) before the instant ``ev``; None if none exists."""
        k = (ev - self.day0[0]) // DAY_US
        if k < 0:
            return None
        if k > self.days:
            k = self.days
        lim = (ev - self.day0[k]) // self.step  # profiles 0..lim-1 of pool day k exist at ev
        if k == 0 or (lim >= 1 and rnd() < 0.5):
            if lim < 1:
                return None
            return f"{self.prefixes[k]}{int(rnd() * min(lim, self.per_day)):06d}"
        return f"{self.prefixes[int(rnd() * k)]}{int(rnd() * self.per_day):06d}"

    def pick_old_profile(self, rnd: Callable[[], float], k: int) -> tuple[str, int]:
        """A non-fixture profile from a pool day before k, and that pool day's start."""
        j = int(rnd() * k)
        n = N_PROFILE_FIXTURES + int(rnd() * (self.per_day - N_PROFILE_FIXTURES))
        if n % 50 == NULL_INSTALL_MOD:  # that profile has no install_date
            n = n + 1 if n + 1 < self.per_day else n - 1
        return f"{self.prefixes[j]}{n:06d}", self.day0[j]


# ---------------------------------------------------------------------------------------------
# JSON pools
# ---------------------------------------------------------------------------------------------


def _attributes_pool(rng: random.Random) -> list[str | None]:
    pool: list[str | None] = [None] * 10 + ["{}"] * 5
    langs = ("en", "de", "ja", "pt-BR", "tr", "hi")
    for _ in range(49):
        obj: dict[str, Any] = {}
        if rng.random() < 0.8:
            obj["language"] = rng.choice(langs)
        if rng.random() < 0.5:
            obj["level"] = rng.randrange(0, 100)
        if rng.random() < 0.4:
            obj["premium_user"] = rng.random() < 0.5
        if rng.random() < 0.3:
            obj["score"] = rng.choice((9.99, 0.5, 12, -3, 1234.5))
        if rng.random() < 0.3:
            obj["nickname"] = rng.choice(("Zoë 🎉", "たろう", 'Bob "the builder"', "a,b", "NA", "null", " x "))
        if rng.random() < 0.3:
            obj["prefs"] = {
                "theme": rng.choice(("dark", "light")),
                "notifications": {"email": rng.random() < 0.5, "push": None},
            }
        if rng.random() < 0.2:
            obj["tags"] = rng.sample(["fitness", "yoga", "日本", "a\nb", "=1+1"], 2)
        if rng.random() < 0.1:
            obj["last_screen"] = "settings\r\nbilling"
        pool.append(jsonb_text(obj))
    return pool


def _custom_params_pool(rng: random.Random) -> list[str | None]:
    pool: list[str | None] = [None] * 15 + ["{}"] * 3
    for _ in range(46):
        obj: dict[str, Any] = {"utm_source": rng.choice(("meta", "tiktok", "google", "asa"))}
        if rng.random() < 0.7:
            obj["utm_campaign"] = rng.choice(("spring_sale", "brand", "retarget 7d", "Zoë 🎉"))
        if rng.random() < 0.5:
            obj["sub1"] = str(rng.randrange(10**6))
        if rng.random() < 0.3:
            obj["deeplink"] = "myapp://promo?code=SPRING&ref=a,b"
        if rng.random() < 0.2:
            obj["extra"] = {"ab": rng.choice(("A", "B")), "weights": [0.5, 0.25, 1], "note": 'say "hi"\n'}
        pool.append(jsonb_text(obj))
    return pool


def hostile_json(text: str) -> str:
    return jsonb_text(
        {
            "hostile": text,
            "nested": {"value": text, "list": [text, 1, None, True, 9.99]},
            "": "empty key",
            'key "q",\n': text,
            "ключ": "значение",
        }
    )


# ---------------------------------------------------------------------------------------------
# Row generators. Each yields lists in COLUMNS[table] order, fixtures first.
# ---------------------------------------------------------------------------------------------

N_HOSTILE = len(HOSTILE_TEXT)
# Profiles, per pool day: 0 = every nullable column NULL; 1 = empty strings / {} attributes;
# 2 + i = HOSTILE_TEXT[i] in every text column; the rest random.
PROFILE_FIX_NULL, PROFILE_FIX_EMPTY, PROFILE_FIX_HOSTILE = 0, 1, 2
N_PROFILE_FIXTURES = 2 + N_HOSTILE
NULL_INSTALL_MOD = 7  # random profiles with n % 50 == 7 have install_date NULL

_PROFILE_TEXT_COLS = (
    "customer_user_id",
    "profile_country",
    "store_country",
    "idfv",
    "idfa",
    "advertising_id",
    "android_id",
    "android_app_set_id",
    "device",
    "ip_address",
    "attribution_source",
    "attribution_network_user_id",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_ad_group",
    "attribution_ad_set",
    "attribution_creative",
)
_PROFILE_HOSTILE_COLS = (
    "customer_user_id",
    "device",
    "attribution_source",
    "attribution_network_user_id",
    "attribution_status",
    "attribution_channel",
    "attribution_campaign",
    "attribution_ad_group",
    "attribution_ad_set",
    "attribution_creative",
)


def _idx(table: str, names: Iterable[str]) -> tuple[int, ...]:
    cols = COLUMNS[table]
    return tuple(cols.index(n) for n in names)


def _nullable_idx(table: str) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(COLUMNS[table]) if c not in NOT_NULL[table])


def _ip(rnd: Callable[[], float]) -> str:
    x = int(rnd() * 4294967296)
    if x & 7 == 0:
        return f"2001:db8:{(x >> 8) & 0xFFFF:x}:{(x >> 16) & 0xFFFF:x}::{x & 0xFFF:x}"
    return f"{x >> 24 | 1}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255 or 1}"


def _profile_rows(ctx: _AppContext, k: int) -> Iterator[list]:
    rng = _rng(ctx.seed, "profiles", ctx.app, ctx.labels[k])
    rnd = rng.random
    app, android, step, day0 = ctx.app, ctx.android, ctx.step, ctx.day0[k]
    pool = _attributes_pool(rng)
    npool = len(pool)
    devices = ANDROID_DEVICES if android else IOS_DEVICES
    ncountries = len(COUNTRIES)
    prefix = ctx.prefixes[k]
    for n in range(ctx.per_day):
        created = day0 + n * step + int(rnd() * step)
        r = rnd()
        if r < 0.05:
            created -= created % SEC  # whole second
        install = created - int(rnd() * 600) * SEC if r < 0.3 else created - int(rnd() * 600 * SEC)
        country = COUNTRIES[int(rnd() * ncountries)]
        r = rnd()
        cuid = (
            None
            if r < 0.4
            else (f"user_{int(rnd() * 4294967296):08x}" if r < 0.8 else f"u{int(rnd() * 10**6)}@example.com")
        )
        if android:
            idfv = idfa = None
            adid = _uuid(rng) if rnd() < 0.8 else None
            android_id = f"{rng.getrandbits(64):016x}"
            app_set = _uuid(rng) if rnd() < 0.9 else None
        else:
            idfv = _uuid(rng)
            r = rnd()
            idfa = "00000000-0000-0000-0000-000000000000" if r < 0.5 else (_uuid(rng) if r < 0.8 else None)
            adid = android_id = app_set = None
        r = rnd()
        if r < 0.45:
            attr = (None, None, "organic", None, None, None, None, None)
        elif r < 0.5:
            attr = (None, None, "unknown", None, None, None, None, None)
        else:
            src = ATTRIBUTION_SOURCES[int(rnd() * len(ATTRIBUTION_SOURCES))]
            attr = (
                src,
                str(int(rnd() * 10**12)),
                "non_organic",
                ATTRIBUTION_CHANNELS[int(rnd() * 5)],
                f"campaign_{int(rnd() * 20)}",
                f"group {int(rnd() * 5)}",
                f"set_{int(rnd() * 9)}",
                f"creative-{int(rnd() * 50)}" if rnd() < 0.8 else None,
            )
        row = [
            f"{prefix}{n:06d}",
            app,
            cuid,
            None if n % 50 == NULL_INSTALL_MOD else ts(install),
            country,
            country if rnd() < 0.9 else (None if rnd() < 0.5 else COUNTRIES[int(rnd() * ncountries)]),
            idfv,
            idfa,
            adid,
            android_id,
            app_set,
            devices[int(rnd() * len(devices))],
            _ip(rnd),
            *attr,
            pool[int(rnd() * npool)],
            ts(created),
        ]
        if n < N_PROFILE_FIXTURES:
            _profile_fixture(row, n, created)
        yield row


_P_NULLABLE = _nullable_idx("profiles")
_P_TEXT = _idx("profiles", _PROFILE_TEXT_COLS)
_P_HOSTILE = _idx("profiles", _PROFILE_HOSTILE_COLS)
_P_ATTR = COLUMNS["profiles"].index("attributes")
_P_INSTALL = COLUMNS["profiles"].index("install_date")


def _profile_fixture(row: list, n: int, created: int) -> None:
    if n == PROFILE_FIX_NULL:
        for i in _P_NULLABLE:
            row[i] = None
    elif n == PROFILE_FIX_EMPTY:
        for i in _P_TEXT:
            row[i] = ""
        row[_P_ATTR] = "{}"
        row[_P_INSTALL] = ts(created)  # install_date == created_at
    else:
        text = HOSTILE_TEXT[n - PROFILE_FIX_HOSTILE]
        for i in _P_HOSTILE:
            row[i] = text
        row[_P_ATTR] = hostile_json(text)


# Events -------------------------------------------------------------------------------------

_E = {c: i for i, c in enumerate(COLUMNS["events"])}
_E_NULLABLE = _nullable_idx("events")
_E_HOSTILE = _idx(
    "events",
    (
        "transaction_id",
        "product_id",
        "base_plan_id",
        "developer_id",
        "ab_test_name",
        "paywall_name",
        "cancellation_reason",
    ),
)
_E_TEXT_NULLABLE = _idx(
    "events",
    (
        "profile_id",
        "transaction_id",
        "original_transaction_id",
        "environment",
        "store",
        "product_id",
        "base_plan_id",
        "developer_id",
        "ab_test_name",
        "paywall_name",
        "currency",
        "cancellation_reason",
    ),
)
_E_MONEY = _E["revenue_usd"]

# Named fixtures of the events table: row n of each (app, day) for n < len(EVENT_FIXTURES).
EVENT_FIXTURES: tuple[str, ...] = (
    "boundary_start",  # created_at = D 00:00:00.000000 (event_datetime the same); profile = NULL-profile fixture
    "boundary_end",  # created_at = D 23:59:59.999999
    "late_arrival",  # event_datetime D-1 23:5x:xx.xxxxxx, created_at D 00:0x:xx.xxxxxx
    "late_arrival_edge",  # event_datetime D-1 23:59:59.999999, created_at D 00:00:00.500000
    "whole_second",  # created_at D 12:00:00.000000, event_datetime D 11:59:59.000000
    "no_profile",  # profile_id NULL
    "before_install",  # event_datetime days before the profile's install_date
    "all_null",  # every nullable column NULL (so also no profile)
    "empty_strings",  # every nullable text column '' except profile_id; profile = empty-string fixture
    "mixed_case_trial",  # event_type 'Trial_Started'
    "mixed_case_upper",  # event_type 'SUBSCRIPTION_RENEWED'
    "money_9.99",
    "money_0.1",
    "money_4.495",
    "money_1234.5",
    "money_0",
    "money_0.0001",
    "money_9999999.9999",
    *(f"type_{t}" for t in EVENT_TYPES),  # one row per event type, stores/currencies/envs rotating
    *(f"hostile_{i}" for i in range(N_HOSTILE)),  # HOSTILE_TEXT[i] in text columns; profile = hostile fixture i
)
_MONEY_FIXTURES = {
    "money_9.99": "9.99",
    "money_0.1": "0.1",
    "money_4.495": "4.495",
    "money_1234.5": "1234.5",
    "money_0": "0",
    "money_0.0001": "0.0001",
    "money_9999999.9999": "9999999.9999",
}


def _period(product: str) -> int:
    if "weekly" in product:
        return 7 * DAY_US
    if "annual" in product:
        return 365 * DAY_US
    return 30 * DAY_US


def _event_rows(ctx: _AppContext, k: int, n_rows: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "events", ctx.app, day.isoformat())
    rnd = rng.random
    app, android = ctx.app, ctx.android
    day0 = ctx.day0[k]
    id_prefix = f"evt-{app}-{day:%Y%m%d}-"
    home_store = "play_store" if android else "app_store"
    base = app.replace("-", "_")
    sub_products = (f"{base}.premium.weekly", f"{base}.premium.monthly", f"{base}.premium.annual")
    one_time = (f"{base}.coins.100", f"{base}.lifetime")
    money_table = _MONEY_TABLE
    pick_types = _EVENT_PICK
    ntypes = len(pick_types)
    pick_cur = _CURRENCY_PICK
    ncur = len(pick_cur)
    pick_profile = ctx.pick_profile

    def build(n: int, created: int, ev: int, et: str, pid: str | None, store: str, currency: str) -> list:
        base_type = et.lower()
        if store == "app_store":
            txn = str(200000000000000 + int(rnd() * 10**15))
        elif store == "play_store":
            s = f"{int(rnd() * 10**17):017d}"
            txn = f"GPA.{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}"
        else:
            txn = f"pi_{rng.getrandbits(96):024x}"
        if base_type in STARTING_TYPES:
            otxn = txn
        elif store == "play_store":
            otxn = txn + f"..{int(rnd() * 12)}"
        else:
            otxn = (
                str(200000000000000 + int(rnd() * 10**15)) if store == "app_store" else f"pi_{rng.getrandbits(96):024x}"
            )
        if base_type in ONE_TIME_TYPES:
            product = one_time[int(rnd() * 2)]
            expires = None
        else:
            product = sub_products[int(rnd() * 3)]
            expires = ts(ev + (3 * DAY_US if base_type.startswith("trial") else _period(product)))
        if base_type in MONETARY_TYPES:
            mt = money_table[currency]
            amounts = mt[int(rnd() * len(mt))] if rnd() > 0.02 else _NULL_MONEY
        else:
            amounts = _NULL_MONEY if rnd() < 0.8 else _ZERO_MONEY
        r = rnd()
        if r < 0.5:
            ab_name = ab_rev = None
        else:
            ab_name, ab_rev = AB_TESTS[int(rnd() * 4)], int(rnd() * 5) + 1
        r = rnd()
        if r < 0.3:
            pw_name = pw_rev = dev_id = None
        else:
            pw_name, pw_rev, dev_id = PAYWALLS[int(rnd() * 5)], int(rnd() * 9), PLACEMENTS[int(rnd() * 5)]
        return [
            f"{id_prefix}{n:07d}",
            app,
            pid,
            et,
            ts(ev),
            txn if rnd() > 0.02 else None,
            otxn,
            expires,
            "Production" if rnd() > 0.03 else "Sandbox",
            *amounts,
            store,
            product,
            (
                "monthly-base"
                if store == "play_store"
                else f"price_{int(rnd() * 2**40):010x}"
                if store == "stripe"
                else None
            ),
            dev_id,
            ab_name,
            ab_rev,
            pw_name,
            pw_rev,
            currency,
            CANCELLATION_REASONS[int(rnd() * 7)] if base_type in CANCEL_TYPES else None,
            ts(created),
        ]

    n_fix = len(EVENT_FIXTURES)
    for n in range(max(n_rows, n_fix)):
        if n < n_fix:
            yield _event_fixture(ctx, k, n, build, rnd)
            continue
        created = day0 + int(rnd() * DAY_US)
        if rnd() < 0.1:
            created -= created % SEC
        r = rnd()
        lag = int(rnd() * 5 * SEC) if r < 0.7 else int(rnd() * 10 * MINUTE) if r < 0.95 else int(rnd() * MAX_LAG)
        ev = created - lag
        et = pick_types[int(rnd() * ntypes)]
        if rnd() < 0.01:
            et = mixed_case(et)
        r = rnd()
        if r < 0.03:
            pid = None
        elif r < 0.06:  # history: happened before the profile installed the SDK
            pid, pday0 = ctx.pick_old_profile(rnd, k)
            ev = pday0 - DAY_US - int(rnd() * 30 * DAY_US)
        else:
            pid = pick_profile(rnd, ev)
        r = rnd()
        store = home_store if r < 0.92 else "stripe"
        yield build(n, created, ev, et, pid, store, pick_cur[int(rnd() * ncur)])


def _event_fixture(ctx: _AppContext, k: int, n: int, build: Callable[..., list], rnd: Callable[[], float]) -> list:
    name = EVENT_FIXTURES[n]
    day0 = ctx.day0[k]
    prev = k - 1  # pool day before this day: all its profiles exist before D 00:00
    store = STORES[n % 3]
    currency = CURRENCIES[n % len(CURRENCIES)]
    created = day0 + 6 * HOUR + n * MINUTE + 123457 * (n % 7)
    ev = created - 1500 * n
    pid: str | None = ctx.profile_id(prev, N_PROFILE_FIXTURES + n % (ctx.per_day - N_PROFILE_FIXTURES))
    et = "subscription_renewed"
    if name == "boundary_start":
        created = ev = day0
        pid = ctx.profile_id(prev, PROFILE_FIX_NULL)
    elif name == "boundary_end":
        created = day0 + DAY_US - 1
        ev = created - 1234567
    elif name == "late_arrival":
        ev = day0 - 10 * MINUTE + int(rnd() * 10 * MINUTE)
        created = day0 + 1 + int(rnd() * 10 * MINUTE - 1)
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "late_arrival_edge":
        ev, created = day0 - 1, day0 + 500000
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES + 1) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "whole_second":
        created, ev = day0 + 12 * HOUR, day0 + 12 * HOUR - SEC
    elif name == "no_profile":
        pid = None
    elif name == "before_install":
        pid, pday0 = ctx.pick_old_profile(rnd, k)
        ev = pday0 - 2 * DAY_US - int(rnd() * DAY_US)
    elif name == "empty_strings":
        pid = ctx.profile_id(prev, PROFILE_FIX_EMPTY)
    elif name == "mixed_case_trial":
        et = "Trial_Started"
    elif name == "mixed_case_upper":
        et = "SUBSCRIPTION_RENEWED"
    elif name.startswith("type_"):
        et = name[5:]
    elif name.startswith("hostile_"):
        pid = ctx.profile_id(prev, PROFILE_FIX_HOSTILE + int(name[8:]))
    row = build(n, created, ev, et, pid, store, currency)
    row[_E["environment"]] = "Sandbox" if n % 4 == 0 else "Production"
    if name == "all_null":
        for i in _E_NULLABLE:
            row[i] = None
    elif name == "empty_strings":
        for i in _E_TEXT_NULLABLE[1:]:
            row[i] = ""
    elif name.startswith("hostile_"):
        text = HOSTILE_TEXT[int(name[8:])]
        for i in _E_HOSTILE:
            row[i] = text
        row[_E["cancellation_reason"]] = text
    elif name in _MONEY_FIXTURES:
        row[_E["event_type"]] = "subscription_started"
        row[_E["currency"]] = "USD"
        v = money(_MONEY_FIXTURES[name])
        row[_E_MONEY : _E_MONEY + 8] = [v, v, v, 0.0, v, v, v, 0.0]
        row[_E["transaction_id"]] = row[_E["original_transaction_id"]]
    return row


# Paywall visits -----------------------------------------------------------------------------

_V = {c: i for i, c in enumerate(COLUMNS["paywall_visits"])}
_V_NULLABLE = _nullable_idx("paywall_visits")
_V_HOSTILE = _idx("paywall_visits", ("developer_id", "ab_test_name", "paywall_name"))
_V_TEXT_NULLABLE = _idx("paywall_visits", ("store", "developer_id", "ab_test_name", "paywall_name"))
VISIT_FIXTURES: tuple[str, ...] = (
    "boundary_start",
    "boundary_end",
    "late_arrival",
    "late_arrival_edge",
    "whole_second",
    "no_profile",
    "all_null",
    "empty_strings",
    "store_app_store",
    "store_play_store",
    "store_stripe",
    *(f"hostile_{i}" for i in range(N_HOSTILE)),
)


def _visit_rows(ctx: _AppContext, k: int, n_rows: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "paywall_visits", ctx.app, day.isoformat())
    rnd = rng.random
    app, day0 = ctx.app, ctx.day0[k]
    id_prefix = f"pwv-{app}-{day:%Y%m%d}-"
    home_store = "play_store" if ctx.android else "app_store"
    pick_profile = ctx.pick_profile
    n_fix = len(VISIT_FIXTURES)
    for n in range(max(n_rows, n_fix)):
        pid: str | None
        if n < n_fix:
            name = VISIT_FIXTURES[n]
            created = day0 + 7 * HOUR + n * MINUTE + 234567 * (n % 5)
            shown = created - 2000 * n
            pid = ctx.profile_id(k - 1, N_PROFILE_FIXTURES + n % (ctx.per_day - N_PROFILE_FIXTURES))
            store = STORES[n % 3]
            if name == "boundary_start":
                created = shown = day0
                pid = ctx.profile_id(k - 1, PROFILE_FIX_NULL)
            elif name == "boundary_end":
                created, shown = day0 + DAY_US - 1, day0 + DAY_US - 1 - 999999
            elif name == "late_arrival":
                shown, created = day0 - 3 * MINUTE - 141421, day0 + 2 * MINUTE + 271828
                pid = ctx.profile_id(k - 2, N_PROFILE_FIXTURES) if k >= 2 else pick_profile(rnd, shown)
            elif name == "late_arrival_edge":
                shown, created = day0 - 1, day0
                pid = ctx.profile_id(k - 2, N_PROFILE_FIXTURES + 1) if k >= 2 else pick_profile(rnd, shown)
            elif name == "whole_second":
                created, shown = day0 + 13 * HOUR, day0 + 13 * HOUR - 5 * SEC
            elif name in ("no_profile", "all_null"):
                pid = None
            elif name == "empty_strings":
                pid = ctx.profile_id(k - 1, PROFILE_FIX_EMPTY)
            elif name.startswith("store_"):
                store = name[6:]
            elif name.startswith("hostile_"):
                pid = ctx.profile_id(k - 1, PROFILE_FIX_HOSTILE + int(name[8:]))
        else:
            created = day0 + int(rnd() * DAY_US)
            if rnd() < 0.1:
                created -= created % SEC
            shown = created - (int(rnd() * 3 * SEC) if rnd() < 0.9 else int(rnd() * MAX_LAG))
            pid = None if rnd() < 0.03 else pick_profile(rnd, shown)
            store = home_store if rnd() < 0.92 else "stripe"
        r = rnd()
        ab_name, ab_rev = (None, None) if r < 0.4 else (AB_TESTS[int(rnd() * 4)], int(rnd() * 5) + 1)
        r = rnd()
        if r < 0.1:
            pw_name = pw_rev = dev_id = None
        else:
            pw_name, pw_rev, dev_id = PAYWALLS[int(rnd() * 5)], int(rnd() * 9), PLACEMENTS[int(rnd() * 5)]
        row = [f"{id_prefix}{n:07d}", app, pid, store, ts(shown), dev_id, ab_name, ab_rev, pw_name, pw_rev, ts(created)]
        if n < n_fix:
            name = VISIT_FIXTURES[n]
            if name == "all_null":
                for i in _V_NULLABLE:
                    row[i] = None
            elif name == "empty_strings":
                for i in _V_TEXT_NULLABLE:
                    row[i] = ""
            elif name.startswith("hostile_"):
                for i in _V_HOSTILE:
                    row[i] = HOSTILE_TEXT[int(name[8:])]
        yield row


# UA -----------------------------------------------------------------------------------------


def _campaign_rows(ctx: _AppContext) -> Iterator[list]:
    for c in ctx.campaigns:
        yield [ctx.app, c.campaign_id, c.campaign_name, c.platform, ts(c.created_us)]


_U = {c: i for i, c in enumerate(COLUMNS["ua_events"])}
_U_NULLABLE = _nullable_idx("ua_events")
_U_HOSTILE = _idx(
    "ua_events",
    (
        "adset_name",
        "ad_name",
        "attribution_source",
        "attribution_network_user_id",
        "attribution_status",
        "attribution_channel",
        "attribution_campaign",
        "attribution_ad_group",
        "attribution_ad_set",
        "attribution_creative",
        "user_agent",
        "device",
        "app_version",
    ),
)
_U_TEXT_NULLABLE = tuple(
    i
    for i, c in enumerate(COLUMNS["ua_events"])
    if c not in NOT_NULL["ua_events"]
    and c != "profile_id"
    and not c.endswith("_datetime")
    and c not in ("conversion_value_usd", "conversion_value_local", "custom_parameters")
)
UA_EVENT_FIXTURES: tuple[str, ...] = (
    "boundary_start",
    "boundary_end",
    "late_arrival",
    "late_arrival_edge",
    "whole_second",
    "no_profile",
    "before_campaign",  # event_datetime before its campaign's created_at (campaign index 1, created start-3d)
    "all_null",
    "empty_strings",
    "mixed_case",
    "organic",
    *(f"type_{t}" for t in UA_EVENT_TYPES),
    *(f"hostile_{i}" for i in range(N_HOSTILE)),
)


def _ua_event_rows(ctx: _AppContext, k: int, n_rows: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "ua_events", ctx.app, day.isoformat())
    rnd = rng.random
    app, android, day0 = ctx.app, ctx.android, ctx.day0[k]
    id_prefix = f"uae-{app}-{day:%Y%m%d}-"
    params = _custom_params_pool(rng)
    nparams = len(params)
    active = [c for c in ctx.campaigns if c.created_us < day0 - MAX_LAG]
    pick_types = _UA_PICK
    ntypes = len(pick_types)
    pick_cur = _CURRENCY_PICK
    ncur = len(pick_cur)
    pick_profile = ctx.pick_profile
    uas = ANDROID_UA if android else IOS_UA
    devices = ANDROID_DEVICES if android else IOS_DEVICES
    device_type = "Android" if android else "iOS"
    os_versions = ("14", "13", "12", "15") if android else ("17.4.1", "18.1", "16.7.10", "18.3")
    n_fix = len(UA_EVENT_FIXTURES)

    def build(n: int, created: int, ev: int, et: str, pid: str | None, camp: Campaign | None) -> list:
        base_type = et.lower()
        if camp is not None:
            adset = camp.adsets[int(rnd() * 2)]
            ad = adset.ads[int(rnd() * 3)]
            click = ev - int(rnd() * 2 * HOUR) - SEC
            install = click + int(rnd() * (ev - click))
            src = camp.platform
            attrs = (
                camp.campaign_id,
                adset.adset_id,
                adset.adset_name,
                ad.ad_id,
                ad.ad_name,
                src,
                str(int(rnd() * 10**15)),
                "non_organic",
                ATTRIBUTION_CHANNELS[int(rnd() * 5)],
                camp.campaign_name,
                adset.adset_name,
                adset.adset_name,
                ad.ad_name,
            )
        else:
            click = install = None
            attrs = (None, None, None, None, None, None, None, "organic", None, None, None, None, None)
        if base_type in ("impression", "click"):
            install = None
            if base_type == "click" and click is not None:
                click = ev
        elif base_type in ("install", "reinstall"):
            install = ev
        conv_type = base_type if base_type in UA_CONVERSION_TYPES else None
        if conv_type is not None and base_type != "trial_started":
            currency = pick_cur[int(rnd() * ncur)]
            mt = _MONEY_TABLE[currency]
            amounts = mt[int(rnd() * len(mt))]
            cv_usd, cv_local = amounts[0], amounts[4]
        elif conv_type is not None:
            currency, cv_usd, cv_local = "USD", 0.0, 0.0
        else:
            currency = cv_usd = cv_local = None
        if android:
            ids = (None, None, _uuid(rng) if rnd() < 0.8 else None, f"{rng.getrandbits(64):016x}", _uuid(rng))
        else:
            r = rnd()
            ids = (
                "00000000-0000-0000-0000-000000000000" if r < 0.5 else _uuid(rng) if r < 0.8 else None,
                _uuid(rng),
                None,
                None,
                None,
            )
        return [
            f"{id_prefix}{n:07d}",
            app,
            pid,
            et,
            ts(ev),
            *attrs,
            ts(click) if click is not None else None,
            ts(install) if install is not None else None,
            ts(ev) if conv_type is not None else None,
            conv_type,
            cv_usd,
            cv_local,
            currency,
            COUNTRIES[int(rnd() * len(COUNTRIES))],
            device_type,
            os_versions[int(rnd() * 4)],
            f"3.{int(rnd() * 14)}.{int(rnd() * 5)}",
            uas[int(rnd() * len(uas))] if rnd() < 0.9 else None,
            _ip(rnd),
            *ids,
            devices[int(rnd() * len(devices))],
            params[int(rnd() * nparams)],
            ts(created),
        ]

    for n in range(max(n_rows, n_fix)):
        if n < n_fix:
            yield _ua_fixture(ctx, k, n, build, rnd, active)
            continue
        created = day0 + int(rnd() * DAY_US)
        if rnd() < 0.1:
            created -= created % SEC
        r = rnd()
        lag = int(rnd() * 5 * SEC) if r < 0.7 else int(rnd() * 10 * MINUTE) if r < 0.95 else int(rnd() * MAX_LAG)
        ev = created - lag
        et = pick_types[int(rnd() * ntypes)]
        if rnd() < 0.01:
            et = mixed_case(et)
        camp = None if rnd() < 0.1 else active[int(rnd() * len(active))]
        r = rnd()
        if camp is not None and r < 0.03:  # before the campaign existed
            ev = camp.created_us - HOUR - int(rnd() * 5 * DAY_US)
            pid = None if rnd() < 0.5 else ctx.pick_old_profile(rnd, k)[0]
        elif r < 0.07:
            pid = None
        else:
            pid = pick_profile(rnd, ev)
        yield build(n, created, ev, et, pid, camp)


def _ua_fixture(
    ctx: _AppContext, k: int, n: int, build: Callable[..., list], rnd: Callable[[], float], active: list[Campaign]
) -> list:
    name = UA_EVENT_FIXTURES[n]
    day0 = ctx.day0[k]
    prev = k - 1
    created = day0 + 8 * HOUR + n * MINUTE + 345679 * (n % 6)
    ev = created - 2500 * n
    pid: str | None = ctx.profile_id(prev, N_PROFILE_FIXTURES + n % (ctx.per_day - N_PROFILE_FIXTURES))
    camp: Campaign | None = active[n % len(active)]
    et = "install"
    if name == "boundary_start":
        created = ev = day0
        pid = ctx.profile_id(prev, PROFILE_FIX_NULL)
    elif name == "boundary_end":
        created = day0 + DAY_US - 1
        ev = created - 7654321
    elif name == "late_arrival":
        ev, created = day0 - 8 * MINUTE - 333333, day0 + 4 * MINUTE + 444444
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "late_arrival_edge":
        ev, created = day0 - 1, day0 + 1
        pid = ctx.profile_id(prev - 1, N_PROFILE_FIXTURES + 1) if prev >= 1 else ctx.pick_profile(rnd, ev)
    elif name == "whole_second":
        created, ev = day0 + 14 * HOUR, day0 + 14 * HOUR - 60 * SEC
    elif name in ("no_profile", "all_null"):
        pid = None
    elif name == "before_campaign":
        camp = ctx.campaigns[1]
        ev = camp.created_us - DAY_US - int(rnd() * DAY_US)
    elif name == "empty_strings":
        pid = ctx.profile_id(prev, PROFILE_FIX_EMPTY)
    elif name == "mixed_case":
        et = "Install"
    elif name == "organic":
        camp = None
    elif name.startswith("type_"):
        et = name[5:]
    elif name.startswith("hostile_"):
        pid = ctx.profile_id(prev, PROFILE_FIX_HOSTILE + int(name[8:]))
    row = build(n, created, ev, et, pid, camp)
    if name == "all_null":
        for i in _U_NULLABLE:
            row[i] = None
    elif name == "empty_strings":
        for i in _U_TEXT_NULLABLE:
            row[i] = ""
        row[_U["custom_parameters"]] = "{}"
    elif name.startswith("hostile_"):
        text = HOSTILE_TEXT[int(name[8:])]
        for i in _U_HOSTILE:
            row[i] = text
        row[_U["custom_parameters"]] = hostile_json(text)
    return row


# Edge cases of ua_ad_metrics_daily, on campaign 0's six ads (created start-60d: active every day).
# (impressions, clicks, installs, conversions, spend_usd, spend_local, ltv_usd); "r" = random.
METRIC_FIXTURES: tuple[tuple[object, ...], ...] = (
    (0, 0, 0, 0, "0", "0", "0"),  # ad 0: everything zero
    ("r", 0, 0, 0, "r", "r", None),  # ad 1: impressions > 0, clicks 0, installs 0
    ("r", "r", 0, 0, "r", "r", "r"),  # ad 2: clicks > 0, installs 0
    ("r", "r", "r", "r", None, None, "r"),  # ad 3: spend NULL
    (None, "r", "r", None, "r", "r", "r"),  # ad 4: impressions NULL, conversions NULL
    (None, None, None, None, None, None, None),  # ad 5: every metric NULL
)


def _metric_rows(ctx: _AppContext, k: int) -> Iterator[list]:
    day = ctx.start + dt.timedelta(days=k - 1)
    rng = _rng(ctx.seed, "ua_ad_metrics_daily", ctx.app, day.isoformat())
    rnd = rng.random
    end = ctx.day0[k] + DAY_US
    date = day.isoformat()
    for camp in ctx.campaigns:
        if camp.created_us >= end:
            continue
        rate = _USD_RATE[camp.currency]
        for j, adset in enumerate(camp.adsets):
            for a, ad in enumerate(adset.ads):
                imps = int(rnd() * 50000) + 1
                clicks = int(imps * rnd() * 0.05) + 1
                installs = int(clicks * rnd() * 0.4) + 1
                conv = int(installs * rnd() * 0.3)
                spend_u = int(rnd() * 500 * 10000)  # 0.0001 units
                if rnd() < 0.3:
                    spend_u -= spend_u % 100  # 2 decimals
                spend_l = round(spend_u / rate)
                ltv_u = int(spend_u * rnd() * 1.5)
                vals: list = [imps, clicks, installs, conv, _m(spend_u), _m(spend_l), _m(ltv_u)]
                if camp.index == 0:
                    fixture = METRIC_FIXTURES[j * 3 + a]
                    vals = [
                        v if f == "r" else (None if f is None else money(f) if isinstance(f, str) else f)
                        for v, f in zip(vals, fixture, strict=False)
                    ]
                elif camp.index == 1 and j == 0 and a == 0:
                    vals[4:7] = [money("0.0001"), money("9999999.9999"), money("1234.5")]
                yield [ctx.app, camp.campaign_id, adset.adset_id, adset.adset_name, ad.ad_id, ad.ad_name, date, *vals]


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

BATCH_ROWS = 50_000
# COPY's NULL marker. Python's str(None) is "None", so a row becomes CSV with one C-level join;
# the text "None" (a hostile value) is quoted, and PostgreSQL never reads a quoted value as NULL.
_PG_NULL = "None"


def _batches(rows: Iterable[list], size: int) -> Iterator[list[list]]:
    batch: list[list] = []
    append = batch.append
    for row in rows:
        append(row)
        if len(batch) >= size:
            yield batch
            batch = []
            append = batch.append
    if batch:
        yield batch


class _ChunkReader:
    """File-like object for copy_expert, fed CSV chunks by a producer thread through a queue."""

    def __init__(self, q: queue.Queue):
        self.q = q
        self.buf = b""
        self.pos = 0
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while self.pos >= len(self.buf):
            if self.done:
                return b""
            item = self.q.get()
            if item is None:
                self.done = True
                return b""
            if isinstance(item, BaseException):
                self.done = True
                raise item
            self.buf, self.pos = item, 0
        if size is None or size < 0:
            size = len(self.buf) - self.pos
        out = self.buf[self.pos : self.pos + size]
        self.pos += len(out)
        return out

    readline = read


def _csv_field(v: object) -> str:
    if v is None:
        return _PG_NULL
    if type(v) is str:
        if v == _PG_NULL or v == "" or '"' in v or "," in v or "\n" in v or "\r" in v:
            return '"' + v.replace('"', '""') + '"'
        return v
    return str(v)  # int, or float whose repr is the exact decimal


def csv_line(row: list) -> str:
    """One row as a PostgreSQL COPY CSV line (NULL unquoted None, every text value exact)."""
    return ",".join(map(_csv_field, row))


def _csv_chunks(rows: Iterable[list], count: list[int], ncols: int) -> Iterator[bytes]:
    commas = ncols - 1
    for batch in _batches(rows, BATCH_ROWS):
        lines = []
        append = lines.append
        for row in batch:
            # Fast path: nothing to quote. str(None) is the NULL marker; ints and floats print exactly.
            line = ",".join(map(str, row))
            if line.count(",") != commas or '"' in line or "\n" in line or "\r" in line or "None" in row:
                line = ",".join(map(_csv_field, row))
            append(line)
        append("")
        count[0] += len(batch)
        yield "\n".join(lines).encode("utf-8")


def _pg_copy(conn: Any, table: str, rows: Iterable[list]) -> int:
    """Stream ``rows`` into ``table`` with COPY FROM STDIN; generation overlaps the server's work."""
    cols = ", ".join(COLUMNS[table])
    sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{_PG_NULL}', ENCODING 'UTF8')"
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    count = [0]

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in _csv_chunks(rows, count, len(COLUMNS[table])):
                if not put(chunk):
                    return
            put(None)
        except BaseException as exc:
            put(exc)

    thread = threading.Thread(target=produce, name=f"synthetic-{table}", daemon=True)
    thread.start()
    try:
        with conn.cursor() as cur:
            cur.copy_expert(sql, _ChunkReader(q), size=1 << 20)
    finally:
        stop.set()
        thread.join()
    return count[0]


def _sqlite_insert(conn: Any, table: str, rows: Iterable[list]) -> int:
    cols = COLUMNS[table]
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    n = 0
    for batch in _batches(rows, BATCH_ROWS):
        conn.executemany(sql, batch)
        n += len(batch)
    return n


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


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
        prog="python -m subscription_exports.synthetic", description=__doc__.split("\n\n")[0]
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


if __name__ == "__main__":
    sys.exit(main())
