"""Table shapes as data: one declaration per exported table.

The transform, the tests and docs/table-shapes.md all read these declarations, so the
documented shape (column names, order, value kinds) lives in exactly one place.
Columns that settings add (``attributes``) are appended after the documented
prefix, which therefore stays stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a column's source text is rendered in the CSV."""

    TEXT = "text"  # as stored
    EVENT_TYPE = "event_type"  # lower-cased, then renamed per destination
    TIMESTAMP = "timestamp"  # 2026-03-07T12:34:56.123456+00:00
    DATE = "date"  # 2026-03-07
    DECIMAL = "decimal"  # plain decimal, exact, trailing zeros trimmed: 9.99, 10, 0.1
    INTEGER = "integer"  # 42
    JSON = "json"  # compact JSON object, keys sorted: {"a":1,"b":"x"}
    RATIO = "ratio"  # derived metric, 6 decimal places, empty on zero/NULL denominator


TIMESTAMP_FORMAT_DOC = "YYYY-MM-DDTHH:MM:SS.ffffff+00:00 (ISO 8601, UTC, always 6 fraction digits)"

# Parquet column types (``format: parquet``), spelled as Arrow prints them (``str(pyarrow type)``);
# subscription_exports.parquet maps each to its Arrow type. Money is the source's numeric(18, 4)
# (include/sql/postgres/schema.sql), never a float; derived metrics keep their 6 places, in 38 digits
# (1000 * a numeric(18, 4) spend over a count cannot exceed them).
STRING = "string"
TIMESTAMP_UTC = "timestamp[us, tz=UTC]"
DATE32 = "date32[day]"
INT64 = "int64"
MONEY = "decimal128(18, 4)"
METRIC = "decimal128(38, 6)"
PARQUET_TYPES: dict[Kind, str] = {
    Kind.TEXT: STRING,
    Kind.EVENT_TYPE: STRING,
    Kind.TIMESTAMP: TIMESTAMP_UTC,
    Kind.DATE: DATE32,
    Kind.DECIMAL: MONEY,
    Kind.INTEGER: INT64,
    Kind.JSON: STRING,  # the same JSON text the CSV holds
    Kind.RATIO: METRIC,
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    # The column's type in a Parquet file: by default its kind's (PARQUET_TYPES); a column whose
    # source has another precision (e.g. numeric(20, 8)) names its own here.
    parquet_type: str = ""

    def __post_init__(self) -> None:
        if not self.parquet_type:
            object.__setattr__(self, "parquet_type", PARQUET_TYPES[self.kind])


@dataclass(frozen=True)
class Ratio:
    """A derived metric: ``scale * numerator / denominator`` rounded to 6 places."""

    numerator: str
    denominator: str
    scale: int = 1


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    # Which source column decides the day a row belongs to (SPEC section 3).
    window_column: str
    # Table-specific settings that add trailing columns.
    supports_attributes: bool = False
    # The source tables the table's SQL (include/sql/<dialect>/<name>.sql) reads, for lineage.
    source_tables: tuple[str, ...] = ()
    ratios: tuple[tuple[str, Ratio], ...] = ()
    schema_version: int = 1

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def header(self, *, with_attributes: bool) -> list[str]:
        names = self.column_names
        if with_attributes:
            names.append(ATTRIBUTES.name)
        return names

    def output_columns(self, *, with_attributes: bool) -> list[Column]:
        """The file's columns in order (``header``'s names), with their kinds and Parquet types."""
        return [*self.columns, ATTRIBUTES] if with_attributes else list(self.columns)

    def sql_file(self, dialect: str) -> str:
        return f"{dialect}/{self.name}.sql"


def _c(name: str, kind: Kind, description: str) -> Column:
    return Column(name, kind, description)


T, TS, DEC, INT = Kind.TEXT, Kind.TIMESTAMP, Kind.DECIMAL, Kind.INTEGER

ATTRIBUTES = _c(
    "attributes",
    Kind.JSON,
    "Profile's custom attributes as a JSON object; empty when none. Only with send_user_attributes.",
)

_ATTRIBUTION = (
    _c("attribution_source", T, "Attribution source."),
    _c("attribution_network_user_id", T, "ID assigned to the user by attribution source."),
    _c("attribution_status", T, "Can be organic, non_organic or unknown."),
    _c("attribution_channel", T, "Marketing channel name."),
    _c("attribution_campaign", T, "Marketing campaign name."),
    _c("attribution_ad_group", T, "Attribution ad group."),
    _c("attribution_ad_set", T, "Attribution ad set."),
    _c("attribution_creative", T, "Attribution creative keyword."),
)

EVENTS = TableSpec(
    name="events",
    source_tables=("events", "profiles"),
    window_column="created_at",
    supports_attributes=True,
    columns=(
        _c("profile_id", T, "Adapty user ID."),
        _c("event_type", Kind.EVENT_TYPE, "Lower cased event name."),
        _c("event_datetime", TS, "When the event happened."),
        _c("transaction_id", T, "A unique identifier for a transaction such as a purchase or renewal."),
        _c("original_transaction_id", T, "The transaction identifier of the original purchase."),
        _c("subscription_expires_at", TS, "The expiration date of the subscription."),
        _c("environment", T, "Sandbox or Production."),
        _c("revenue_usd", DEC, "Revenue in USD. Can be empty."),
        _c("proceeds_usd", DEC, "Proceeds in USD. Can be empty."),
        _c("net_revenue_usd", DEC, "Net revenue (income after taxes) in USD. Can be empty."),
        _c("tax_amount_usd", DEC, "Amount deducted for taxes in USD. Can be empty."),
        _c("revenue_local", DEC, "Revenue in local currency. Can be empty."),
        _c("proceeds_local", DEC, "Proceeds in local currency. Can be empty."),
        _c("net_revenue_local", DEC, "Net revenue in local currency. Can be empty."),
        _c("tax_amount_local", DEC, "Taxes in local currency. Can be empty."),
        _c("customer_user_id", T, "Developer user ID. Empty if not set."),
        _c("store", T, "app_store, play_store or stripe."),
        _c("product_id", T, "Product ID in the store."),
        _c("base_plan_id", T, "Base plan ID (Google Play) or price ID (Stripe)."),
        _c("developer_id", T, "Developer (SDK) ID of the paywall where the transaction originated."),
        _c("ab_test_name", T, "Name of the A/B test where the transaction originated."),
        _c("ab_test_revision", INT, "Revision of the A/B test."),
        _c("paywall_name", T, "Name of the paywall where the transaction originated."),
        _c("paywall_revision", INT, "Revision of the paywall."),
        _c("profile_county", T, "Profile country determined by Adapty, based on IP (sic: spelled as documented)."),
        _c("install_date", TS, "When the installation happened."),
        _c("idfv", T, "identifierForVendor on iOS devices."),
        _c("idfa", T, "advertisingIdentifier on iOS devices."),
        _c("advertising_id", T, "Android Advertising ID."),
        _c("ip_address", T, "Device IP (IPv4 or IPv6)."),
        _c("cancellation_reason", T, "Why the user cancelled a subscription."),
        _c("android_app_set_id", T, "Android AppSetId."),
        _c("android_id", T, "Android ID."),
        _c("device", T, "The end-user-visible device model name."),
        _c("currency", T, "ISO-4217 currency code of the transaction."),
        _c("store_country", T, "Profile country determined by Apple/Google store."),
        *_ATTRIBUTION,
    ),
)

PAYWALL_VISITS = TableSpec(
    name="paywall_visits",
    source_tables=("paywall_visits", "profiles"),
    window_column="created_at",
    supports_attributes=True,
    columns=(
        _c("profile_id", T, "Adapty user ID."),
        _c("customer_user_id", T, "Developer user ID. Empty if not set."),
        _c("profile_country", T, "Profile country determined by Apple/Google store."),
        _c("install_date", TS, "When the installation happened."),
        _c("store", T, "app_store, play_store or stripe."),
        _c("paywall_showed_at", TS, "When the paywall was displayed."),
        _c("developer_id", T, "Developer (SDK) ID of the paywall."),
        _c("ab_test_name", T, "Name of the A/B test."),
        _c("ab_test_revision", INT, "Revision of the A/B test."),
        _c("paywall_name", T, "Name of the paywall."),
        _c("paywall_revision", INT, "Revision of the paywall."),
    ),
)

UA_EVENTS = TableSpec(
    name="ua_events",
    source_tables=("ua_events", "ua_campaigns", "profiles"),
    window_column="created_at",
    supports_attributes=True,
    columns=(
        _c("profile_id", T, "Adapty user ID."),
        _c("event_type", Kind.EVENT_TYPE, "Lower cased event name."),
        _c("event_datetime", TS, "When the event happened."),
        _c("campaign_id", T, "Unique identifier for the user acquisition campaign."),
        _c("campaign_name", T, "Name of the user acquisition campaign."),
        _c("adset_id", T, "Unique identifier for the ad set within the campaign."),
        _c("adset_name", T, "Name of the ad set."),
        _c("ad_id", T, "Unique identifier for the individual ad."),
        _c("ad_name", T, "Name of the individual ad."),
        _c("platform", T, "Platform where the campaign runs (Meta, TikTok, Google Ads)."),
        *_ATTRIBUTION,
        _c("click_datetime", TS, "When the user clicked the ad."),
        _c("install_datetime", TS, "When the user installed the app."),
        _c("conversion_datetime", TS, "When the conversion event occurred."),
        _c("conversion_type", T, "Type of conversion."),
        _c("conversion_value_usd", DEC, "Value of the conversion in USD."),
        _c("conversion_value_local", DEC, "Value of the conversion in local currency."),
        _c("currency", T, "ISO-4217 currency code."),
        _c("country", T, "Country where the user is located."),
        _c("device_type", T, "Type of device (iOS, Android)."),
        _c("os_version", T, "Operating system version."),
        _c("app_version", T, "Version of the app when the event occurred."),
        _c("user_agent", T, "Device browser user-agent."),
        _c("ip_address", T, "Device IP (IPv4 or IPv6)."),
        _c("idfa", T, "advertisingIdentifier on iOS devices."),
        _c("idfv", T, "identifierForVendor on iOS devices."),
        _c("advertising_id", T, "Android Advertising ID."),
        _c("android_id", T, "Android ID."),
        _c("android_app_set_id", T, "Android AppSetId."),
        _c("device", T, "The end-user-visible device model name."),
        _c("custom_parameters", Kind.JSON, "JSON of custom parameters passed with the campaign."),
    ),
)

CAMPAIGN_PERFORMANCE = TableSpec(
    name="campaign_performance",
    source_tables=("ua_ad_metrics_daily", "ua_campaigns"),
    window_column="date",
    columns=(
        _c("campaign_id", T, "Unique identifier for the user acquisition campaign."),
        _c("campaign_name", T, "Name of the user acquisition campaign."),
        _c("adset_id", T, "Unique identifier for the ad set."),
        _c("adset_name", T, "Name of the ad set."),
        _c("ad_id", T, "Unique identifier for the individual ad."),
        _c("ad_name", T, "Name of the individual ad."),
        _c("platform", T, "Platform where the campaign runs."),
        _c("date", Kind.DATE, "Date the metrics are reported for."),
        _c("impressions", INT, "Number of times the ad was displayed."),
        _c("clicks", INT, "Number of times the ad was clicked."),
        _c("installs", INT, "App installs attributed to the campaign."),
        _c("conversions", INT, "Conversion events attributed to the campaign."),
        _c("spend_usd", DEC, "Spend in USD."),
        _c("spend_local", DEC, "Spend in local currency."),
        _c("cpi_usd", Kind.RATIO, "Cost per install: spend_usd / installs."),
        _c("cpc_usd", Kind.RATIO, "Cost per click: spend_usd / clicks."),
        _c("cpm_usd", Kind.RATIO, "Cost per thousand impressions: 1000 * spend_usd / impressions."),
        _c("ctr", Kind.RATIO, "Click-through rate: clicks / impressions."),
        _c("icr", Kind.RATIO, "Install conversion rate: installs / clicks."),
        _c("ipm", Kind.RATIO, "Installs per thousand impressions: 1000 * installs / impressions."),
        _c("ltv_usd", DEC, "Lifetime value of users acquired through the campaign in USD."),
    ),
    ratios=(
        ("cpi_usd", Ratio("spend_usd", "installs")),
        ("cpc_usd", Ratio("spend_usd", "clicks")),
        ("cpm_usd", Ratio("spend_usd", "impressions", 1000)),
        ("ctr", Ratio("clicks", "impressions")),
        ("icr", Ratio("installs", "clicks")),
        ("ipm", Ratio("installs", "impressions", 1000)),
    ),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (EVENTS, PAYWALL_VISITS, UA_EVENTS, CAMPAIGN_PERFORMANCE)}


def markdown_table(spec: TableSpec) -> str:
    """The column table of docs/table-shapes.md for ``spec`` (a test keeps the page and code in step)."""
    lines = ["| # | column | format | Parquet type | description |", "|---|---|---|---|---|"]
    for i, col in enumerate(spec.columns, 1):
        lines.append(f"| {i} | `{col.name}` | {col.kind.value} | `{col.parquet_type}` | {col.description} |")
    if spec.supports_attributes:
        lines.append(f"| + | `{ATTRIBUTES.name}` | json | `{ATTRIBUTES.parquet_type}` | {ATTRIBUTES.description} |")
    return "\n".join(lines)
