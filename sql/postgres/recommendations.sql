-- PostgreSQL table for the optional export of `recommendations` (DESIGN §6).
-- One row per (ds, user, rank); liger_core.platform.export_postgres replaces a whole ds per export.
-- Runs as is with psql; the table lands in the first schema of the search_path.
CREATE TABLE IF NOT EXISTS liger_recommendations (
    ds            date             NOT NULL,
    user_id       text             NOT NULL,
    rank          integer          NOT NULL CHECK (rank >= 1),
    item_id       text             NOT NULL,
    item_idx      bigint           NOT NULL,
    score         double precision NOT NULL,
    source        text             NOT NULL CHECK (source IN ('generative', 'cold_start')),
    shared_prefix integer          NOT NULL CHECK (shared_prefix >= 0),
    model_name    text             NOT NULL,
    model_version text             NOT NULL,
    generated_at  timestamptz      NOT NULL,
    PRIMARY KEY (ds, user_id, rank)
);
