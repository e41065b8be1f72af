"""Ingest: raw catalog + events -> clean ``items`` / ``interactions`` plus quarantine.

Rules (each rejected row gets exactly one reason, the first that applies):

items:        missing_id, oversize_field, duplicate_item, empty_text
interactions: missing_id, oversize_field, unparseable_timestamp, timestamp_out_of_range,
              unknown_item, duplicate_event, kcore
(plus reader-level reasons: malformed_line, non_utf8, and for McAuley files bad_timestamp)

Items with an empty title are kept: their text is rendered from the remaining fields. Only an
item with no text at all is quarantined (``empty_text``), and its events become ``unknown_item``.
Event order within a user follows the source (``event_seq``), which matters for same-day ties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from liger_core import mcauley
from liger_core.config import PathsConfig, SourceConfig
from liger_core.errors import ConfigError, DataError
from liger_core.tabular import RAW_LIMIT, read_records, rejects_frame
from liger_core.text import TEXT_FIELDS, render_item_text, text_hash

ITEM_FIELDS = ("item_id",) + TEXT_FIELDS
EVENT_FIELDS = ("user_id", "item_id", "timestamp")


@dataclass
class RawSource:
    """Records as read, before validation; rejects hold reader-level failures."""

    items: pd.DataFrame
    events: pd.DataFrame
    rejects: dict[str, pd.DataFrame]
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class IngestResult:
    items: pd.DataFrame  # item_id + TEXT_FIELDS + text, text_hash
    events: pd.DataFrame  # user_id, item_id, ts, event_seq
    quarantine: dict[str, pd.DataFrame]  # table -> line_no, reason, raw
    read: dict[str, int]

    def quarantine_counts(self) -> dict[str, int]:
        """``<table>.<reason>`` -> rows, for logs and MLflow metrics."""
        return {f"{table}.{reason}": int(n)
                for table, frame in self.quarantine.items()
                for reason, n in frame["reason"].value_counts().sort_index().items()}


def source_format(cfg: SourceConfig, paths: PathsConfig) -> str:
    """``auto`` means tabular when the events file exists, else the McAuley download."""
    if cfg.format != "auto":
        return cfg.format
    return "tabular" if (Path(paths.resolve(cfg.path)) / cfg.events_file).is_file() else "mcauley"


def ensure_source(cfg: SourceConfig, paths: PathsConfig) -> str:
    """Check (or download) the input before a long run starts; a one-line description."""
    base = Path(paths.resolve(cfg.path))
    if source_format(cfg, paths) == "tabular":
        for name in (cfg.events_file, cfg.items_file):
            if not (base / name).is_file():
                raise DataError(f"input file not found: {base / name} (set source.path)")
        return f"tabular files in {base}"
    folder = Path(paths.resolve(cfg.download_dir))
    reviews, meta = mcauley.fetch_mcauley(cfg.category, cfg.mcauley_base_url, folder)
    return f"McAuley files {reviews.name}, {meta.name} in {folder}"


def load_source(cfg: SourceConfig, paths: PathsConfig) -> RawSource:
    """Read the configured source; McAuley files are downloaded when missing."""
    base = Path(paths.resolve(cfg.path))
    if source_format(cfg, paths) == "tabular":
        return _load_tabular(cfg, base)
    return _load_mcauley(cfg, Path(paths.resolve(cfg.download_dir)))


def _load_tabular(cfg: SourceConfig, base: Path) -> RawSource:
    events, event_rejects = read_records(base / cfg.events_file, EVENT_FIELDS)
    columns = {name: cfg.item_columns.get(name, name) for name in ITEM_FIELDS}
    items, item_rejects = read_records(base / cfg.items_file, (columns["item_id"],))
    picked = {"line_no": items["line_no"]}
    for name, column in columns.items():
        if column in items.columns:
            picked[name] = items[column]
        elif name in cfg.item_columns:
            raise ConfigError(f"source.item_columns.{name}: column '{column}' not in {cfg.items_file}")
    return RawSource(
        items=pd.DataFrame(picked),
        events=events[["line_no", *EVENT_FIELDS]],
        rejects={"items": item_rejects, "interactions": event_rejects},
        files={"items": str(base / cfg.items_file), "interactions": str(base / cfg.events_file)},
    )


def _load_mcauley(cfg: SourceConfig, download_dir: Path) -> RawSource:
    reviews_path, meta_path = mcauley.fetch_mcauley(cfg.category, cfg.mcauley_base_url, download_dir)
    events, event_rejects = mcauley.read_reviews(reviews_path)
    items, item_rejects = mcauley.read_meta(meta_path)
    return RawSource(
        items=items, events=events,
        rejects={"items": item_rejects, "interactions": event_rejects},
        files={"items": str(meta_path), "interactions": str(reviews_path)},
    )


def _ts_bound(value: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ConfigError(f"source timestamp bound '{value}' is not a date") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def ingest(raw: RawSource, cfg: SourceConfig, now: datetime | None = None) -> IngestResult:
    """Validate raw records; every input record ends up accepted or quarantined."""
    now = now or datetime.now(timezone.utc)
    min_ts = _ts_bound(cfg.min_ts)
    max_ts = _ts_bound(cfg.max_ts) if cfg.max_ts else pd.Timestamp(now + timedelta(days=1))
    items, item_rejects = _clean_items(raw.items, cfg.max_field_chars)
    events, event_rejects = _clean_events(raw.events, set(items["item_id"]), cfg.max_field_chars,
                                          min_ts, max_ts)
    if cfg.kcore:
        events, dropped = _kcore(events, cfg.kcore)
        event_rejects.append(_rows_to_rejects(dropped, "kcore", EVENT_FIELDS))
    quarantine = {
        "items": _concat_rejects([raw.rejects["items"], *item_rejects]),
        "interactions": _concat_rejects([raw.rejects["interactions"], *event_rejects]),
    }
    read = {
        "items": len(raw.items) + len(raw.rejects["items"]),
        "interactions": len(raw.events) + len(raw.rejects["interactions"]),
    }
    if items.empty:
        raise DataError("no valid items in the catalog; see quarantine/items for the reasons")
    return IngestResult(items=items, events=events, quarantine=quarantine, read=read)


def _strip(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().replace("", pd.NA)


def _oversize(frame: pd.DataFrame, columns: tuple[str, ...], limit: int) -> pd.Series:
    mask = pd.Series(False, index=frame.index)
    for column in columns:
        if column in frame:
            mask |= frame[column].astype("string").str.len().fillna(0).gt(limit)
    return mask


def _split(frame: pd.DataFrame, mask: pd.Series, reason: str, fields: tuple[str, ...],
           sink: list[pd.DataFrame]) -> pd.DataFrame:
    """Move rows where ``mask`` holds into ``sink`` with ``reason``; return the rest."""
    mask = mask.fillna(False).astype(bool)
    if mask.any():
        sink.append(_rows_to_rejects(frame[mask], reason, fields))
    return frame[~mask]


def _rows_to_rejects(rows: pd.DataFrame, reason: str, fields: tuple[str, ...]) -> pd.DataFrame:
    present = [f for f in fields if f in rows.columns]
    raw = rows[present].astype("string").fillna("").agg("\t".join, axis=1) if len(rows) else []
    return pd.DataFrame({
        "line_no": rows["line_no"].astype("int64").to_numpy(),
        "reason": pd.Series([reason] * len(rows), dtype="string"),
        "raw": pd.Series(raw, dtype="string").str.slice(0, RAW_LIMIT).to_numpy(),
    })


def _concat_rejects(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return rejects_frame([])
    merged = pd.concat(parts, ignore_index=True).sort_values("line_no", kind="stable")
    return merged.reset_index(drop=True).astype({"line_no": "int64", "reason": "string", "raw": "string"})


def _clean_items(items: pd.DataFrame, max_chars: int) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    rejects: list[pd.DataFrame] = []
    items = items.copy()
    items["item_id"] = _strip(items["item_id"])
    items = _split(items, items["item_id"].isna(), "missing_id", ITEM_FIELDS, rejects)
    items = _split(items, _oversize(items, ITEM_FIELDS, max_chars), "oversize_field", ITEM_FIELDS, rejects)
    items = _split(items, items["item_id"].duplicated(), "duplicate_item", ITEM_FIELDS, rejects)
    fields = [f for f in TEXT_FIELDS if f in items.columns]
    texts = [render_item_text(**dict(zip(fields, values)))
             for values in items[fields].astype(object).itertuples(index=False, name=None)]
    items = items.assign(text=pd.Series(texts, index=items.index, dtype="string"))
    items = _split(items, items["text"].eq(""), "empty_text", ITEM_FIELDS, rejects)
    for name in TEXT_FIELDS:
        items[name] = _strip(items[name]) if name in items else pd.Series(pd.NA, index=items.index, dtype="string")
    items["text_hash"] = items["text"].map(text_hash).astype("string")
    return items[["line_no", "item_id", *TEXT_FIELDS, "text", "text_hash"]].reset_index(drop=True), rejects


def parse_timestamps(raw: pd.Series, min_ts: pd.Timestamp, max_ts: pd.Timestamp
                     ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(ts in UTC, unparseable mask, out-of-range mask). Numbers are Unix seconds; text is ISO-8601."""
    text = raw.astype("string").str.strip()
    seconds = pd.to_numeric(text, errors="coerce")
    numeric = seconds.notna()
    lo, hi = min_ts.timestamp(), max_ts.timestamp()
    in_range_num = numeric & seconds.between(lo, hi)
    ts = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    ts[in_range_num] = pd.to_datetime(seconds[in_range_num], unit="s", utc=True)
    iso = pd.to_datetime(text[~numeric], utc=True, errors="coerce", format="ISO8601")
    ts[~numeric] = iso
    unparseable = ~numeric & iso.reindex(raw.index).isna()
    out_of_range = (numeric & ~in_range_num) | (~numeric & ~unparseable & ~ts.between(min_ts, max_ts))
    return ts, unparseable, out_of_range


