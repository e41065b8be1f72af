-- How the recommendation rows split between generative retrieval and added cold-start items.
-- One row per source: rows, share of all rows, users who got at least one such row.
SELECT
    source,
    COUNT(*) AS n_rows,
    CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER () AS row_share,
    COUNT(DISTINCT user_id) AS n_users
FROM recommendations
GROUP BY source
ORDER BY source;
