"""Vocabulary: event types, currencies, stores, devices, attribution and the hostile texts."""

from __future__ import annotations

from subscription_exports.integrations import SUBSCRIPTION_EVENT_GROUPS

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
