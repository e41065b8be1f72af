"""Fetch and parse J. McAuley's Amazon 2014 per-category files (``productGraph/categoryFiles``).

``reviews_<Category>_5.json.gz`` holds one JSON object per line; ``meta_<Category>.json.gz``
holds one Python-literal dict per line (single quotes), which is why meta lines go through
``ast.literal_eval`` (safe: literals only, nothing is executed) and never ``eval``.
Files are streamed as bytes and decoded line by line so that one bad line is reported,
not fatal. Each reader returns ``(rows, rejected)``: every non-empty line ends up in
exactly one of the two frames, with its 1-based ``line_no``, so nothing is silently lost.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from liger_core.data.download import download
from liger_core.errors import ConfigError, DataError
from liger_core.data.tabular import RAW_LIMIT, REJECT_COLUMNS

REVIEW_COLUMNS = ("user_id", "item_id", "timestamp", "line_no")
META_COLUMNS = ("item_id", "title", "brand", "categories", "price", "description", "line_no")

_CATEGORY = re.compile(r"[A-Za-z0-9_]+")
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


class _Reject(Exception):
    """A line that cannot become a row; ``args[0]`` is the reject reason."""


def mcauley_urls(category: str, base_url: str) -> tuple[str, str]:
    """(reviews URL, meta URL) for a category such as ``"Beauty"`` or ``"Toys_and_Games"``."""
    if not _CATEGORY.fullmatch(category):
        raise ConfigError(f"McAuley category {category!r} must be a file-name token like 'Sports_and_Outdoors'")
    base = base_url.rstrip("/")
    return f"{base}/reviews_{category}_5.json.gz", f"{base}/meta_{category}.json.gz"


def fetch_mcauley(
    category: str,
    base_url: str,
    download_dir: Path,
    *,
    timeout: float = 60,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Download (or reuse) the reviews and meta files; return their local paths."""
    paths = []
    for url in mcauley_urls(category, base_url):
        dest = Path(download_dir) / url.rsplit("/", 1)[1]
        paths.append(download(url, dest, timeout=timeout, progress=progress))
    return paths[0], paths[1]


def read_reviews(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a 5-core reviews file into (user_id, item_id, timestamp, line_no) rows."""
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    line_nos: list[int] = []

    def keep(line_no: int, text: str) -> None:
        record = _json_record(text)
        user, item = _id(record.get("reviewerID")), _id(record.get("asin"))
        timestamp = record.get("unixReviewTime")
        if not (
            type(timestamp) is int and _INT64_MIN <= timestamp <= _INT64_MAX  # bool is not a time
        ):
            raise _Reject("bad_timestamp")
        users.append(user)
        items.append(item)
        times.append(timestamp)
        line_nos.append(line_no)

    rejected = _scan(path, keep)
    rows = pd.DataFrame(
        {
            "user_id": pd.Series(users, dtype=object),
            "item_id": pd.Series(items, dtype=object),
            "timestamp": np.array(times, dtype=np.int64),
            "line_no": np.array(line_nos, dtype=np.int64),
        },
        columns=list(REVIEW_COLUMNS),
    )
    return rows, rejected


def read_meta(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a meta file into item text fields (str or None) plus ``line_no``."""
    columns: dict[str, list[Any]] = {name: [] for name in META_COLUMNS}

    def keep(line_no: int, text: str) -> None:
        record = _literal(text)
        columns["item_id"].append(_id(record.get("asin")))
        columns["title"].append(_text(record.get("title")))
        columns["brand"].append(_text(record.get("brand")))
        columns["categories"].append(_categories(record.get("categories")))
        columns["price"].append(_text(record.get("price")))
        columns["description"].append(_text(record.get("description")))
        columns["line_no"].append(line_no)

    rejected = _scan(path, keep)
    data: dict[str, Any] = {name: pd.Series(columns[name], dtype=object) for name in META_COLUMNS}
    data["line_no"] = np.array(columns["line_no"], dtype=np.int64)
    return pd.DataFrame(data, columns=list(META_COLUMNS)), rejected


def _scan(path: Path, keep: Callable[[int, str], None]) -> pd.DataFrame:
    """Feed each decoded non-empty line to ``keep``; collect the ones it rejects."""
    line_nos: list[int] = []
    reasons: list[str] = []
    raws: list[str] = []
    for line_no, raw in _lines(Path(path)):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            reason, text = "non_utf8", raw.decode("utf-8", errors="backslashreplace")
        else:
            if line_no == 1:
                text = text.removeprefix("\ufeff")
            try:
                keep(line_no, text)
                continue
            except _Reject as exc:
                reason = exc.args[0]
        line_nos.append(line_no)
        reasons.append(reason)
        raws.append(text[:RAW_LIMIT])
    return pd.DataFrame(
        {
            "line_no": np.array(line_nos, dtype=np.int64),
            "reason": pd.Series(reasons, dtype=object),
            "raw": pd.Series(raws, dtype=object),
        },
        columns=list(REJECT_COLUMNS),
    )


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, stripped bytes) of non-empty lines; gzip or plain text."""
    try:
        with _open(path) as f:
            for line_no, line in enumerate(f, start=1):
                line = line.strip()
                if line:
                    yield line_no, line
    except FileNotFoundError:
        raise DataError(
            f"{path} does not exist; run `liger ingest --set source.format=mcauley` (it downloads them) first"
        ) from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile and zlib.error are OSError/EOFError
        raise DataError(f"cannot read {path} ({exc}); delete it and download it again") from None


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    return cast(IO[bytes], gzip.open(path, "rb")) if is_gzip else open(path, "rb")


def _literal(text: str) -> dict[str, Any]:
    """A meta dict from a Python-literal line, or from a JSON line as a fallback."""
    try:
        record = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _json_record(text)
    if not isinstance(record, dict):
        raise _Reject("malformed_line")
    return record


def _json_record(text: str) -> dict[str, Any]:
    """One JSON object per line; anything else (bad JSON, a list, a number) is malformed."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise _Reject("malformed_line") from None
    if not isinstance(record, dict):
        raise _Reject("malformed_line")
    return record


def _id(value: Any) -> str:
    """A non-empty string id; anything else (absent, empty, a number) rejects the line."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _Reject("missing_id")


def _text(value: Any) -> str | None:
    """Scalars as strings (``5.99`` -> ``"5.99"``); absent or blank as None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _categories(value: Any) -> str | None:
    """``[['A', 'B'], ['C']]`` -> ``"A > B | C"``; a flat list is treated as one path."""
    if not isinstance(value, (list, tuple)) or not value:
        return _text(value)
    paths = [value] if all(isinstance(part, str) for part in value) else value
    rendered = []
    for path in paths:
        names = [str(n).strip() for n in (path if isinstance(path, (list, tuple)) else [path])]
        joined = " > ".join(n for n in names if n)
        if joined:
            rendered.append(joined)
    return " | ".join(rendered) or None
