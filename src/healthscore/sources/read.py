"""Read a source (CSV, Parquet, Excel, DuckDB file, SQL database) into the engine as-is.

Columns keep the source's own names and types here; :mod:`healthscore.sources.clean` maps
and checks them.
"""

from __future__ import annotations

import atexit
import codecs
import glob
import os
import tempfile
from datetime import date, datetime
from typing import Any

import ibis
import pyarrow as pa

from healthscore.config.load import PROJECT_FILE
from healthscore.config.model import Source
from healthscore.engine.adapter import Engine
from healthscore.errors import DataError
from healthscore.sources.sql import read_sql, sql_text


def read_source(engine: Engine, source: Source) -> ibis.Table:
    name = engine.temp_name(f"raw_{source.entity}")
    reader = _READERS[source.format]
    try:
        return reader(engine, source, name)
    except DataError:
        raise
    except Exception as err:  # a driver's own error: say which source and why
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"{PROJECT_FILE}: sources.{source.entity}: cannot read {_where(source)}: {first}"
        ) from None


def no_data_yet(sources: list[Source]) -> str | None:
    """When none of the file sources has a file yet (a project just made by 'init'), what to
    do about it; else None (a single missing file is reported when it is read)."""
    files = [s for s in sources if s.spec.path and s.format not in ("query", "workflow")]
    if not files or any(_found(s.location) for s in files):
        return None
    folder = os.path.commonpath([os.path.dirname(s.location.rstrip("/")) for s in files])
    names = [os.path.relpath(s.location, folder) + ("/" if str(s.spec.path).endswith("/") else "")
             for s in files]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return (
        f"{PROJECT_FILE}: no data yet: none of the {len(files)} file sources has its file in "
        f"{folder} ({shown}). Put the data files in {folder}, named as in {PROJECT_FILE}, "
        f"or make the project with 'healthscore init PATH --data FOLDER' to read them from the "
        f"folder that holds them."
    )


def _found(location: str) -> bool:
    return os.path.exists(location) or bool(glob.glob(location))


def _where(source: Source) -> str:
    if source.format == "query":
        return "its query"
    return source.shown


def source_files(source: Source) -> list[str]:
    """The files a file source reads, in order (a folder's or a glob's parts sorted)."""
    loc = source.location
    if os.path.isdir(loc):
        files = sorted(glob.glob(os.path.join(loc, "**", f"*.{source.format}"), recursive=True))
    elif os.path.isfile(loc):
        files = [loc]  # a literal name, even one with glob characters such as [ ] in it
    else:
        files = sorted(glob.glob(loc))
    if not files:
        raise DataError(
            f"{PROJECT_FILE}: sources.{source.entity}.path: no file at {loc}. "
            f"Check the path (relative to the project folder)."
        )
    return files


def _read_parquet(engine: Engine, source: Source, name: str) -> ibis.Table:
    return engine.read_parquet(source_files(source), name)


def _read_csv(engine: Engine, source: Source, name: str) -> ibis.Table:
    files = [_utf8(f, source) for f in source_files(source)]
    if len(files) == 1:
        return _one_csv(engine, files[0], name, source)
    # a folder or glob of CSV parts: read every part, not just the first
    return ibis.union(*[_one_csv(engine, f, f"{name}_{i}", source) for i, f in enumerate(files)])


def _one_csv(engine: Engine, path: str, name: str, source: Source) -> ibis.Table:
    try:
        return engine.read_csv(path, name)
    except Exception as err:
        if "not utf-8 encoded" in str(err).lower() or "invalid unicode" in str(err).lower():
            raise DataError(
                f"{PROJECT_FILE}: sources.{source.entity}: {path} is not UTF-8 text. Give its "
                f"encoding on the source, e.g. '{source.entity}: {{path: ..., encoding: latin-1}}' "
                f"(or cp1252, utf-16), or save the file as UTF-8."
            ) from None
        raise


def _utf8(path: str, source: Source) -> str:
    """The file itself when it is UTF-8; else a UTF-8 copy beside the run's scratch files
    (the engines read UTF-8 only), decoded with the source's ``encoding``."""
    encoding = source.spec.encoding
    if not encoding or codecs.lookup(encoding).name == "utf-8":
        return path
    fd, target = tempfile.mkstemp(prefix="healthscore-utf8-", suffix=".csv")
    try:
        with open(path, encoding=encoding, newline="") as src, os.fdopen(fd, "w", encoding="utf-8",
                                                                          newline="") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
    except UnicodeDecodeError as err:
        os.unlink(target)
        raise DataError(f"{PROJECT_FILE}: sources.{source.entity}: {path} is not {encoding} text "
                        f"either (byte {err.start}: {err.reason}). Check the encoding.") from None
    _SCRATCH.append(target)
    return target


_SCRATCH: list[str] = []  # UTF-8 copies of this process's runs, removed when it exits


def _remove_scratch() -> None:
    for path in _SCRATCH:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_remove_scratch)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_excel(engine: Engine, source: Source, name: str) -> ibis.Table:
    import openpyxl

    book = openpyxl.load_workbook(source_files(source)[0], read_only=True, data_only=True)
    try:
        sheet = book[source.spec.sheet] if source.spec.sheet else book.worksheets[0]
    except KeyError:
        raise DataError(
            f"{PROJECT_FILE}: sources.{source.entity}.sheet: no sheet {source.spec.sheet!r} in "
            f"{source.location}. Sheets: {', '.join(book.sheetnames)}."
        ) from None
    rows = sheet.iter_rows(values_only=True)
    header = [str(h) if h is not None else f"column_{i + 1}" for i, h in enumerate(next(rows, ()))]
    columns: list[list[str | None]] = [[] for _ in header]
    for row in rows:
        if row is None or all(v is None for v in row):
            continue
        for i in range(len(header)):
            columns[i].append(_cell(row[i]) if i < len(row) else None)
    book.close()
    table = pa.table({h: pa.array(c, type=pa.string()) for h, c in zip(header, columns, strict=True)})
    return engine.register_arrow(table, name)


