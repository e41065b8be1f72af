-- Coverage of cold-start items (items the model never saw in training, DESIGN §1): the share
-- of recommendation rows that are cold-start, the share of distinct recommended items that
-- are cold-start, and the share of users who got at least one. Shares are NULL when empty.
WITH per_user AS (
    SELECT user_id, MAX(CASE WHEN source = 'cold_start' THEN 1 ELSE 0 END) AS got_cold
    FROM recommendations
    GROUP BY user_id
),
totals AS (
    SELECT
        COUNT(*) AS n_rows,
        SUM(CASE WHEN source = 'cold_start' THEN 1 ELSE 0 END) AS cold_rows,
        COUNT(DISTINCT item_id) AS n_items,
        COUNT(DISTINCT CASE WHEN source = 'cold_start' THEN item_id END) AS cold_items
    FROM recommendations
),
users AS (
    SELECT COUNT(*) AS n_users, SUM(got_cold) AS users_with_cold FROM per_user
)
SELECT
    t.n_rows,
    t.cold_rows,
    CAST(t.cold_rows AS DOUBLE) / NULLIF(t.n_rows, 0) AS cold_row_share,
    t.n_items,
    t.cold_items,
    CAST(t.cold_items AS DOUBLE) / NULLIF(t.n_items, 0) AS cold_item_share,
    u.n_users,
    u.users_with_cold,
    CAST(u.users_with_cold AS DOUBLE) / NULLIF(u.n_users, 0) AS user_cold_share
FROM totals AS t
CROSS JOIN users AS u;
