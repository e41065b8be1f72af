"""Optional export of one ``recommendations`` partition to PostgreSQL (DESIGN §6).

Downstream services that want a row store get ``liger_recommendations`` (sql/postgres/).
An export replaces the whole ds inside one transaction: readers see either the old or the
new partition, never a mix, and rerunning a nightly publish is idempotent. Rows go in with
COPY (CSV rendered by pyarrow, streamed in batches), which is several times faster than
row-by-row inserts. The table lands in the first schema of the DSN's search_path, so a
deployment (or a test) picks its schema with ``options=-csearch_path=<schema>``.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg.conninfo import conninfo_to_dict

from liger_core.errors import DataError, LigerError
from liger_core.platform.sql_catalog import load, statement

TABLE = "liger_recommendations"
# Column order of the COPY; ds comes from the partition, the rest from the Parquet files.
COLUMNS = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("item_idx", pa.int64()),
        ("score", pa.float64()),
        ("source", pa.string()),
        ("shared_prefix", pa.int32()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("generated_at", pa.timestamp("us", tz="UTC")),
    ]
)
BATCH_ROWS = 50_000
CONNECT_TIMEOUT_S = 10


class ExportError(LigerError):
    """PostgreSQL cannot be reached or refuses the rows."""


def _parse_dsn(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ExportError(f"invalid PostgreSQL DSN: {exc}") from None


def _describe(params: dict[str, object]) -> str:
    """Where the DSN points, without its password, for error messages."""
    host = params.get("host") or params.get("hostaddr") or "local socket"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or '(default db)'}"


def _first_line(exc: Exception) -> str:
    """PostgreSQL errors span lines (LINE 4: ..., HINT); the operator needs the first."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_partition(parquet_dir: str | Path) -> pa.Table:
    """The partition's rows in COPY column order; DataError if missing or of the wrong shape."""
    path = Path(parquet_dir)
    if not path.is_dir() or not any(path.glob("*.parquet")):
        raise DataError(f"no recommendations partition at {path} (no Parquet files); run `liger recommend --ds <that ds>` first")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"cannot read recommendations from {path}: {exc}") from None
    return conform(table)


def conform(table: pa.Table) -> pa.Table:
    """``table`` with exactly the export columns and types (naive timestamps are UTC)."""
    missing = [name for name in COLUMNS.names if name not in table.column_names]
    if missing:
        raise DataError(f"recommendations lack column(s) {missing}")
    try:
        return table.select(COLUMNS.names).cast(COLUMNS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"recommendations do not match the export schema: {exc}") from None


def _csv_batches(table: pa.Table, ds: str) -> Iterator[bytes]:
    """CSV chunks with ds prepended; quoted empty strings stay '' and nulls stay NULL."""
    options = pa_csv.WriteOptions(include_header=False)
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        with_ds = pa.RecordBatch.from_arrays([pa.array([ds] * batch.num_rows), *batch.columns], names=["ds", *batch.schema.names])
        buffer = io.BytesIO()
        pa_csv.write_csv(with_ds, buffer, options)
        yield buffer.getvalue()


def export_table(dsn: str, table: pa.Table, ds: str) -> int:
    """Replace ds in ``liger_recommendations`` with ``table``'s rows; returns rows written."""
    try:
        date.fromisoformat(ds)
    except ValueError:
        raise DataError(f"ds must be YYYY-MM-DD, got '{ds}'") from None
    table = conform(table)
    params = _parse_dsn(dsn)
    where = _describe(params)
    connect_args: dict[str, Any] = {} if "connect_timeout" in params else {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        conn = psycopg.connect(dsn, **connect_args)
    except psycopg.OperationalError as exc:
        raise ExportError(f"cannot connect to PostgreSQL at {where}: {_first_line(exc)}") from None
    columns = ", ".join(["ds", *COLUMNS.names])
    try:
        with conn, conn.transaction(), conn.cursor() as cur:  # one transaction; closes conn
            # Serialise exports: two concurrent runs of one ds would both delete, then collide.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
            cur.execute(statement(load("postgres", "recommendations")))
            cur.execute(f"DELETE FROM {TABLE} WHERE ds = %s", (ds,))
            with cur.copy(f"COPY {TABLE} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                for chunk in _csv_batches(table, ds):
                    copy.write(chunk)
    except psycopg.Error as exc:
        raise ExportError(f"export of ds={ds} to {TABLE} at {where} failed (nothing was changed): {_first_line(exc)}") from None
    return table.num_rows


def export_partition(dsn: str, parquet_dir: str | Path, ds: str) -> int:
    """Export ``recommendations/ds=<ds>`` (a local Parquet folder); returns rows written."""
    return export_table(dsn, read_partition(parquet_dir), ds)
