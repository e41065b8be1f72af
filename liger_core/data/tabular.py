"""Reading the generic tabular source (TSV / CSV, optionally gzipped, or Parquet) into strings.

Every physical line of a delimited file is one record (a quoted field may hold line breaks:
such a record spans the lines up to its closing quote, as long as none of them is a record of
its own), and comes back either as a row (all values as strings, plus ``line_no`` of its
first line, which keeps the source order) or as a rejected row with a reason. Records bounded
by lines are what lets a defect stay local: an unbalanced quote is that line's
``unbalanced_quote``, not a field that swallows the records after it, and a huge field
is that line's ``oversize_field`` (decided later by the ingest rules), not a csv field-limit
error that stops the file. Lines that are not UTF-8 are decoded with the fallback encoding
(a legacy export, typically cp1252) and noted; lines that decode under neither are
``non_utf8``. A file that cannot be read at all (corrupt gzip or Parquet, duplicate or
missing header names) is one DataError naming the file.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from liger_core.errors import DataError

REJECT_COLUMNS = ["line_no", "reason", "raw"]
NOTE_COLUMNS = ["line_no", "field", "reason", "raw"]
RAW_LIMIT = 1_000
MAX_RECORD_LINES = 20  # a quoted field may span lines; beyond this, the quote is unbalanced
_DELIMITERS = {".tsv": "\t", ".tab": "\t", ".txt": "\t", ".csv": ","}
# Field size is the ingest rules' business (``oversize_field``), not the csv module's.
csv.field_size_limit(2**31 - 1)


@dataclass
class TableRead:
    """What one file held: records kept, records rejected, and per-field notes on kept ones."""

    records: pd.DataFrame
    rejects: pd.DataFrame  # line_no, reason, raw
    notes: pd.DataFrame  # line_no, field, reason, raw


def rejects_frame(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=REJECT_COLUMNS)
    return frame.astype({"line_no": "int64", "reason": "string", "raw": "string"})


def notes_frame(rows: list[tuple[int, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=NOTE_COLUMNS)
    return frame.astype({"line_no": "int64", "field": "string", "reason": "string", "raw": "string"})


def read_records(
    path: Path,
    required: tuple[str, ...],
    fallback_encoding: str | None = None,
    file_format: str = "auto",
    delimiter: str | None = None,
) -> TableRead:
    """Read a table file: ``file_format`` auto (by extension), delimited or parquet; ``delimiter``
    None means by extension. Missing required columns, duplicate header names and unreadable
    files are DataErrors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    suffix = path.suffixes[-2] if path.suffix == ".gz" and len(path.suffixes) > 1 else path.suffix
    if file_format == "auto":
        file_format = "parquet" if suffix == ".parquet" else "delimited" if suffix in _DELIMITERS or delimiter else ""
    if file_format == "parquet":
        result = TableRead(_read_parquet(path), rejects_frame([]), notes_frame([]))
    elif file_format == "delimited" and (delimiter or suffix in _DELIMITERS):
        result = _read_delimited(path, delimiter or _DELIMITERS[suffix], fallback_encoding)
    else:
        raise DataError(
            f"{path}: cannot tell the format from '{path.suffix}' (use .tsv, .csv, .tsv.gz, .csv.gz or "
            ".parquet, or set source.file_format and source.delimiter)"
        )
    columns = [c for c in result.records.columns if c != "line_no"]
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {columns}")
    return result


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    _check_header(path, table.column_names)
    frame = table.to_pandas().astype("string")
    frame.insert(0, "line_no", pd.RangeIndex(1, len(frame) + 1, dtype="int64"))
    return frame


def _file_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None


def _check_header(path: Path, header: list[str]) -> None:
    if not header or not any(header):
        raise DataError(f"{path}: empty file (a header row is required)")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: duplicate column name(s) {repeated} in the header")
    if "line_no" in header:
        raise DataError(f"{path}: column name 'line_no' is reserved")


