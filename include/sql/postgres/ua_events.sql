-- ua_events: user-acquisition events recorded (created_at) in [window_start, window_end), one app.
-- Bound parameters: app_id, window_start, window_end, event_types, exclude_historical, include_without_profile, with_attributes.
SELECT
    u.profile_id,
    u.event_type,
    u.event_datetime,
    u.campaign_id,
    c.campaign_name,
    u.adset_id,
    u.adset_name,
    u.ad_id,
    u.ad_name,
    c.platform,
    u.attribution_source,
    u.attribution_network_user_id,
    u.attribution_status,
    u.attribution_channel,
    u.attribution_campaign,
    u.attribution_ad_group,
    u.attribution_ad_set,
    u.attribution_creative,
    u.click_datetime,
    u.install_datetime,
    u.conversion_datetime,
    u.conversion_type,
    u.conversion_value_usd,
    u.conversion_value_local,
    u.currency,
    u.country,
    u.device_type,
    u.os_version,
    u.app_version,
    u.user_agent,
    u.ip_address,
    u.idfa,
    u.idfv,
    u.advertising_id,
    u.android_id,
    u.android_app_set_id,
    u.device,
    u.custom_parameters,
    -- only when the destination sends them (NULL otherwise: not read, not transferred, not parsed)
    CASE WHEN %(with_attributes)s THEN p.attributes END AS attributes
FROM ua_events AS u
LEFT JOIN ua_campaigns AS c
    ON c.app_id = u.app_id AND c.campaign_id = u.campaign_id
LEFT JOIN profiles AS p
    ON p.profile_id = u.profile_id AND p.app_id = u.app_id
WHERE u.app_id = %(app_id)s
    AND u.created_at >= %(window_start)s
    AND u.created_at < %(window_end)s
    AND lower(u.event_type) = ANY(%(event_types)s)
    -- UA events not linked to a profile
    AND (u.profile_id IS NOT NULL OR %(include_without_profile)s)
    -- historical events: happened before their campaign was set up
    AND (NOT %(exclude_historical)s OR c.created_at IS NULL OR u.event_datetime >= c.created_at)
ORDER BY u.created_at, u.ua_event_id COLLATE "C"
