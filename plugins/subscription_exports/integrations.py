"""The two integration types: which tables each writes and which event types it knows."""

from __future__ import annotations

from dataclasses import dataclass

from subscription_exports.tables import CAMPAIGN_PERFORMANCE, EVENTS, PAYWALL_VISITS, UA_EVENTS, TableSpec

# Adapty's three event groups (SPEC section 6).
SUBSCRIPTION_EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "trials": (
        "trial_started",
        "trial_converted",
        "trial_renewal_cancelled",
        "trial_renewal_reactivated",
        "trial_expired",
    ),
    "subscriptions": (
        "subscription_started",
        "subscription_renewed",
        "subscription_renewal_cancelled",
        "subscription_renewal_reactivated",
        "subscription_expired",
        "subscription_paused",
        "subscription_deferred",
        "non_subscription_purchase",
    ),
    "issues": (
        "entered_grace_period",
        "billing_issue_detected",
        "subscription_refunded",
        "non_subscription_purchase_refunded",
    ),
}

# UA events: the attribution funnel plus the subscription groups that UA events convert into.
UA_EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "attribution": ("impression", "click", "install", "reinstall"),
    **SUBSCRIPTION_EVENT_GROUPS,
}


@dataclass(frozen=True)
class Integration:
    dag_id: str
    title: str
    tables: tuple[TableSpec, ...]
    event_groups: dict[str, tuple[str, ...]]
    # The table event selection applies to.
    events_table: str

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    @property
    def all_event_types(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for types in self.event_groups.values():
            seen.update(dict.fromkeys(types))
        return tuple(seen)

    def table(self, name: str) -> TableSpec:
        return next(t for t in self.tables if t.name == name)

    @property
    def variable_key(self) -> str:
        """Airflow Variable that overrides the destinations file at run time."""
        return f"{self.dag_id}_destinations"

    @property
    def config_file(self) -> str:
        return f"destinations/{self.dag_id}.yaml"


S3_EXPORT = Integration(
    dag_id="s3_export",
    title="Amazon S3 export (subscription events, paywall visits)",
    tables=(EVENTS, PAYWALL_VISITS),
    event_groups=SUBSCRIPTION_EVENT_GROUPS,
    events_table="events",
)

CUSTOM_S3_UA_EXPORT = Integration(
    dag_id="custom_s3_ua_export",
    title="Custom S3 UA export (UA events, campaign performance)",
    tables=(UA_EVENTS, CAMPAIGN_PERFORMANCE),
    event_groups=UA_EVENT_GROUPS,
    events_table="ua_events",
)

INTEGRATIONS: dict[str, Integration] = {i.dag_id: i for i in (S3_EXPORT, CUSTOM_S3_UA_EXPORT)}
