"""The one place that knows which engine runs the Ibis expressions.

Everything else builds engine-neutral Ibis expressions; an :class:`Engine` registers inputs,
materialises intermediate tables and writes results. DuckDB (embedded) is the default;
PySpark runs the very same expressions, in local mode or on a cluster (a master URL or a
Spark Connect server).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge

from healthscore.config.specs import SparkSpec
from healthscore.engine.compiled import compiled_sql
from healthscore.errors import EngineError

# the numbers of the tables' names of engines sharing one catalog in this process (Spark's
# temporary views belong to the session, and a process holds one session), counted per prefix
_shared_numbers: defaultdict[str, Iterator[int]] = defaultdict(itertools.count)


@contextmanager
def nested_selects(nested: bool = True) -> Iterator[None]:
    """With ``nested``, Ibis compiles each projection as a subquery of the one it reads
    instead of merging the two into one (the engine's optimiser does that). To merge, Ibis
    inlines the inner step's columns into the outer one and weighs the result by walking the
    whole tree below, twice, for every pair of steps: a third of the time it spends compiling
    the scores (demo, 2 dates: 1.27 -> 0.90 CPU s), whose steps (measure scores, groups,
    total, colours) mostly stay apart anyway. The same values either way. (The measures'
    queries stay merged: nested, DuckDB held 150-300 MB more at 20,000 accounts.)"""
    before = ibis.options.sql.fuse_selects
    ibis.options.sql.fuse_selects = not nested
    try:
        yield
    finally:
        ibis.options.sql.fuse_selects = before


def arrow_rows(expr: ibis.Table) -> pa.Table:
    """``expr``'s rows, typed as Ibis types them, from whichever engine holds its tables. On
    DuckDB read from its connection directly: Ibis's ``to_pyarrow`` imports pandas there (0.3
    CPU s of a run that needs it nowhere else)."""
    backend = expr._find_backend()
    if getattr(backend, "name", None) != "duckdb":
        return expr.to_pyarrow()
    backend._run_pre_execute_hooks(expr)  # in-memory tables it reads, registered
    rows = backend.con.sql(compiled_sql(backend, expr)).to_arrow_table()
    return rows.cast(expr.schema().to_pyarrow())


class Engine:
    name = "base"
    con: Any
    # whether a table read from files is cheaper to scan again than a copy held in the engine
    # (the clean rows of a source that passes as read are then not copied)
    rescans_files_cheaply = False
    _numbers: defaultdict[str, Iterator[int]] = _shared_numbers

    def temp_name(self, prefix: str) -> str:
        """A name no other table of this engine's has: the prefix and how many tables of that
        prefix came before (the number after the last ``_`` tells two prefixes apart)."""
        return f"hs_{prefix}_{next(self._numbers[prefix])}"

    def read_parquet(self, paths: list[str], name: str) -> ibis.Table:
        raise NotImplementedError

    def read_csv(self, path: str, name: str) -> ibis.Table:
        raise NotImplementedError

    def register_arrow(self, table: pa.Table, name: str) -> ibis.Table:
        raise NotImplementedError

    def register_batches(self, batches: pa.RecordBatchReader, name: str) -> ibis.Table:
        """A table made from a stream of Arrow batches (a database query's result)."""
        return self.register_arrow(batches.read_all(), name)

    def materialize(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        raise NotImplementedError

    def view(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        """``expr`` under a name: computed anew by every query that reads it, but compiled
        once however many read it (here: the expression itself)."""
        return expr

    def to_arrow(self, expr: ibis.Table, nested: bool = False) -> pa.Table:
        """``expr``'s rows (``nested``: see :func:`nested_selects`)."""
        with nested_selects(nested):
            return expr.to_pyarrow()

    def write_parquet(self, expr: ibis.Table, path: Path) -> None:
        """``expr``'s rows into one Parquet file (snappy: see :meth:`DuckDBEngine.write_parquet`)."""
        import pyarrow.parquet as pq

        pq.write_table(self.to_arrow(expr), path, compression="snappy")

    def close(self) -> None:
        return None


ROW_GROUP_ROWS = 16384  # snapshot files: a date of 20k accounts spans two or three
STREAMED = "hs_streamed"  # DuckDB: the database of tables streamed in (database sources)


class DuckDBEngine(Engine):
    name = "duckdb"
    # 19.2M usage events: a copy costs 5.4 CPU s to make, and scanning it under the memory
    # limit 1.3 CPU s against 0.3 for the Parquet files
    rescans_files_cheaply = True

    def __init__(self, memory_limit: str = "1500MB", threads: int | None = None) -> None:
        self.con = ibis.duckdb.connect()
        raw = self.con.con
        raw.execute(f"SET memory_limit = '{memory_limit}'")
        raw.execute("SET preserve_insertion_order = false")
        self.threads = threads
        if threads:
            raw.execute(f"SET threads = {int(threads)}")
        # spill space outside the project, so a run writes nothing there until it succeeds
        self.spill = Path(tempfile.mkdtemp(prefix="healthscore-spill-"))
        raw.execute(f"SET temp_directory = '{self.spill / 'duckdb'}'")
        self._streamed = False  # whether the database of streamed tables is attached
        # names counted per connection and per prefix: the same work names its tables alike
        # in every run, and so does work that differs only in the tables of other prefixes
        # made before (a source cut at a date, another set of dates), so its queries compile
        # to the same SQL
        self._numbers = defaultdict(itertools.count)

    def read_parquet(self, paths: list[str], name: str) -> ibis.Table:
        return self.con.read_parquet(paths, table_name=name)

    def read_csv(self, path: str, name: str) -> ibis.Table:
        # everything as text: the cleaning step casts and reports bad values with row numbers
        rel = self.con.con.read_csv(path, header=True, all_varchar=True)
        rel.create_view(name)
        return self.con.table(name)

    def register_arrow(self, table: pa.Table, name: str) -> ibis.Table:
        """A temporary table of ``table``'s rows, copied by DuckDB itself (Ibis's own
        ``create_table`` imports pandas on the way: 0.3 CPU s of a run that needs none)."""
        self.copy_arrow(table, name)
        return self.con.table(name, database="temp")

    def copy_arrow(self, table: pa.Table, name: str) -> None:
        """:meth:`register_arrow` without reading the new table's description back."""
        self._copy_in(table, f"{name}_arrow", f'TEMP TABLE "{name}"')

    def register_batches(self, batches: pa.RecordBatchReader, name: str) -> ibis.Table:
        """Streamed into a table batch by batch: the whole result is never in Python's memory.
        The table is kept compressed, in an in-memory database of its own (the engine's own
        tables are not): about a fifth less memory for 5M usage events, and the cleaning
        step's scans of it cost less than those of an uncompressed copy."""
        raw = self.con.con
        if not self._streamed:
            raw.execute(f"ATTACH ':memory:' AS {STREAMED} (COMPRESS)")
            self._streamed = True
        self._copy_in(batches, f"{name}_stream", f'TABLE {STREAMED}."{name}"')
        raw.execute(f"CHECKPOINT {STREAMED}")  # compresses what was written
        return self.con.table(name, database=(STREAMED, "main"))

    def _copy_in(self, rows: pa.Table | pa.RecordBatchReader, alias: str, target: str) -> None:
        """``rows`` copied into the table ``target`` (created or replaced) by DuckDB itself,
        read under the name ``alias`` while it copies."""
        raw = self.con.con
        raw.register(alias, rows)
        try:
            raw.execute(f'CREATE OR REPLACE {target} AS SELECT * FROM "{alias}"')
        finally:
            raw.unregister(alias)

    def materialize(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        """A table of ``expr``'s rows, its columns typed as Ibis types them."""
        return self.fill(self.temp_name(prefix), expr, compiled_sql(self.con, expr))

    def fill(self, name: str, expr: ibis.Table, sql: str) -> ibis.Table:
        """The temporary table ``name`` of ``expr``'s rows, from ``expr`` compiled (``sql``)."""
        self.make_table(name, self.filling(name, expr.schema(), sql), expr)
        return self.con.table(name, database=("temp", "main"))

    def filling(self, name: str, schema: ibis.Schema, sql: str, create: str | None = None) -> str:
        """The statements that create the temporary table ``name`` of the columns ``schema``
        (``create``, else :meth:`creating` it) and fill it with the rows of the query ``sql``."""
        cols = ", ".join(_quoted(c) for c in schema.names)
        return f"{create or self.creating(name, schema)}; INSERT INTO {_temp(name)} ({cols}) {sql}"

    def creating(self, name: str, schema: ibis.Schema) -> str:
        """The statement that creates the empty temporary table ``name`` of the columns
        ``schema``, typed as Ibis types them."""
        dialect = self.con.dialect
        create = sge.Create(
            kind="TABLE",
            this=sge.Schema(this=sg.table(name, catalog="temp", db="main", quoted=True),
                            expressions=schema.to_sqlglot_column_defs(dialect)),
            properties=sge.Properties(expressions=[sge.TemporaryProperty()]),
        )
        return create.sql(dialect)

    def created(self, name: str, create: str) -> ibis.Schema:
        """Run the :meth:`creating` statement ``create`` of the table ``name`` and say the
        table's columns as Ibis reads them back (its own ``get_schema``: DuckDB's description,
        each type parsed by Ibis's type mapper). Ibis's ``create_table`` does the same after
        building the statement again: 0.27-0.29 CPU s for 17 tables of 61 columns, against
        0.14 for the statement run and its description read here."""
        raw = self.con.con
        raw.execute(create)
        rows = raw.execute(f"DESCRIBE {_temp(name)}").fetchall()
        parse = self.con.compiler.type_mapper.from_string
        return ibis.schema({col: parse(kind, nullable=null == "YES")
                            for col, kind, null, *_ in rows})

    def make_table(self, name: str, statements: str, reads: ibis.Table | None = None) -> None:
        """Run the :meth:`filling` ``statements`` of the table ``name`` in one call of the
        engine, after registering the in-memory tables the query ``reads`` (when given).
        Nothing else: no Python between the statements, no description read back (a table
        filled behind the caller's back waits for Python's lock at each step)."""
        if reads is not None:
            self.con._run_pre_execute_hooks(reads)
        self.con.con.execute(statements)

    def view(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        name = self.temp_name(prefix)
        self.con.con.execute(f'CREATE TEMP VIEW "{name}" AS {compiled_sql(self.con, expr)}')
        return self.con.table(name, database="temp")

    def _sql(self, expr: ibis.Table, nested: bool = False) -> str:
        """Compiled SQL, every float64 (and decimal) column of Ibis's schema cast to DOUBLE:
        DuckDB types float literals DECIMAL where Ibis types them float64, as other engines
        compute them. (Asking DuckDB for the types instead parsed and bound the query once
        more: 0.24 CPU s for the demo's scores.) ``nested``: see :func:`nested_selects`."""
        with nested_selects(nested):
            sql = compiled_sql(self.con, expr)
        cols = [
            f'CAST("{n}" AS DOUBLE) AS "{n}"' if t.is_float64() or t.is_decimal() else f'"{n}"'
            for n, t in expr.schema().items()
        ]
        return f"SELECT {', '.join(cols)} FROM ({sql})"

    def to_arrow(self, expr: ibis.Table, nested: bool = False) -> pa.Table:
        return self.con.con.sql(self._sql(expr, nested)).to_arrow_table()

    def write_parquet(self, expr: ibis.Table, path: Path) -> None:
        """``expr``'s rows into one Parquet file, written by the engine as it computes them: no
        copy into Python's memory on the way (the running values of 100,000 accounts). Snappy,
        not zstd: the kept state is written by every daily run and read by the next one, and
        its three files at 100,000 accounts (900,000 rows) took 0.50-0.59 s to write with
        zstd against 0.37-0.45 with snappy (and 0.15-0.26 against 0.12-0.13 s to read), for
        8.9 MB instead of 5.4."""
        target = str(path).replace("'", "''")
        self.con.con.execute(f"COPY ({self._sql(expr)}) TO '{target}' "
                             f"(FORMAT PARQUET, COMPRESSION SNAPPY)")

    def write_sorted(self, expr: ibis.Table, path: Path, one_date: bool = False,
                     in_order: bool = False) -> None:
        """Stream the scores ``expr`` into one Parquet file, rows in as-of date order, in small
        row groups (a reader of one date skips the others' by their statistics). Compiled with
        nested selects: each scorecard's steps read the one before. ``one_date``: the rows
        are of one as-of date, so in order as they come (sorting 100,000 accounts' rows by a
        date they all share cost the next day 0.3 s). ``in_order``: the query puts its rows
        in date order itself (each scorecard's, sorted on its few columns before its last
        steps compute the others): written in the order they come, not sorted again (with
        ``preserve_insertion_order`` off, DuckDB still keeps the order of a query that has an
        ORDER BY)."""
        sql = self._sql(expr, nested=True)
        order = "" if one_date or in_order else " ORDER BY as_of"
        self.con.con.execute(
            f"COPY ({sql}{order}) TO '{path}' "
            f"(FORMAT PARQUET, COMPRESSION SNAPPY, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
        )

    def close(self) -> None:
        self.con.disconnect()
        shutil.rmtree(self.spill, ignore_errors=True)


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, spec: SparkSpec | None = None, threads: int | None = None,
                 log_file: Path | None = None) -> None:
        spec = spec or SparkSpec()
        _require_pyspark(spec)
        if log_file is not None:
            _python_logs_to(log_file)
        if spec.remote is not None:
            session = _connect_session(spec)
        else:
            session = _classic_session(spark_settings(spec, threads), log_file)
        self.session = session
        self.con = ibis.pyspark.connect(session)

    def _view(self, df: Any, name: str) -> ibis.Table:
        df.createOrReplaceTempView(name)
        return self.con.table(name)

    def read_parquet(self, paths: list[str], name: str) -> ibis.Table:
        return self._view(self.session.read.parquet(*paths), name)

    def read_csv(self, path: str, name: str) -> ibis.Table:
        df = self.session.read.option("header", True).option("inferSchema", False).csv(path)
        return self._view(df, name)

    def register_arrow(self, table: pa.Table, name: str) -> ibis.Table:
        return self._view(self.session.createDataFrame(table), name)

    def materialize(self, expr: ibis.Table, prefix: str) -> ibis.Table:
        df = self.session.sql(compiled_sql(self.con, expr)).cache()
        return self._view(df, self.temp_name(prefix))

    def to_arrow(self, expr: ibis.Table, nested: bool = False) -> pa.Table:
        """``expr``'s rows fetched as Arrow, then given Ibis's types. Ibis's own way goes
        through pandas, where a Spark Connect result carries its plan's metrics, deep-copied
        by every pandas step: 14.6 of the 59 s a run of the hand-computed project took on
        Spark Connect (profiled), for five rows."""
        from ibis.formats.pyarrow import PyArrowData

        with nested_selects(nested):
            sql = compiled_sql(self.con, expr)
        return PyArrowData.convert_table(self.session.sql(sql).toArrow(), expr.schema())


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _temp(name: str) -> str:
    """The temporary table ``name``, qualified."""
    return f'"temp"."main".{_quoted(name)}'


# what every Spark session runs with: UTC dates and a bad cast giving null, as on DuckDB
SQL_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
}


def spark_settings(spec: SparkSpec, threads: int | None = None) -> dict[str, str]:
    """The settings a session in this process starts with: the master (default: local mode
    with ``threads`` threads), the driver's and executors' size, then the project's own conf."""
    master = spec.master or f"local[{threads or 2}]"
    settings = {
        "spark.master": master,
        "spark.app.name": "healthscore",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # its stage bars would fight ours
        "spark.driver.memory": spec.driver_memory,
        **SQL_SETTINGS,
    }
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = "4"  # one machine: few, larger tasks
    executor = spec.executor
    for key, value in (("memory", executor.memory), ("cores", executor.cores),
                       ("instances", executor.instances)):
        if value is not None:
            settings[f"spark.executor.{key}"] = str(value)
    if master.startswith("spark://") and executor.cores and executor.instances:
        # a standalone master sizes an application by its total cores
        settings["spark.cores.max"] = str(executor.cores * executor.instances)
    return {**settings, **spec.settings}


def _require_pyspark(spec: SparkSpec) -> None:
    """PySpark, and for ``remote`` the Spark Connect client, or an error saying what to install."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise EngineError(
            "engine: spark needs PySpark. Install it with "
            "'pip install \"healthscore[spark]\"' (Java 17 must be on the PATH)."
        ) from None
    if spec.remote is None:
        return
    try:
        import google.rpc  # noqa: F401
        import grpc  # noqa: F401
        import grpc_status  # noqa: F401
    except ImportError as err:
        raise EngineError(
            f"spark.remote ({spec.remote}) needs the Spark Connect client, which is not "
            f"installed (no module '{err.name}'). Install it with "
            "'pip install \"healthscore[spark-connect]\"'."
        ) from None


def _classic_session(settings: dict[str, str], log_file: Path | None) -> Any:
    """A session whose driver runs in this process. One in this process with other settings
    (another master), or a Spark Connect session, is stopped first: a process holds one Spark
    session at a time."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    global _settings_in_use
    active = SparkContext._active_spark_context
    if active is not None and _settings_in_use not in (None, settings):
        SparkSession.builder.getOrCreate().stop()
    _stop_remote_session()
    # a Spark Connect session leaves this flag behind, which would make the builder open
    # another remote session (and fail for want of its URL) instead of a local driver
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    if log_file is not None:
        _start_jvm_logging_to(log_file, settings)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN" if log_file is not None else "ERROR")
    _settings_in_use = settings
    return session


_settings_in_use: dict[str, str] | None = None  # those of the session this process holds


def _stop_remote_session() -> None:
    """Stop this process's Spark Connect session, if it has one (a process holds one session)."""
    try:
        from pyspark.sql.connect.session import SparkSession as RemoteSession
    except ImportError:  # no Spark Connect client: no remote session either
        return
    remote = RemoteSession.getActiveSession()
    if remote is not None:
        remote.stop()


def _connect_session(spec: SparkSpec) -> Any:
    """A Spark Connect session: the driver runs in the server, this process only sends plans.
    A session whose driver runs in this process is stopped first."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    global _settings_in_use
    assert spec.remote is not None
    if SparkContext._active_spark_context is not None:  # a driver here: one session at a time
        SparkSession.builder.getOrCreate().stop()
        _settings_in_use = None
    builder = SparkSession.builder.remote(spec.remote)
    for key, value in {**SQL_SETTINGS, **spec.settings}.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as err:  # gRPC's errors carry the server's reason
        raise EngineError(f"cannot open a Spark Connect session at {spec.remote}: {err}") from None


def _python_logs_to(log_file: Path) -> None:
    """Send py4j's and pyspark's Python logs to ``log_file``, not the terminal."""
    import logging

    log_file.parent.mkdir(parents=True, exist_ok=True)
    target = str(log_file.resolve())
    for name in ("py4j", "pyspark"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
            continue  # one handler (one open file) per log, however many engines are made
        handler = logging.FileHandler(target, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _start_jvm_logging_to(log_file: Path, settings: dict[str, str]) -> None:
    """Start Spark's JVM with its output (log4j, Java warnings) going to ``log_file``: none of
    it reaches the terminal. A JVM already running in this process (started elsewhere) is
    reused as it is."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._active_spark_context is not None or SparkContext._gateway is not None:
        return
    conf = SparkConf(loadDefaults=False).setAll(list(settings.items()))
    with open(log_file, "ab") as sink:  # the JVM keeps its own copy of the descriptor
        gateway = launch_gateway(conf, popen_kwargs={"stdout": sink, "stderr": sink})
    SparkContext(conf=conf, gateway=gateway)


def make_engine(kind: str, memory_limit: str = "1500MB", threads: int | None = None,
                log_file: Path | None = None, spark: SparkSpec | None = None) -> Engine:
    """The engine ``kind``; Spark runs where ``spark`` says (default: local mode in this
    process) and writes its logs to ``log_file`` (default: the terminal)."""
    if kind == "spark":
        return SparkEngine(spark, threads, log_file)
    return DuckDBEngine(memory_limit, threads)