def _clean_events(events: pd.DataFrame, known_items: set[str], max_chars: int,
                  min_ts: pd.Timestamp, max_ts: pd.Timestamp) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    rejects: list[pd.DataFrame] = []
    events = events.copy()
    events["user_id"] = _strip(events["user_id"])
    events["item_id"] = _strip(events["item_id"])
    events = _split(events, events["user_id"].isna() | events["item_id"].isna(), "missing_id",
                    EVENT_FIELDS, rejects)
    events = _split(events, _oversize(events, EVENT_FIELDS, max_chars), "oversize_field",
                    EVENT_FIELDS, rejects)
    ts, unparseable, out_of_range = parse_timestamps(events["timestamp"], min_ts, max_ts)
    events = events.assign(ts=ts)
    events = _split(events, unparseable, "unparseable_timestamp", EVENT_FIELDS, rejects)
    events = _split(events, out_of_range.reindex(events.index), "timestamp_out_of_range", EVENT_FIELDS, rejects)
    events = _split(events, ~events["item_id"].isin(known_items), "unknown_item", EVENT_FIELDS, rejects)
    events = _split(events, events.duplicated(["user_id", "item_id", "ts"]), "duplicate_event",
                    EVENT_FIELDS, rejects)
    events = events.assign(event_seq=events["line_no"].astype("int64"))
    return events[["line_no", "user_id", "item_id", "timestamp", "ts", "event_seq"]].reset_index(drop=True), rejects


def _kcore(events: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Iteratively keep users and items with at least k events."""
    keep = np.ones(len(events), dtype=bool)
    while True:
        live = events[keep]
        user_ok = live["user_id"].map(live["user_id"].value_counts()) >= k
        item_ok = live["item_id"].map(live["item_id"].value_counts()) >= k
        bad = ~(user_ok & item_ok)
        if not bad.any():
            return events[keep].reset_index(drop=True), events[~keep]
        keep[np.flatnonzero(keep)[bad.to_numpy()]] = False
