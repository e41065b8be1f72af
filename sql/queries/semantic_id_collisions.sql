-- Semantic-ID collision summary (DESIGN §5), one row per RQ-VAE version present at the ds:
-- items whose codes agree on every level but the last (the collision code) form one group.
-- A healthy RQ-VAE has few, small groups; a full semantic ID shared by two items would be a
-- bug (duplicate_ids must be 0). The codes are compared as text ("[12, 200, 7, 0]" in both
-- Spark and DuckDB) so the same query runs on both engines, whose array functions differ.
WITH ids AS (
    SELECT
        rqvae_version,
        CAST(codes AS STRING) AS full_id,
        regexp_replace(CAST(codes AS STRING), ', [0-9]+]$', ']') AS prefix,
        cardinality(codes) AS levels
    FROM semantic_ids
),
groups AS (
    SELECT rqvae_version, prefix, COUNT(*) AS group_size FROM ids GROUP BY rqvae_version, prefix
),
duplicates AS (
    SELECT rqvae_version, COUNT(*) AS duplicate_ids
    FROM (SELECT rqvae_version, full_id FROM ids GROUP BY rqvae_version, full_id HAVING COUNT(*) > 1) AS shared
    GROUP BY rqvae_version
),
versions AS (
    SELECT rqvae_version, COUNT(*) AS n_items, MAX(levels) AS levels FROM ids GROUP BY rqvae_version
)
SELECT
    g.rqvae_version,
    MAX(v.n_items) AS n_items,
    MAX(v.levels) AS levels,
    COUNT(*) AS n_prefixes,
    SUM(CASE WHEN g.group_size > 1 THEN 1 ELSE 0 END) AS colliding_prefixes,
    SUM(CASE WHEN g.group_size > 1 THEN g.group_size ELSE 0 END) AS colliding_items,
    CAST(SUM(CASE WHEN g.group_size > 1 THEN g.group_size ELSE 0 END) AS DOUBLE)
        / NULLIF(SUM(g.group_size), 0) AS collision_rate,
    MAX(g.group_size) AS max_group_size,
    COALESCE(MAX(d.duplicate_ids), 0) AS duplicate_ids
FROM groups AS g
JOIN versions AS v ON v.rqvae_version = g.rqvae_version
LEFT JOIN duplicates AS d ON d.rqvae_version = g.rqvae_version
GROUP BY g.rqvae_version
ORDER BY g.rqvae_version;
