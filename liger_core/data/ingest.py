"""Ingest: raw catalog + events -> clean ``items`` / ``interactions`` plus quarantine.

Rules (each rejected row gets exactly one reason, the first that applies):

items:        missing_id, oversize_field, duplicate_item, empty_text
interactions: missing_id, oversize_field, unparseable_timestamp, timestamp_out_of_range,
              after_ds, unknown_item, duplicate_event, kcore
(plus reader-level reasons: malformed_line, unbalanced_quote, non_utf8, and for McAuley
files bad_timestamp)

Items with an empty title are kept: their text is rendered from the remaining fields. Only an
item with no text at all is quarantined (``empty_text``), and its events become ``unknown_item``.
A kept row's invalid value (a negative or non-numeric price) is nulled and noted in
``notes`` (line_no, field, reason, raw), as is a line read in the fallback encoding.
Event order within a user follows the source (``event_seq``), which matters for same-day ties.

Every row read is accepted or quarantined (checked on each run), and a run whose defect rate
exceeds ``source.max_quarantine_rate`` fails before anything is written. ``after_ds`` (events
later than the run's ds, kept for a later run) and ``kcore`` are policy, not defects, and do
not count towards that rate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from liger_core.data import mcauley
from liger_core.config import EVENT_FIELD_NAMES, ITEM_FIELD_NAMES, PathsConfig, SourceConfig
from liger_core.errors import ConfigError, DataError
from liger_core.data.field_values import invalid_prices, parse_timestamps, timestamp_unit
from liger_core.data.tabular import RAW_LIMIT, notes_frame, read_records, rejects_frame
from liger_core.data.text import TEXT_FIELDS, render_item_text, text_hash

ITEM_FIELDS = ITEM_FIELD_NAMES
EVENT_FIELDS = EVENT_FIELD_NAMES
POLICY_REASONS = frozenset({"kcore", "after_ds"})  # not defects: outside the quarantine-rate ceiling
log = logging.getLogger("liger.ingest")


@dataclass
class RawSource:
    """Records as read, before validation; rejects hold reader-level failures."""

    items: pd.DataFrame
    events: pd.DataFrame
    rejects: dict[str, pd.DataFrame]
    files: dict[str, str] = field(default_factory=dict)
    notes: dict[str, pd.DataFrame] = field(default_factory=dict)  # table -> reader notes on kept rows


@dataclass
class IngestResult:
    items: pd.DataFrame  # item_id + TEXT_FIELDS + text, text_hash
    events: pd.DataFrame  # user_id, item_id, ts, event_seq
    quarantine: dict[str, pd.DataFrame]  # table -> line_no, reason, raw
    read: dict[str, int]
    notes: dict[str, pd.DataFrame]  # table -> line_no, field, reason, raw (kept rows, value fixed)
    timestamp_unit: str = "s"

    def quarantine_counts(self) -> dict[str, int]:
        """``<table>.<reason>`` -> rows, for logs and MLflow metrics."""
        return {
            f"{table}.{reason}": int(n)
            for table, frame in self.quarantine.items()
            for reason, n in frame["reason"].value_counts().sort_index().items()
        }


def source_format(cfg: SourceConfig, paths: PathsConfig) -> str:
    """``auto`` means tabular when the events file exists, else the McAuley download; the
    switch is logged, since a missing mount should never silently change what is ingested."""
    if cfg.format != "auto":
        return cfg.format
    events = Path(paths.resolve(cfg.path)) / cfg.events_file
    if events.is_file():
        return "tabular"
    log.warning(
        "source.format=auto: %s does not exist, so the McAuley %s files are used instead "
        "(downloaded when missing); set source.format=tabular to fail instead",
        events,
        cfg.category,
    )
    return "mcauley"


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
    def read(file: str, mapping: dict[str, str], fields: tuple[str, ...], required: tuple[str, ...], key: str):
        columns = {name: mapping.get(name, name) for name in fields}
        table = read_records(
            base / file, tuple(columns[name] for name in required), cfg.fallback_encoding, cfg.file_format, cfg.delimiter
        )
        picked = {"line_no": table.records["line_no"]}
        for name, column in columns.items():
            if column in table.records.columns:
                picked[name] = table.records[column]
            elif name in mapping:
                raise ConfigError(f"source.{key}.{name}: column '{column}' not in {file}")
        return table, pd.DataFrame(picked)

    events, event_frame = read(cfg.events_file, cfg.event_columns, EVENT_FIELDS, EVENT_FIELDS, "event_columns")
    items, item_frame = read(cfg.items_file, cfg.item_columns, ITEM_FIELDS, ("item_id",), "item_columns")
    return RawSource(
        items=item_frame,
        events=event_frame[["line_no", *EVENT_FIELDS]],
        rejects={"items": items.rejects, "interactions": events.rejects},
        files={"items": str(base / cfg.items_file), "interactions": str(base / cfg.events_file)},
        notes={"items": items.notes, "interactions": events.notes},
    )


def _load_mcauley(cfg: SourceConfig, download_dir: Path) -> RawSource:
    reviews_path, meta_path = mcauley.fetch_mcauley(cfg.category, cfg.mcauley_base_url, download_dir)
    events, event_rejects = mcauley.read_reviews(reviews_path)
    items, item_rejects = mcauley.read_meta(meta_path)
    return RawSource(
        items=items,
        events=events,
        rejects={"items": item_rejects, "interactions": event_rejects},
        files={"items": str(meta_path), "interactions": str(reviews_path)},
    )


def _ts_bound(value: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise ConfigError(f"source timestamp bound '{value}' is not a date") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def ds_end(ds: str) -> pd.Timestamp:
    """The first instant after the ds day (UTC): a run for ds reads no later event."""
    return _ts_bound(ds) + pd.Timedelta(days=1)


def ingest(raw: RawSource, cfg: SourceConfig, ds: str | None = None, now: datetime | None = None) -> IngestResult:
    """Validate raw records; every input record ends up accepted or quarantined. With ``ds``,
    events after the end of that day are ``after_ds`` (a backfill never sees the future)."""
    now = now or datetime.now(timezone.utc)
    min_ts = _ts_bound(cfg.min_ts)
    max_ts = _ts_bound(cfg.max_ts) if cfg.max_ts else pd.Timestamp(now + timedelta(days=1))
    items, item_rejects, price_notes = _clean_items(raw.items, cfg.max_field_chars)
    unit = timestamp_unit(raw.events["timestamp"], cfg.timestamp_unit)
    events, event_rejects = _clean_events(
        raw.events, set(items["item_id"]), cfg.max_field_chars, (min_ts, max_ts, ds_end(ds) if ds else None), unit
    )
    if cfg.kcore:
        events, dropped = _kcore(events, cfg.kcore)
        event_rejects.append(_rows_to_rejects(dropped, "kcore", EVENT_FIELDS))
    tables = ("items", "interactions")
    result = IngestResult(
        items=items,
        events=events,
        timestamp_unit=unit,
        quarantine={
            "items": _concat_rejects([raw.rejects["items"], *item_rejects]),
            "interactions": _concat_rejects([raw.rejects["interactions"], *event_rejects]),
        },
        read={
            "items": len(raw.items) + len(raw.rejects["items"]),
            "interactions": len(raw.events) + len(raw.rejects["interactions"]),
        },
        notes={t: _concat_notes([raw.notes.get(t, notes_frame([])), *([price_notes] if t == "items" else [])]) for t in tables},
    )
    _check_accounting(result)
    if items.empty:
        raise DataError("no valid items in the catalog; see quarantine/items for the reasons")
    _check_quarantine_rate(result, cfg.max_quarantine_rate)
    return result


def _check_accounting(result: IngestResult) -> None:
    """rows read = rows accepted + rows quarantined, per table; anything else is a bug."""
    accepted = {"items": len(result.items), "interactions": len(result.events)}
    for table, read in result.read.items():
        if read != accepted[table] + len(result.quarantine[table]):
            raise DataError(
                f"{table}: {read} rows read but {accepted[table]} accepted + "
                f"{len(result.quarantine[table])} quarantined; ingest lost rows"
            )


def _check_quarantine_rate(result: IngestResult, ceiling: float) -> None:
    """Fail before anything is committed when too many rows are defective."""
    for table, frame in result.quarantine.items():
        defects = frame[~frame["reason"].isin(POLICY_REASONS)]
        read = result.read[table]
        if read and len(defects) / read > ceiling:
            top = ", ".join(f"{reason} {n}" for reason, n in defects["reason"].value_counts().head(3).items())
            raise DataError(
                f"{table}: {len(defects)} of {read} rows ({len(defects) / read:.1%}) are defective "
                f"({top}), above source.max_quarantine_rate={ceiling}; nothing was written"
            )


def _strip(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().replace("", pd.NA)


def _oversize(frame: pd.DataFrame, columns: tuple[str, ...], limit: int) -> pd.Series:
    mask = pd.Series(False, index=frame.index)
    for column in columns:
        if column in frame:
            mask |= frame[column].astype("string").str.len().fillna(0).gt(limit)
    return mask


def _split(frame: pd.DataFrame, mask: pd.Series, reason: str, fields: tuple[str, ...], sink: list[pd.DataFrame]) -> pd.DataFrame:
    """Move rows where ``mask`` holds into ``sink`` with ``reason``; return the rest."""
    mask = mask.fillna(False).astype(bool)
    if mask.any():
        sink.append(_rows_to_rejects(frame[mask], reason, fields))
    return frame[~mask]


def _rows_to_rejects(rows: pd.DataFrame, reason: str, fields: tuple[str, ...]) -> pd.DataFrame:
    present = [f for f in fields if f in rows.columns]
    raw = rows[present].astype("string").fillna("").agg("\t".join, axis=1) if len(rows) else []
    return pd.DataFrame(
        {
            "line_no": rows["line_no"].astype("int64").to_numpy(),
            "reason": pd.Series([reason] * len(rows), dtype="string"),
            "raw": pd.Series(raw, dtype="string").str.slice(0, RAW_LIMIT).to_numpy(),
        }
    )


def _concat_notes(parts: list[pd.DataFrame]) -> pd.DataFrame:
    merged = pd.concat([notes_frame([]), *[p for p in parts if len(p)]], ignore_index=True)
    return (
        merged.sort_values("line_no", kind="stable")
        .reset_index(drop=True)
        .astype({"line_no": "int64", "field": "string", "reason": "string", "raw": "string"})
    )


def _concat_rejects(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return rejects_frame([])
    merged = pd.concat(parts, ignore_index=True).sort_values("line_no", kind="stable")
    return merged.reset_index(drop=True).astype({"line_no": "int64", "reason": "string", "raw": "string"})


def _clean_items(items: pd.DataFrame, max_chars: int) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]:
    rejects: list[pd.DataFrame] = []
    items = items.copy()
    items["item_id"] = _strip(items["item_id"])
    items = _split(items, items["item_id"].isna(), "missing_id", ITEM_FIELDS, rejects)
    items = _split(items, _oversize(items, ITEM_FIELDS, max_chars), "oversize_field", ITEM_FIELDS, rejects)
    items = _split(items, items["item_id"].duplicated(), "duplicate_item", ITEM_FIELDS, rejects)
    items, price_notes = _null_invalid_prices(items)
    fields = [f for f in TEXT_FIELDS if f in items.columns]
    texts = [
        render_item_text(**dict(zip(fields, values)))
        for values in items[fields].astype(object).itertuples(index=False, name=None)
    ]
    items = items.assign(text=pd.Series(texts, index=items.index, dtype="string"))
    items = _split(items, items["text"].eq(""), "empty_text", ITEM_FIELDS, rejects)
    for name in TEXT_FIELDS:
        items[name] = _strip(items[name]) if name in items else pd.Series(pd.NA, index=items.index, dtype="string")
    items["text_hash"] = items["text"].map(text_hash).astype("string")
    return (items[["line_no", "item_id", *TEXT_FIELDS, "text", "text_hash"]].reset_index(drop=True), rejects, price_notes)


def _null_invalid_prices(items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Null prices that are not finite non-negative numbers, before any text is rendered."""
    if "price" not in items:
        return items, notes_frame([])
    bad = invalid_prices(items["price"])
    notes = notes_frame(
        [
            (int(n), "price", "invalid_price", str(v)[:RAW_LIMIT])
            for n, v in zip(items.loc[bad, "line_no"], items.loc[bad, "price"])
        ]
    )
    return items.assign(price=items["price"].astype("string").mask(bad)), notes


