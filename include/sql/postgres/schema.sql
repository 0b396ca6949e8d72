-- Reference source schema (PostgreSQL). The exporter's SQL in include/sql/postgres/ reads these tables.
-- Timestamps are timestamptz, stored and exported in UTC. Money is exact numeric.
CREATE TABLE IF NOT EXISTS profiles (
    profile_id                  text PRIMARY KEY,
    app_id                      text NOT NULL,
    customer_user_id            text,
    install_date                timestamptz,
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
    attributes                  jsonb,
    created_at                  timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    event_id                text PRIMARY KEY,
    app_id                  text NOT NULL,
    profile_id              text,
    event_type              text NOT NULL,
    event_datetime          timestamptz NOT NULL,
    transaction_id          text,
    original_transaction_id text,
    subscription_expires_at timestamptz,
    environment             text,
    revenue_usd             numeric(18, 4),
    proceeds_usd            numeric(18, 4),
    net_revenue_usd         numeric(18, 4),
    tax_amount_usd          numeric(18, 4),
    revenue_local           numeric(18, 4),
    proceeds_local          numeric(18, 4),
    net_revenue_local       numeric(18, 4),
    tax_amount_local        numeric(18, 4),
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
    created_at              timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS events_app_created_idx ON events (app_id, created_at);

CREATE TABLE IF NOT EXISTS paywall_visits (
    visit_id          text PRIMARY KEY,
    app_id            text NOT NULL,
    profile_id        text,
    store             text,
    paywall_showed_at timestamptz NOT NULL,
    developer_id      text,
    ab_test_name      text,
    ab_test_revision  integer,
    paywall_name      text,
    paywall_revision  integer,
    created_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS paywall_visits_app_created_idx ON paywall_visits (app_id, created_at);

CREATE TABLE IF NOT EXISTS ua_campaigns (
    app_id        text NOT NULL,
    campaign_id   text NOT NULL,
    campaign_name text,
    platform      text,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (app_id, campaign_id)
);

CREATE TABLE IF NOT EXISTS ua_events (
    ua_event_id                 text PRIMARY KEY,
    app_id                      text NOT NULL,
    profile_id                  text,
    event_type                  text NOT NULL,
    event_datetime              timestamptz NOT NULL,
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
    click_datetime              timestamptz,
    install_datetime            timestamptz,
    conversion_datetime         timestamptz,
    conversion_type             text,
    conversion_value_usd        numeric(18, 4),
    conversion_value_local      numeric(18, 4),
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
    custom_parameters           jsonb,
    created_at                  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ua_events_app_created_idx ON ua_events (app_id, created_at);

CREATE TABLE IF NOT EXISTS ua_ad_metrics_daily (
    app_id      text NOT NULL,
    campaign_id text NOT NULL,
    adset_id    text NOT NULL,
    adset_name  text,
    ad_id       text NOT NULL,
    ad_name     text,
    date        date NOT NULL,
    impressions bigint,
    clicks      bigint,
    installs    bigint,
    conversions bigint,
    spend_usd   numeric(18, 4),
    spend_local numeric(18, 4),
    ltv_usd     numeric(18, 4),
    PRIMARY KEY (app_id, campaign_id, adset_id, ad_id, date)
);
