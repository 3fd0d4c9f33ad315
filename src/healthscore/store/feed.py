"""Scores out to a database table, where a CRM sync or a BI tool picks them up.

Rows are upserted by (account_id, as_of): exporting a day again replaces that day's rows and
leaves the others, so a table can hold the whole history. The table is created on first use;
one transaction writes all the rows or none.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from healthscore.config.secrets import expand_env, redact_url
from healthscore.errors import HealthScoreError

KEY = ("account_id", "as_of")
NAME = re.compile(r"^(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)$")


def upsert(frame: pd.DataFrame, url: str, table: str) -> int:
    """Write ``frame`` (one row per account and as-of date) into ``table`` at ``url``."""
    match = NAME.match(table)
    if not match:
        raise HealthScoreError(f"--table: {table!r} is not a table name. Write NAME or "
                               f"SCHEMA.NAME (letters, digits and _).")
    schema, name = match.groups()
    try:
        url = expand_env(url)
    except KeyError as err:
        raise HealthScoreError(f"--to: the environment variable {err.args[0]} is not set.") from None
    if url.startswith("postgresql://"):  # the driver this package installs
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    shown = redact_url(url)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as err:
        raise HealthScoreError(f"--to: {shown} is not a database URL this installation can use "
                               f"({err}). Write e.g. postgresql://user@host/db.") from None
    if engine.dialect.name not in ("postgresql", "sqlite"):
        raise HealthScoreError(f"--to: {engine.dialect.name} is not supported; use PostgreSQL "
                               f"(or SQLite).")
    rows = [_row(r) for r in frame.to_dict("records")]
    try:
        with engine.begin() as conn:
            target = _table(conn, frame, schema, name, shown)
            if rows:
                insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(target)
                update = {c: insert.excluded[c] for c in frame.columns if c not in KEY}
                conn.execute(insert.on_conflict_do_update(index_elements=list(KEY), set_=update), rows)
    except sa.exc.SQLAlchemyError as err:
        first = str(err).strip().splitlines()[0]
        raise HealthScoreError(f"--to: {shown}: could not write {table}: {redact_url(first)}") from None
    finally:
        engine.dispose()
    return len(rows)


def _table(conn: sa.Connection, frame: pd.DataFrame, schema: str | None, name: str,
           shown: str) -> sa.Table:
    meta = sa.MetaData(schema=schema)
    if sa.inspect(conn).has_table(name, schema=schema):
        target = sa.Table(name, meta, autoload_with=conn)
        missing = [c for c in frame.columns if c not in target.columns]
        if missing:
            raise HealthScoreError(
                f"--to: {shown}: table {name} has no column {missing[0]!r} (of "
                f"{', '.join(missing)}). Add the columns, or drop the table to have it made again.")
        return target
    cols = [sa.Column(c, _type(frame[c]), primary_key=c in KEY) for c in frame.columns]
    target = sa.Table(name, meta, *cols)
    target.create(conn)
    return target


DATES = {"as_of", "renewal_date"}
NUMBERS = {"arr", "score", "coverage", "system_score", "change_7d", "change_30d", "change_90d"}


def _type(series: pd.Series) -> Any:
    """The column type: by name for the feed's own columns (a column of missing values has
    no type of its own), else by what the frame holds."""
    if series.name in DATES:
        return sa.Date()
    if series.name in NUMBERS:
        return sa.Float()
    if pd.api.types.is_bool_dtype(series):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(series):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(series):
        return sa.Float()
    return sa.Text()


def _row(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in record.items():
        if isinstance(v, float) and math.isnan(v):
            v = None
        elif v is pd.NaT or v is pd.NA:
            v = None
        elif isinstance(v, pd.Timestamp):
            v = v.date() if k in DATES else v.to_pydatetime()
        out[k] = v
    return out