def _no_null_types(table: pa.Table) -> pa.Table:
    """Give all-NULL columns a type: the engine cannot create a table with NULL-typed columns."""
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def _read_duckdb(engine: Engine, source: Source, name: str) -> ibis.Table:
    import duckdb

    if not source.spec.table and not source.spec.query:
        raise DataError(
            f"{PROJECT_FILE}: sources.{source.entity}: a DuckDB file needs 'table' or 'query'."
        )
    con = duckdb.connect(source_files(source)[0], read_only=True)
    try:
        table = con.sql(sql_text(source, "duckdb")).to_arrow_table()
    finally:
        con.close()
    return engine.register_arrow(_no_null_types(table), name)


def _read_query(engine: Engine, source: Source, name: str) -> ibis.Table:
    """DuckDB SQL over files (Parquet, CSV), e.g. to join a lookup table; relative paths are
    read from the project folder."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET file_search_path = ?", [source.location])
        table = con.sql(str(source.spec.query)).to_arrow_table()
    finally:
        con.close()
    return engine.register_arrow(_no_null_types(table), name)


def _workflow_query(entity: str) -> tuple[str, Any]:
    """(table, select) of an entity the workflow store holds, through its SQLAlchemy models."""
    import sqlalchemy as sa

    from healthscore.tables import TOUCHES, Cta, ManualValue, ModuleMark, TimelineEntry

    if entity == "manual_values":
        v = ManualValue
        return v.__tablename__, sa.select(v.account_id, v.measure, v.value, v.entered_at,
                                          v.entered_by)
    if entity == "module_marks":
        m = ModuleMark
        return m.__tablename__, sa.select(
            sa.cast(m.id, sa.String(20)).label("mark_id"), m.account_id, m.module, m.colour,
            m.reason_code, m.set_at, m.expires_on, m.ended_at)
    if entity == "ctas":
        return Cta.__tablename__, sa.select(
            sa.cast(Cta.id, sa.String(20)).label("cta_id"), Cta.account_id, Cta.type, Cta.module,
            Cta.priority, Cta.critical_at, Cta.flagged, Cta.opened_at, Cta.closed_at)
    t = TimelineEntry
    return t.__tablename__, sa.select(
        sa.cast(t.id, sa.String(20)).label("touch_id"), t.account_id, t.kind.label("type"),
        t.actor.label("logged_by"), t.at.label("timestamp")).where(t.kind.in_(TOUCHES))


def _read_workflow(engine: Engine, source: Source, name: str) -> ibis.Table:
    """CTAs, module marks or logged touches from the workflow store; empty until it has any."""
    return engine.register_arrow(workflow_rows(source.location, source.entity), name)


def workflow_rows(location: str, entity: str) -> pa.Table:
    """An entity the workflow store holds, as Arrow: empty until the store has any rows
    (no SQLite file yet: nothing opened, nor the database library imported)."""
    from healthscore.entities import ENTITIES

    names, rows = [c.name for c in ENTITIES[entity].columns], list[Any]()
    missing_file = location.startswith("sqlite:///") and not os.path.exists(
        location[len("sqlite:///"):])
    if not missing_file:
        names, rows = _stored_rows(location, entity, names)
    types = {c.name: c.type for c in ENTITIES[entity].columns}
    if not rows:  # (pa.array imports pandas, to ask whether a list is one of its arrays)
        return pa.Table.from_batches([], pa.schema([(n, _ARROW[types[n]]) for n in names]))
    arrays = [pa.array([_plain_value(row[i], types[n]) for row in rows], type=_ARROW[types[n]])
              for i, n in enumerate(names)]
    return pa.Table.from_arrays(arrays, names)


def _stored_rows(location: str, entity: str, names: list[str]) -> tuple[list[str], list[Any]]:
    """The store's rows of ``entity`` and their column names (``names`` and no rows while it
    has no such table)."""
    import sqlalchemy as sa

    table, query = _workflow_query(entity)
    rows: list[Any] = []
    db = sa.create_engine(location)
    try:
        if sa.inspect(db).has_table(table):
            with db.connect() as conn:
                result = conn.execute(query)
                names = list(result.keys())
                rows = list(result.fetchall())
    finally:
        db.dispose()
    return names, rows


def _plain_value(value: Any, type_: str) -> Any:
    """SQLite hands back timestamps as text and booleans as 0/1."""
    if value is None:
        return None
    if type_ == "timestamp" and isinstance(value, str):
        return datetime.fromisoformat(value)
    if type_ == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if type_ == "bool":
        return bool(value)
    return value


_ARROW = {"string": pa.string(), "bool": pa.bool_(), "timestamp": pa.timestamp("us"),
          "int": pa.int64(), "float": pa.float64(), "date": pa.date32()}

_READERS = {
    "workflow": _read_workflow,
    "query": _read_query,
    "parquet": _read_parquet,
    "csv": _read_csv,
    "excel": _read_excel,
    "sql": read_sql,
    "duckdb": _read_duckdb,
}
