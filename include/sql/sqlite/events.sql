-- events: subscription events recorded (created_at) in [window_start, window_end), one app.
-- Bound parameters: app_id, window_start, window_end, event_types, exclude_historical, include_without_profile, with_attributes.
-- Columns must come out in the documented order (subscription_exports.tables.EVENTS), then attributes.
SELECT
    e.profile_id,
    e.event_type,
    e.event_datetime,
    e.transaction_id,
    e.original_transaction_id,
    e.subscription_expires_at,
    e.environment,
    e.revenue_usd,
    e.proceeds_usd,
    e.net_revenue_usd,
    e.tax_amount_usd,
    e.revenue_local,
    e.proceeds_local,
    e.net_revenue_local,
    e.tax_amount_local,
    p.customer_user_id,
    e.store,
    e.product_id,
    e.base_plan_id,
    e.developer_id,
    e.ab_test_name,
    e.ab_test_revision,
    e.paywall_name,
    e.paywall_revision,
    p.profile_country AS profile_county,
    p.install_date,
    p.idfv,
    p.idfa,
    p.advertising_id,
    p.ip_address,
    e.cancellation_reason,
    p.android_app_set_id,
    p.android_id,
    p.device,
    e.currency,
    p.store_country,
    p.attribution_source,
    p.attribution_network_user_id,
    p.attribution_status,
    p.attribution_channel,
    p.attribution_campaign,
    p.attribution_ad_group,
    p.attribution_ad_set,
    p.attribution_creative,
    -- only when the destination sends them (NULL otherwise: not read, not transferred, not parsed)
    CASE WHEN :with_attributes THEN p.attributes END AS attributes
FROM events AS e
LEFT JOIN profiles AS p
    ON p.profile_id = e.profile_id AND p.app_id = e.app_id
WHERE e.app_id = :app_id
    AND e.created_at >= :window_start
    AND e.created_at < :window_end
    AND lower(e.event_type) IN (SELECT value FROM json_each(:event_types))
    -- events without profile: store notifications not yet tied to a profile
    AND (e.profile_id IS NOT NULL OR :include_without_profile = 1)
    -- historical events: happened before the profile's install (before the app ran the SDK)
    AND (:exclude_historical = 0 OR p.install_date IS NULL OR e.event_datetime >= p.install_date)
ORDER BY e.created_at, e.event_id
