-- One user's recommendations in rank order, with the item titles.
-- Placeholder: user_id (a string literal). Needs the views `recommendations` and `items`.
SELECT
    r.rank,
    r.item_id,
    i.title,
    r.score,
    r.source,
    r.shared_prefix
FROM recommendations AS r
LEFT JOIN items AS i ON i.item_idx = r.item_idx
WHERE r.user_id = '${user_id}'
ORDER BY r.rank;