def _read_delimited(path: Path, delimiter: str, fallback: str | None) -> TableRead:
    lines = _file_bytes(path).split(b"\n")
    header_line = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_line is None:
        raise DataError(f"{path}: empty file (a header row is required)")
    header_text, _ = _decode(lines[header_line], fallback)
    if header_text is None:
        raise DataError(f"{path}: the header row is neither UTF-8 nor {fallback}")
    header = [h.strip() for h in _fields(header_text.lstrip("\ufeff"), delimiter)]
    _check_header(path, header)
    rows: list[list[str]] = []
    line_nos: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    notes: list[tuple[int, str, str, str]] = []
    width, index = len(header), header_line + 1
    while index < len(lines):
        line_no, line = index + 1, lines[index]
        index += 1
        if not line.strip():
            continue
        text, note = _decode(line, fallback)
        if text is None:
            rejects.append((line_no, "non_utf8", _escaped(line)))
            continue
        reason, record = _parse(text, delimiter, width)
        if reason == "unbalanced_quote":
            joined = _quoted_newlines(text, lines, index, delimiter, width, fallback)
            if joined is not None:
                text, record, index, reason = joined[0], joined[1], joined[2], None
        if reason:
            rejects.append((line_no, reason, text[:RAW_LIMIT]))
            continue
        if note:
            notes.append((line_no, "*", note, text[:RAW_LIMIT]))
        rows.append(record)
        line_nos.append(line_no)
    frame = pd.DataFrame(rows, columns=header, dtype="string")
    frame.insert(0, "line_no", pd.Series(line_nos, dtype="int64"))
    return TableRead(frame, rejects_frame(rejects), notes_frame(notes))


def _quoted_newlines(
    text: str, lines: list[bytes], index: int, delimiter: str, width: int, fallback: str | None
) -> tuple[str, list[str], int] | None:
    """A quoted field may hold line breaks: join the following lines while none of them is a
    record of its own, up to ``MAX_RECORD_LINES``. Returns (text, fields, next index), or None
    when the quote never closes (then only the opening line is lost, as ``unbalanced_quote``)."""
    for end in range(index, min(index + MAX_RECORD_LINES - 1, len(lines))):
        more, _ = _decode(lines[end], fallback)
        if more is None or _parse(more, delimiter, width)[0] is None:
            return None  # the next line stands alone: the quote was never meant to span it
        text = f"{text}\n{more}"
        reason, record = _parse(text, delimiter, width)
        if reason is None:
            return text, record, end + 1
        if reason != "unbalanced_quote":
            return None
    return None


def _decode(line: bytes, fallback: str | None) -> tuple[str | None, str | None]:
    """(text, note): UTF-8 when it is; else the fallback encoding, noted; else (None, None)."""
    line = line.removesuffix(b"\r")
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    if fallback:
        try:
            return line.decode(fallback), f"decoded_{fallback}"
        except UnicodeDecodeError:
            pass
    return None, None


def _fields(text: str, delimiter: str) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter), [])


def _parse(text: str, delimiter: str, width: int) -> tuple[str | None, list[str]]:
    """(reject reason or None, fields) of one line under the usual csv quoting rules."""
    if "\x00" in text:  # binary garbage; the csv module would pass it through into a field
        return "malformed_line", []
    try:
        record = _fields(text, delimiter)
    except csv.Error:  # e.g. a bare carriage return inside an unquoted field
        return "malformed_line", []
    if '"' in text and _unterminated_quote(text, delimiter):
        return "unbalanced_quote", record
    if len(record) != width:
        return "malformed_line", record
    return None, record


def _unterminated_quote(text: str, delimiter: str) -> bool:
    """An opened quote that never closes: read as a whole file, it would swallow the next lines."""
    try:
        next(csv.reader([text], delimiter=delimiter, strict=True), None)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _escaped(line: bytes) -> str:
    """Undecodable bytes shown as \\xNN escapes."""
    return line.removesuffix(b"\r").decode("utf-8", errors="backslashreplace")[:RAW_LIMIT]
