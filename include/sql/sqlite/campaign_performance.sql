-- campaign_performance: daily ad metrics whose date is in [date_start, date_end), one app.
-- Bound parameters: app_id, date_start, date_end. Derived metrics (cpi_usd ... ipm) are computed
-- by the transform so that every source rounds them the same way.
SELECT
    m.campaign_id,
    c.campaign_name,
    m.adset_id,
    m.adset_name,
    m.ad_id,
    m.ad_name,
    c.platform,
    m.date,
    m.impressions,
    m.clicks,
    m.installs,
    m.conversions,
    m.spend_usd,
    m.spend_local,
    m.ltv_usd
FROM ua_ad_metrics_daily AS m
LEFT JOIN ua_campaigns AS c
    ON c.app_id = m.app_id AND c.campaign_id = m.campaign_id
WHERE m.app_id = :app_id
    AND m.date >= :date_start
    AND m.date < :date_end
ORDER BY m.date, m.campaign_id, m.adset_id, m.ad_id
