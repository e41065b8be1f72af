"""Validating single field values: timestamps and prices.

A bad value in a kept row is nulled (or the row rejected, for a timestamp) with a reason;
it never reaches the item text or the event table as is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Seconds per unit of a numeric timestamp, and the smallest typical magnitude of each unit
# for present-day dates (1e11 s would be the year 5138, so anything larger is a finer unit).
UNIT_SCALE = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}
_UNIT_FROM = (("ns", 1e17), ("us", 1e14), ("ms", 1e11))
_CURRENCY = "$€£¥"


def timestamp_unit(raw: pd.Series, configured: str) -> str:
    """The unit of numeric timestamps: ``configured``, or for ``auto`` the one the column's
    median magnitude points to (exports in epoch milliseconds are common)."""
    if configured != "auto":
        return configured
    numbers = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").dropna()
    median = float(numbers.abs().median()) if len(numbers) else 0.0
    return next((unit for unit, smallest in _UNIT_FROM if median >= smallest), "s")


def parse_timestamps(
    raw: pd.Series, min_ts: pd.Timestamp, max_ts: pd.Timestamp, unit: str = "s"
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(ts in UTC, unparseable mask, out-of-range mask). Numbers are epoch ``unit``s; text is ISO-8601."""
    text = raw.astype("string").str.strip()
    seconds = pd.to_numeric(text, errors="coerce") / UNIT_SCALE[unit]
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


def invalid_prices(raw: pd.Series) -> pd.Series:
    """True where a present price is not a finite, non-negative number (an optional leading
    currency sign is allowed): "-5", "NaN", "inf" and "call us" are all invalid."""
    text = raw.astype("string").str.strip().str.lstrip(_CURRENCY).str.strip()
    present = text.fillna("").ne("")
    number = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
    valid = np.isfinite(number.to_numpy(dtype="float64", na_value=np.nan)) & (number.fillna(-1) >= 0).to_numpy()
    return pd.Series(present.to_numpy() & ~valid, index=raw.index)
