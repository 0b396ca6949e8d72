-- Reference source schema (SQLite, embedded demo). Same tables and columns as postgres/schema.sql.
-- Timestamps are UTC TEXT in exactly 'YYYY-MM-DD HH:MM:SS.ffffff' (fixed width, so text order = time order).
-- Money is REAL (values carry at most 4 decimals); JSON is TEXT.
CREATE TABLE IF NOT EXISTS profiles (
    profile_id                  text PRIMARY KEY,
    app_id                      text NOT NULL,
    customer_user_id            text,
    install_date                text,
    profile_country             text,
    store_country               text,
    idfv                        text,
    idfa                        text,
    advertising_id              text,
    android_id                  text,
    android_app_set_id          text,
    device                      text,
    ip_address                  text,
    attribution_source          text,
    attribution_network_user_id text,
    attribution_status          text,
    attribution_channel         text,
    attribution_campaign        text,
    attribution_ad_group        text,
    attribution_ad_set          text,
    attribution_creative        text,
    attributes                  text,
    created_at                  text NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    event_id                text PRIMARY KEY,
    app_id                  text NOT NULL,
    profile_id              text,
    event_type              text NOT NULL,
    event_datetime          text NOT NULL,
    transaction_id          text,
    original_transaction_id text,
    subscription_expires_at text,
    environment             text,
    revenue_usd             real,
    proceeds_usd            real,
    net_revenue_usd         real,
    tax_amount_usd          real,
    revenue_local           real,
    proceeds_local          real,
    net_revenue_local       real,
    tax_amount_local        real,
    store                   text,
    product_id              text,
    base_plan_id            text,
    developer_id            text,
    ab_test_name            text,
    ab_test_revision        integer,
    paywall_name            text,
    paywall_revision        integer,
    currency                text,
    cancellation_reason     text,
    created_at              text NOT NULL
);
CREATE INDEX IF NOT EXISTS events_app_created_idx ON events (app_id, created_at);

CREATE TABLE IF NOT EXISTS paywall_visits (
    visit_id          text PRIMARY KEY,
    app_id            text NOT NULL,
    profile_id        text,
    store             text,
    paywall_showed_at text NOT NULL,
    developer_id      text,
    ab_test_name      text,
    ab_test_revision  integer,
    paywall_name      text,
    paywall_revision  integer,
    created_at        text NOT NULL
);
CREATE INDEX IF NOT EXISTS paywall_visits_app_created_idx ON paywall_visits (app_id, created_at);

CREATE TABLE IF NOT EXISTS ua_campaigns (
    app_id        text NOT NULL,
    campaign_id   text NOT NULL,
    campaign_name text,
    platform      text,
    created_at    text NOT NULL,
    PRIMARY KEY (app_id, campaign_id)
);

CREATE TABLE IF NOT EXISTS ua_events (
    ua_event_id                 text PRIMARY KEY,
    app_id                      text NOT NULL,
    profile_id                  text,
    event_type                  text NOT NULL,
    event_datetime              text NOT NULL,
    campaign_id                 text,
    adset_id                    text,
    adset_name                  text,
    ad_id                       text,
    ad_name                     text,
    attribution_source          text,
    attribution_network_user_id text,
    attribution_status          text,
    attribution_channel         text,
    attribution_campaign        text,
    attribution_ad_group        text,
    attribution_ad_set          text,
    attribution_creative        text,
    click_datetime              text,
    install_datetime            text,
    conversion_datetime         text,
    conversion_type             text,
    conversion_value_usd        real,
    conversion_value_local      real,
    currency                    text,
    country                     text,
    device_type                 text,
    os_version                  text,
    app_version                 text,
    user_agent                  text,
    ip_address                  text,
    idfa                        text,
    idfv                        text,
    advertising_id              text,
    android_id                  text,
    android_app_set_id          text,
    device                      text,
    custom_parameters           text,
    created_at                  text NOT NULL
);
CREATE INDEX IF NOT EXISTS ua_events_app_created_idx ON ua_events (app_id, created_at);

CREATE TABLE IF NOT EXISTS ua_ad_metrics_daily (
    app_id      text NOT NULL,
    campaign_id text NOT NULL,
    adset_id    text NOT NULL,
    adset_name  text,
    ad_id       text NOT NULL,
    ad_name     text,
    date        text NOT NULL,
    impressions integer,
    clicks      integer,
    installs    integer,
    conversions integer,
    spend_usd   real,
    spend_local real,
    ltv_usd     real,
    PRIMARY KEY (app_id, campaign_id, adset_id, ad_id, date)
);