def _clean_events(
    events: pd.DataFrame,
    known_items: set[str],
    max_chars: int,
    window: tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp | None],
    unit: str,
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """``window``: (earliest, latest plausible timestamp, end of the run's ds or None)."""
    min_ts, max_ts, end_of_ds = window
    rejects: list[pd.DataFrame] = []
    events = events.copy()
    events["user_id"] = _strip(events["user_id"])
    events["item_id"] = _strip(events["item_id"])
    events = _split(events, events["user_id"].isna() | events["item_id"].isna(), "missing_id", EVENT_FIELDS, rejects)
    events = _split(events, _oversize(events, EVENT_FIELDS, max_chars), "oversize_field", EVENT_FIELDS, rejects)
    ts, unparseable, out_of_range = parse_timestamps(events["timestamp"], min_ts, max_ts, unit)
    events = events.assign(ts=ts)
    events = _split(events, unparseable, "unparseable_timestamp", EVENT_FIELDS, rejects)
    events = _split(events, out_of_range.reindex(events.index), "timestamp_out_of_range", EVENT_FIELDS, rejects)
    if end_of_ds is not None:
        events = _split(events, events["ts"] >= end_of_ds, "after_ds", EVENT_FIELDS, rejects)
    events = _split(events, ~events["item_id"].isin(known_items), "unknown_item", EVENT_FIELDS, rejects)
    events = _split(events, events.duplicated(["user_id", "item_id", "ts"]), "duplicate_event", EVENT_FIELDS, rejects)
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
