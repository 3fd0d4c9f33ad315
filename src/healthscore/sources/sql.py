"""Read a database source (``url:`` with ``table:`` or ``query:``) as a stream of Arrow batches.

PostgreSQL and SQLite go through their ADBC drivers (Apache Arrow's database connectivity:
libpq's binary COPY for PostgreSQL, SQLite's C API), which hand over columnar batches: no row
ever becomes a Python object, and the engine ingests the stream batch by batch. The URL stays
the SQLAlchemy URL users write (``postgresql+psycopg://...``, ``sqlite:///file.db``); it is
translated for the driver here. Other databases SQLAlchemy reaches (MySQL, SQL Server...) are
read through it, a batch of rows at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import ibis
import pyarrow as pa
import sqlglot
from sqlglot import exp

from healthscore.config.load import PROJECT_FILE
from healthscore.config.model import Source
from healthscore.config.secrets import redact_url
from healthscore.engine.adapter import Engine
from healthscore.errors import DataError

BATCH_ROWS = 65_536  # rows per batch of the SQLAlchemy path


def read_sql(engine: Engine, source: Source, name: str) -> ibis.Table:
    check_credentials(source)
    backend, uri = driver_uri(source)
    if backend == "postgresql":
        return _read_postgresql(engine, source, uri, name)
    if backend == "sqlite":
        return _read_sqlite(engine, source, uri, name)
    return _read_sqlalchemy(engine, source, name)


def driver_uri(source: Source) -> tuple[str, str]:
    """(backend, what its ADBC driver connects to) of a SQLAlchemy URL: a libpq URI for
    PostgreSQL (any SQLAlchemy driver name dropped, the query kept for libpq), a read-only
    SQLite URI filename for SQLite; other backends keep the URL."""
    from sqlalchemy.engine import make_url

    url = make_url(source.location)
    backend = url.get_backend_name()
    if backend == "postgresql":
        return backend, url.set(drivername="postgresql").render_as_string(hide_password=False)
    if backend == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:") or not os.path.isfile(path):
            raise DataError(
                f"{PROJECT_FILE}: sources.{source.entity}.url: no SQLite file at "
                f"{os.path.abspath(path) if path else '(none: an in-memory database)'}. "
                f"Check the path in {source.shown}: a relative path is read from the folder "
                f"healthscore runs in ('sqlite:////abs/path.db' for an absolute one)."
            )
        quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        return backend, f"file:{quoted}?mode=ro"
    return backend, source.location


def sql_text(source: Source, dialect: str) -> str:
    """The source's query, or ``SELECT * FROM`` its table with every part of the name quoted
    (``sales.Tickets`` -> ``"sales"."Tickets"``): names are read as written, case and all."""
    if source.spec.query:
        return source.spec.query
    table = str(source.spec.table)
    try:
        parsed = sqlglot.parse_one(table, into=exp.Table, dialect=dialect)
    except sqlglot.errors.ParseError:
        parsed = None
    if parsed is None or not parsed.name:
        raise DataError(
            f"{PROJECT_FILE}: sources.{source.entity}.table: {table!r} is not a table name. "
            f"Write it as NAME or SCHEMA.NAME."
        )
    return f"SELECT * FROM {parsed.sql(dialect=dialect, identify=True)}"


def check_credentials(source: Source) -> None:
    """An '@' inside the user or password ends it early for URL parsers, which then show the
    rest of the password in their errors (as a host or a port): stop before that."""
    rest = source.location.split("://", 1)[-1]
    if "://" in source.location and not rest.startswith("/") and "@" in rest.rsplit("@", 1)[0]:
        raise DataError(
            f"{PROJECT_FILE}: sources.{source.entity}.url: the user name or password in "
            f"{redact_url(source.location)} contains '@'. Write it as %40 in a URL."
        )


def _read_postgresql(engine: Engine, source: Source, uri: str, name: str) -> ibis.Table:
    import adbc_driver_postgresql.dbapi as pg

    with _connect(pg.connect, uri, source) as conn, conn.cursor() as cur:
        _execute(cur, source, "postgres")
        return engine.register_batches(plain_batches(cur.fetch_record_batch()), name)


def _read_sqlite(engine: Engine, source: Source, uri: str, name: str) -> ibis.Table:
    """SQLite's columns have no fixed type: the driver takes each column's type from the first
    batch, and fails when a later value has another. The query is then read again with every
    column as text (the cleaning step parses text, with row numbers for what does not parse)."""
    import adbc_driver_sqlite.dbapi as sqlite

    text = sql_text(source, "sqlite")
    with _connect(sqlite.connect, uri, source) as conn, conn.cursor() as cur:
        _execute(cur, source, "sqlite")
        batches = cur.fetch_record_batch()
        columns = batches.schema.names
        try:
            return engine.register_batches(plain_batches(batches), name)
        except Exception as err:
            if "type mismatch" not in str(err).lower():
                raise
        as_text = ", ".join(f'CAST({_quote(c)} AS TEXT) AS {_quote(c)}' for c in columns)
        cur.execute(f"SELECT {as_text} FROM ({text})")
        return engine.register_batches(plain_batches(cur.fetch_record_batch()), name)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _connect(connect: Any, uri: str, source: Source) -> Any:
    """The driver's connection; its error without the ADBC status code, and never with the
    URL's password."""
    from sqlalchemy.engine import make_url

    try:
        return connect(uri)
    except Exception as err:
        text = str(err).strip()
        first = re.sub(r"^[A-Z_]+: ", "", text.splitlines()[0]) if text else type(err).__name__
        password = make_url(source.location).password
        if password:
            first = first.replace(str(password), "***")
        raise DataError(f"{PROJECT_FILE}: sources.{source.entity}: cannot read "
                        f"{source.shown}: {first}") from None


