-- paywall_visits: paywall views recorded (created_at) in [window_start, window_end), one app.
-- Bound parameters: app_id, window_start, window_end, include_without_profile, with_attributes.
SELECT
    v.profile_id,
    p.customer_user_id,
    p.profile_country,
    p.install_date,
    v.store,
    v.paywall_showed_at,
    v.developer_id,
    v.ab_test_name,
    v.ab_test_revision,
    v.paywall_name,
    v.paywall_revision,
    -- only when the destination sends them (NULL otherwise: not read, not transferred, not parsed)
    CASE WHEN %(with_attributes)s THEN p.attributes END AS attributes
FROM paywall_visits AS v
LEFT JOIN profiles AS p
    ON p.profile_id = v.profile_id AND p.app_id = v.app_id
WHERE v.app_id = %(app_id)s
    AND v.created_at >= %(window_start)s
    AND v.created_at < %(window_end)s
    AND (v.profile_id IS NOT NULL OR %(include_without_profile)s)
ORDER BY v.created_at, v.visit_id COLLATE "C"
