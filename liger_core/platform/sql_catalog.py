"""The SQL files under ``sql/``: loading, placeholder rendering, DuckDB view registration.

The files keep SQL readable as SQL (one statement each, ``${name}`` placeholders), so the same
text can be pasted into a Spark SQL or DuckDB shell once the values are filled in. Placeholders
only ever stand inside single-quoted string literals; ``render`` escapes the values for the
engine's literal syntax (Spark uses backslash escapes, DuckDB and PostgreSQL double the
quote), so a user id such as ``o'brien`` neither breaks a query nor injects SQL.
Nothing here imports Spark: Spark callers render with ``dialect="spark"`` and run the text.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Iterable, Literal

import duckdb

from liger_core.errors import LigerError

TABLES = ("items", "semantic_ids", "recommendations")
Dialect = Literal["standard", "spark"]
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SqlError(LigerError):
    """A SQL file is missing, a placeholder has no value, or a view cannot be created."""


def _quote_value(value: object, dialect: Dialect) -> str:
    text = str(value)
    if dialect == "spark":
        return text.replace("\\", "\\\\").replace("'", "\\'")
    return text.replace("'", "''")


def render(sql_text: str, *, dialect: Dialect = "standard", **params: object) -> str:
    """Fill every ``${name}`` in ``sql_text``; unused ``params`` are ignored.

    Raises SqlError for a placeholder without a value or with a malformed name, so a typo
    in a SQL file fails before it reaches an engine with a confusing parse error.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _NAME.fullmatch(name):
            raise SqlError(f"malformed SQL placeholder '{match.group(0)}'")
        if name not in params:
            given = ", ".join(sorted(params)) or "none"
            raise SqlError(f"SQL placeholder '${{{name}}}' has no value (given: {given})")
        return _quote_value(params[name], dialect)

    return _PLACEHOLDER.sub(substitute, sql_text)


def sql_dir() -> Path:
    """The checkout's sql/ folder, shipped as package data ``liger_core.sql``: found through
    the package, so a wheel install has it too."""
    return Path(str(resources.files("liger_core.sql")))


def load(folder: str, name: str) -> str:
    """The text of ``sql/<folder>/<name>.sql``."""
    path = sql_dir() / folder / f"{name}.sql"
    if not path.is_file():
        known = sorted(p.stem for p in (sql_dir() / folder).glob("*.sql"))
        raise SqlError(f"no SQL file {path} (known in sql/{folder}: {', '.join(known) or 'none'})")
    return path.read_text(encoding="utf-8")


def statement(sql_text: str) -> str:
    """One statement without its trailing semicolon: Spark's ``sql()`` takes no terminator."""
    return sql_text.strip().removesuffix(";").rstrip()


def query(name: str, *, dialect: Dialect = "standard", **params: object) -> str:
    """Example query ``sql/queries/<name>.sql``, rendered and ready to run."""
    return statement(render(load("queries", name), dialect=dialect, **params))


def view_ddl(engine: Literal["duckdb", "spark"], table: str, warehouse: str, ds: str) -> str:
    """The rendered view statement over ``<warehouse>/<table>/ds=<ds>`` for ``engine``."""
    dialect: Dialect = "spark" if engine == "spark" else "standard"
    warehouse = warehouse.rstrip("/")
    return statement(render(load(engine, table), dialect=dialect, warehouse=warehouse, ds=ds))


def duckdb_query(warehouse: str, ds: str, tables: Iterable[str], sql_text: str) -> tuple[list[str], list[tuple]]:
    """Run ``sql_text`` in a fresh in-memory DuckDB over the ``ds`` views of ``tables``:
    (the views created, the result rows). Jobs query the published tables through this, so
    only this layer touches DuckDB."""
    with duckdb.connect() as con:
        views = register_duckdb_views(con, warehouse, ds, tables)
        return views, con.execute(sql_text).fetchall()


def register_duckdb_views(con: duckdb.DuckDBPyConnection, warehouse: str, ds: str, tables: Iterable[str] = TABLES) -> list[str]:
    """Create the DuckDB views for ``tables`` over their ``ds`` partitions; returns the names.

    DuckDB binds a view when it is created, so a missing partition shows up here as a
    SqlError that names the table and path, not later inside some query.
    """
    created = []
    for table in tables:
        try:
            con.execute(view_ddl("duckdb", table, warehouse, ds))
        except duckdb.IOException as exc:
            raise SqlError(
                f"cannot create view {table}: no readable Parquet files under {warehouse.rstrip('/')}/{table}/ds={ds} ({exc})"
            ) from None
        created.append(table)
    return created