def _execute(cur: Any, source: Source, dialect: str) -> None:
    try:
        cur.execute(sql_text(source, dialect))
    except DataError:
        raise
    except Exception as err:
        text = str(err)
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        first = re.sub(r"^[A-Z_]+: ", "", first)  # the ADBC status code (INVALID_ARGUMENT...)
        table = source.spec.table
        missing = "does not exist" in text or "no such table" in text
        hint = (f" Table names are read as written, case and all: check {table!r}."
                if table and missing and table != table.lower() else "")
        what = f"table {table}" if table else "query"
        raise DataError(f"{PROJECT_FILE}: sources.{source.entity}: cannot read "
                        f"{source.shown} {what}: {first}{hint}") from None


def plain_batches(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """The driver's batches with plain Arrow types: a PostgreSQL numeric (an opaque extension
    holding its text) as its text, a column of NULLs only as text (engines refuse NULL types)."""
    fields = [pa.field(f.name, _plain_type(f.type)) for f in reader.schema]
    if all(f.type == g.type for f, g in zip(fields, reader.schema, strict=True)):
        return reader
    schema = pa.schema(fields)

    def convert() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            arrays = [_plain_array(col, f.type) for col, f in zip(batch.columns, fields, strict=True)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, convert())


def _plain_type(type_: pa.DataType) -> pa.DataType:
    if isinstance(type_, pa.ExtensionType):
        return _plain_type(type_.storage_type)
    if pa.types.is_null(type_):
        return pa.string()
    return type_


def _plain_array(array: pa.Array, type_: pa.DataType) -> pa.Array:
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    return array if array.type == type_ else array.cast(type_)


def _read_sqlalchemy(engine: Engine, source: Source, name: str) -> ibis.Table:
    """Another database: through SQLAlchemy, a batch of rows at a time (no ADBC driver)."""
    import sqlalchemy as sa

    db = sa.create_engine(source.location)
    try:
        with db.connect() as conn:
            result = conn.execution_options(yield_per=BATCH_ROWS).execute(
                sa.text(sql_text(source, _sqlglot_dialect(db.dialect.name))))
            names = list(result.keys())
            batches = [_batch(rows, names) for rows in result.partitions()]
    finally:
        db.dispose()
    if not batches:
        return engine.register_arrow(pa.table({n: pa.array([], pa.string()) for n in names}), name)
    return engine.register_arrow(_unified(batches), name)


def _sqlglot_dialect(name: str) -> str:
    """sqlglot's name of a SQLAlchemy dialect (the default dialect for one it does not know)."""
    name = {"postgresql": "postgres", "mssql": "tsql", "mariadb": "mysql"}.get(name, name)
    try:
        sqlglot.Dialect.get_or_raise(name)
    except ValueError:
        return ""
    return name


def _batch(rows: Sequence[Any], names: list[str]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table({n: _column(list(c)) for n, c in zip(names, columns, strict=True)})


def _column(values: list[Any]) -> pa.Array:
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array


def _unified(batches: list[pa.Table]) -> pa.Table:
    """One table of batches whose types may differ (a column NULL in one batch, text in
    another): a column keeps its type when every batch agrees, else becomes text."""
    try:
        return pa.concat_tables(batches, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = batches[0].column_names
        return pa.concat_tables([b.cast(pa.schema([(n, pa.string()) for n in names]))
                                 for b in batches])
