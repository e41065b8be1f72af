"""Reading the generic tabular source (TSV / CSV / Parquet) into string columns.

Every record comes back either as a row (all values as strings, plus ``line_no`` that keeps
the source order) or as a rejected row with a reason: a short row or an undecodable byte
must land in quarantine, not crash the stage or vanish.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from liger_core.errors import DataError

REJECT_COLUMNS = ["line_no", "reason", "raw"]
RAW_LIMIT = 1_000
_DELIMITERS = {".tsv": "\t", ".tab": "\t", ".txt": "\t", ".csv": ","}


def rejects_frame(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=REJECT_COLUMNS)
    return frame.astype({"line_no": "int64", "reason": "string", "raw": "string"})


def read_records(path: Path, required: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a table file; returns (records, rejects). Missing required columns is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    if path.suffix == ".parquet":
        records, rejects = _read_parquet(path), rejects_frame([])
    elif path.suffix in _DELIMITERS:
        records, rejects = _read_delimited(path, _DELIMITERS[path.suffix])
    else:
        raise DataError(f"{path}: unsupported format '{path.suffix}' (use .tsv, .csv or .parquet)")
    missing = [c for c in required if c not in records.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(records.columns)}")
    return records, rejects


def _read_parquet(path: Path) -> pd.DataFrame:
    table = pq.read_table(path)
    frame = table.to_pandas().astype("string")
    frame.insert(0, "line_no", pd.RangeIndex(1, len(frame) + 1, dtype="int64"))
    return frame


def _read_delimited(path: Path, delimiter: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = path.read_bytes()
    try:
        text, clean = data.decode("utf-8"), True
    except UnicodeDecodeError:
        # Keep undecodable bytes as surrogates so the affected records can be quarantined.
        text, clean = data.decode("utf-8", errors="surrogateescape"), False
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}: empty file (a header row is required)")
    header = [h.strip().lstrip("\ufeff") for h in header]
    width = len(header)
    rows: list[list[str]] = []
    line_nos: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    try:
        for record in reader:
            line_no = reader.line_num
            if not record:
                continue
            if len(record) != width:
                rejects.append((line_no, "malformed_line", _raw(record, delimiter)))
            elif not clean and not _is_utf8(record):
                rejects.append((line_no, "non_utf8", _raw(record, delimiter)))
            else:
                rows.append(record)
                line_nos.append(line_no)
    except csv.Error as exc:
        raise DataError(f"{path}: unreadable near line {reader.line_num}: {exc}") from None
    frame = pd.DataFrame(rows, columns=header, dtype="string")
    frame.insert(0, "line_no", pd.Series(line_nos, dtype="int64"))
    return frame, rejects_frame(rejects)


def _is_utf8(record: list[str]) -> bool:
    try:
        for field in record:
            field.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raw(record: list[str], delimiter: str) -> str:
    # Undecodable bytes (kept as surrogates) are shown as \xNN escapes.
    joined = delimiter.join(record).encode("utf-8", errors="surrogateescape").decode(
        "utf-8", errors="backslashreplace")
    return joined[:RAW_LIMIT]
