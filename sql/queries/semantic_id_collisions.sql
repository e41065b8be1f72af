-- Semantic-ID collision summary (DESIGN §5): items whose codes agree on every level but the
-- last (the collision code) form one group. A healthy RQ-VAE has few, small groups; a full
-- semantic ID shared by two items would be a bug (duplicate_ids must be 0).
-- The codes are compared as text ("[12, 200, 7, 0]" in both Spark and DuckDB) so the same
-- query runs on both engines, whose array functions differ.
WITH ids AS (
    SELECT
        CAST(codes AS STRING) AS full_id,
        regexp_replace(CAST(codes AS STRING), ', [0-9]+]$', ']') AS prefix,
        cardinality(codes) AS levels
    FROM semantic_ids
),
groups AS (
    SELECT prefix, COUNT(*) AS group_size FROM ids GROUP BY prefix
),
duplicates AS (
    SELECT full_id FROM ids GROUP BY full_id HAVING COUNT(*) > 1
)
SELECT
    (SELECT COUNT(*) FROM ids) AS n_items,
    (SELECT MAX(levels) FROM ids) AS levels,
    COUNT(*) AS n_prefixes,
    SUM(CASE WHEN group_size > 1 THEN 1 ELSE 0 END) AS colliding_prefixes,
    SUM(CASE WHEN group_size > 1 THEN group_size ELSE 0 END) AS colliding_items,
    CAST(SUM(CASE WHEN group_size > 1 THEN group_size ELSE 0 END) AS DOUBLE)
        / NULLIF(SUM(group_size), 0) AS collision_rate,
    MAX(group_size) AS max_group_size,
    (SELECT COUNT(*) FROM duplicates) AS duplicate_ids
FROM groups;
