"""Map a raw source onto its entity, cast types, reject bad rows and report data health."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.load import PROJECT_FILE
from healthscore.config.model import Source
from healthscore.config.secrets import redact_url
from healthscore.entities import Entity
from healthscore.errors import DataError

Fetch = Callable[[ir.Table], Any]  # an expression's rows as an Arrow table

IBIS_TYPES = {
    "string": "string", "int": "int64", "float": "float64", "bool": "boolean",
    "date": "date", "timestamp": "timestamp",
}
ROW = "__row"
MAX_EXAMPLES = 5
UNKNOWN_ACCOUNT = "unknown account_id"  # the reason a row of an unknown account is rejected for


@dataclass
class DataHealth:
    """What one source looked like on this run (seed 000: access, accuracy, freshness)."""

    entity: str
    location: str
    rows_read: int = 0
    rows_rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    newest: date | None = None
    stale_after_days: int | None = None
    notes: list[str] = field(default_factory=list)  # values no measure will match, and such
    blanked: dict[str, int] = field(default_factory=dict)  # optional cells left empty, by reason
    columns: list[str] = field(default_factory=list)  # the entity's columns the source has

    @property
    def rows_kept(self) -> int:
        return self.rows_read - self.rows_rejected

    def stale_on(self, as_of: date) -> bool:
        if self.stale_after_days is None or self.newest is None:
            return False
        return (as_of - self.newest).days > self.stale_after_days

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity, "location": self.location, "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected, "reasons": self.reasons,
            "examples": self.examples, "newest": self.newest.isoformat() if self.newest else None,
            "stale_after_days": self.stale_after_days, "notes": self.notes,
            "blanked": self.blanked,
        }


def map_columns(raw: ir.Table, source: Source, entity: Entity | None = None) -> ir.Table:
    """Rename the source's columns to the entity's and add a row number."""
    entity = entity or source.definition
    return raw.select(**{ROW: ibis.row_number() + 1}, **_mapped(raw, source, entity))


def as_read(raw: ir.Table, source: Source, optional: frozenset[str] = frozenset()
            ) -> ir.Table | None:
    """The source's rows under the entity's column names, when that is all cleaning does to
    them: every column is of the entity's type already (nothing is parsed), so a source
    without a rejected row has these rows as its clean rows. None when a column is parsed."""
    entity = contract(source, optional)
    mapped = raw.select(**_mapped(raw, source, entity))
    if not all(_same_type(mapped[c.name], c.type) for c in entity.columns):
        return None
    return mapped


def _mapped(raw: ir.Table, source: Source, entity: Entity) -> dict[str, Any]:
    have = set(raw.columns)
    exprs: dict[str, Any] = {}
    for col in entity.columns:
        src = source.spec.columns.get(col.name, col.name)
        if src in have:
            exprs[col.name] = raw[src]
        elif col.required or col.name in source.spec.columns:
            # a mapping written out names a column that must exist, optional or not
            raise DataError(_missing_column(source, entity, col.name, src, raw.columns))
        else:
            exprs[col.name] = ibis.null().cast(IBIS_TYPES[col.type])
    return exprs


def _missing_column(source: Source, entity: Entity, col: str, src: str, found: list[str]) -> str:
    mapped = "" if src == col else f" (from 'columns: {{{col}: {src}}}')"
    return (
        f"{PROJECT_FILE}: sources.{source.entity}: {source.shown} has no column "
        f"{src!r}{mapped}, needed for {entity.name}.{col}. Map it with "
        f"'columns: {{{col}: <your column name>}}'. Columns found: {', '.join(found)}."
    )


def _same_type(value: ir.Value, type_: str) -> bool:
    t = value.type()
    return {
        "string": t.is_string(), "float": t.is_float64(), "int": t.is_int64(),
        "bool": t.is_boolean(), "date": t.is_date(), "timestamp": t.is_timestamp(),
    }[type_]


def _cast(value: ir.Value, type_: str) -> ir.Value:
    target = IBIS_TYPES[type_]
    if _same_type(value, type_):
        return value  # already typed (Parquet, databases): nothing to parse
    if value.type().is_string():
        value = value.strip()
        value = ibis.ifelse(value == "", ibis.null(), value)
        if type_ == "bool":
            low = value.lower()
            return (
                ibis.cases(
                    (low.isin(["true", "t", "yes", "y", "1"]), True),
                    (low.isin(["false", "f", "no", "n", "0"]), False),
                    else_=ibis.null(),
                )
            )
        if type_ in ("date", "timestamp"):
            return value.try_cast("timestamp").cast(target) if type_ == "date" else \
                value.try_cast("timestamp")
    return value.try_cast(target)


def _parsed(value: ir.Value, type_: str) -> bool:
    """Whether a column is parsed from text (and can fail to parse)."""
    return value.type().is_string() and type_ != "string"


def typed(mapped: ir.Table, entity: Entity) -> ir.Table:
    """Cast every column; text that gets parsed keeps its raw value to explain rejections."""
    exprs: dict[str, Any] = {ROW: mapped[ROW]}
    for col in entity.columns:
        value = mapped[col.name]
        exprs[col.name] = _cast(value, col.type)
        if _parsed(value, col.type):
            exprs[f"__raw_{col.name}"] = value
    return mapped.select(**exprs)


def _raw(t: ir.Table, name: str) -> ir.Value:
    raw = f"__raw_{name}"
    return t[raw] if raw in t.columns else t[name].cast("string")


def with_first_of_duplicates(t: ir.Table, entity: Entity) -> ir.Table:
    """Add ``__first``: for a key given more than once, the row number of its first row."""
    key = entity.key
    column = entity.column(key) if key else None
    if key is None or column is None or not column.required:
        return t
    counts = t.group_by(key).aggregate(__first=t[ROW].min(), __n=t.count())
    dups = counts.filter(counts["__n"] > 1).select(key, "__first")
    joined = t.left_join(dups, key)
    right = f"{key}_right"
    return joined.drop(right) if right in joined.columns else joined


def reasons(t: ir.Table, entity: Entity, accounts: ir.Table | None) -> list[tuple[str, ir.Value]]:
    """(reason, boolean expression) for every way a row can be rejected."""
    out: list[tuple[str, ir.Value]] = []
    for col in entity.columns:
        value = t[col.name]
        raw = t[f"__raw_{col.name}"] if f"__raw_{col.name}" in t.columns else None
        if raw is not None and col.required:  # an optional column's bad cell: see blanks()
            out.append((_unparseable(col), _fails_to_parse(value, raw)))
        if col.required:
            empty = raw if raw is not None else (value if value.type().is_string() else None)
            missing = value.isnull() if empty is None else empty.isnull() | blank(empty)
            out.append((f"missing {col.name}", missing))
    for name in entity.nonnegative:
        out.append((f"negative {name}", t[name] < 0))
    if "__first" in t.columns:
        out.append((f"duplicate {entity.key}", t["__first"].notnull() & (t[ROW] != t["__first"])))
    if accounts is not None and entity.name != "accounts":
        known = t.account_id.isin(accounts.account_id)
        out.append((UNKNOWN_ACCOUNT, t.account_id.notnull() & ~known))
    return out


def blanks(t: ir.Table, entity: Entity) -> list[tuple[str, ir.Value]]:
    """(reason, condition) for cells of optional columns that do not parse: the cell is left
    empty and the row is kept (one bad renewal date must not drop the account everywhere)."""
    return [(_unparseable(col), _fails_to_parse(t[col.name], t[f"__raw_{col.name}"]))
            for col in entity.columns if not col.required and f"__raw_{col.name}" in t.columns]


def _unparseable(col: Any) -> str:
    return f"unparseable {col.type} in {col.name}"


def _fails_to_parse(value: ir.Value, raw: ir.Value) -> ir.Value:
    return raw.notnull() & ~blank(raw) & value.isnull()


def blank(text: ir.StringValue) -> ir.BooleanValue:
    """Whether the text is empty once stripped of whitespace. Only text that sorts before "!"
    can be: the empty string, or one starting with whitespace (every whitespace character
    strip() removes is at most " "). That comparison is cheap; the strip is costly and runs
    only on those rows."""
    return (text < "!") & (text.strip() == "")


def _to_pyarrow(expr: ir.Table) -> Any:
    return expr.to_pyarrow()


def clean(
    raw: ir.Table, source: Source, accounts: ir.Table | None, max_share: float,
    materialize: Callable[[ir.Table, str], ir.Table] = lambda t, _: t,
    optional: frozenset[str] = frozenset(), max_rows: int | None = None,
    as_is: ir.Table | None = None, fetch: Fetch | None = None,
) -> tuple[ir.Table, DataHealth]:
    """Check every row; return the good rows (materialised) and the source's health. More
    rejected rows than ``max_share`` of the source, or than ``max_rows``, fail the run.

    ``optional`` names required columns that another source can fill in (an account's
    start date from its subscriptions). ``as_is``: the source's rows as read (see
    :func:`as_read`), cheap to read again; when no row is rejected they are the good rows,
    not materialised. ``fetch`` runs the checks' small queries (the engine's ``to_arrow``:
    compiled once per process however many runs check the same source)."""
    fetch = fetch or _to_pyarrow
    entity = contract(source, optional)
    cast = typed(map_columns(raw, source, entity), entity)
    t = with_first_of_duplicates(cast, entity)
    checks = reasons(t, entity, accounts)
    flags = {f"__bad{i}": cond.fill_null(False) for i, (_, cond) in enumerate(checks)}
    any_flag = ibis.or_(*flags.values()) if flags else ibis.literal(False)
    t = t.mutate(**flags, __bad=any_flag)
    empty = blanks(t, entity)
    t = t.mutate(**{f"__blank{i}": cond.fill_null(False) & ~t["__bad"] for i, (_, cond) in enumerate(empty)})
    health = _health(t, source, entity, checks, t["__bad"], fetch, empty)
    health.notes = _blank_notes(t, empty, entity, health, source, fetch)
    # the good rows: when every row is good, the checks are not evaluated again to find them
    kept = cast if not health.rows_rejected else t.filter(~t["__bad"])
    health.notes += _unexpected_values(kept, entity, source, set(raw.columns), fetch)
    health.columns = [c.name for c in entity.columns
                      if source.spec.columns.get(c.name, c.name) in raw.columns]
    check_limits(source, health, max_share, max_rows)
    if as_is is not None and not health.rows_rejected:
        return as_is, health
    # only the good rows and the entity's columns are kept (in memory, or spilled to disk)
    good = materialize(kept.select(*entity.column_names), f"clean_{source.entity}")
    return good, health


def check_limits(source: Source, health: DataHealth, max_share: float, max_rows: int | None) -> None:
    """Fail when more rows were rejected than ``max_share`` of the source or ``max_rows``."""
    too_many = health.rows_read and health.rows_rejected / health.rows_read > max_share
    if too_many or (max_rows is not None and health.rows_rejected > max_rows):
        raise DataError(_too_many(source, health, max_share, max_rows), details=health.examples)


def contract(source: Source, optional: frozenset[str] = frozenset()) -> Entity:
    """The entity a source is checked against: its columns and the declared attributes
    (``optional`` columns relaxed)."""
    return _relaxed(source.definition, optional)


def _relaxed(entity: Entity, optional: frozenset[str]) -> Entity:
    if not optional:
        return entity
    columns = tuple(
        dataclasses.replace(c, required=False) if c.name in optional else c for c in entity.columns
    )
    return dataclasses.replace(entity, columns=columns)


def _health(t: ir.Table, source: Source, entity: Entity, checks: list, any_bad: Any,
            fetch: Fetch, empty: list | None = None) -> DataHealth:
    aggs: dict[str, Any] = {"n": t.count(), "bad": any_bad.cast("int64").sum()}
    for i in range(len(checks)):
        aggs[f"r{i}"] = t[f"__bad{i}"].cast("int64").sum()
    for i in range(len(empty or [])):
        aggs[f"b{i}"] = t[f"__blank{i}"].cast("int64").sum()
    if entity.time:
        aggs["newest"] = t[entity.time].max(where=~any_bad)
    row = fetch(t.aggregate(**aggs)).to_pylist()[0]
    health = DataHealth(source.entity, source.shown, int(row["n"]), int(row["bad"] or 0),
                        stale_after_days=source.stale_after_days)
    for i, (reason, _) in enumerate(checks):
        if row[f"r{i}"]:
            health.reasons[reason] = int(row[f"r{i}"])
    for i, (reason, _) in enumerate(empty or []):
        if row[f"b{i}"]:
            health.blanked[reason] = int(row[f"b{i}"])
    newest = row.get("newest")
    health.newest = newest.date() if isinstance(newest, datetime) else newest
    if health.rows_rejected:
        health.examples = _examples(t, checks, entity, health.reasons, source, fetch)
    return health


def _blank_notes(t: ir.Table, empty: list, entity: Entity, health: DataHealth,
                 source: Source, fetch: Fetch) -> list[str]:
    """One note for the cells left empty, with the first few of them (file, row, column, value)."""
    if not health.blanked:
        return []
    shown: list[str] = []
    for i, (reason, _) in enumerate(empty):
        if reason not in health.blanked or len(shown) >= MAX_EXAMPLES:
            continue
        col = _reason_column(reason, entity)
        own = source.spec.columns.get(col, col)
        name = repr(own) if own == col else f"{own!r} ({col})"
        rows = t.filter(t[f"__blank{i}"]).order_by(ROW).limit(MAX_EXAMPLES - len(shown))
        for r in fetch(rows.select(ROW, val=_raw(t, col))).to_pylist():
            shown.append(f"row {r[ROW]}, column {name} (value {r['val']!r})")
    total = sum(health.blanked.values())
    kinds = ", ".join(f"{k}: {v}" for k, v in health.blanked.items())
    return [f"{where(source)}: {total} cell(s) could not be read and were left empty, their rows "
            f"kept ({kinds}). First: {'; '.join(shown)}."]


def _unexpected_values(t: ir.Table, entity: Entity, source: Source, raw: set[str],
                       fetch: Fetch) -> list[str]:
    """Values of a column with a closed set of expected values (tickets.priority P1..P4...)
    that are none of them, whatever their case: rows that measures filtering on the column
    will not count."""
    out = []
    for col in entity.columns:
        if not col.closed or source.spec.columns.get(col.name, col.name) not in raw:
            continue
        value = t[col.name]
        odd = t.filter(value.notnull() & ~value.lower().isin([v.lower() for v in col.values]))
        counts = odd.group_by(col.name).aggregate(n=odd.count()).order_by(ibis.desc("n"), col.name)
        rows = fetch(counts.limit(MAX_EXAMPLES + 1)).to_pylist()
        if not rows:
            continue
        seen = ", ".join(f"{r[col.name]!r} ({r['n']} rows)" for r in rows[:MAX_EXAMPLES])
        more = ", ..." if len(rows) > MAX_EXAMPLES else ""
        out.append(f"{where(source)}: column {col.name} has values none of {', '.join(col.values)}: "
                   f"{seen}{more}. Measures that filter on {col.name} will not count these rows; "
                   f"rewrite them in the export or in a 'format: query' source.")
    return out


def _examples(t: ir.Table, checks: list, entity: Entity, found: dict[str, int],
              source: Source, fetch: Fetch) -> list[str]:
    """The first rejected rows, each with the file, the row number (the first data row is
    row 1), the user's own column name and the value; a duplicate says which row was kept."""
    out: list[str] = []
    for i, (reason, _) in enumerate(checks):
        if len(out) >= MAX_EXAMPLES:
            break
        if reason not in found:  # one query per reason that occurred, not per possible one
            continue
        col = _reason_column(reason, entity)
        own = source.spec.columns.get(col, col)
        name = repr(own) if own == col else f"{own!r} ({col})"
        rows = t.filter(t[f"__bad{i}"]).order_by(ROW).limit(MAX_EXAMPLES - len(out))
        kept = {"kept": t["__first"]} if reason.startswith("duplicate ") else {}
        for r in fetch(rows.select(ROW, val=_raw(t, col), **kept)).to_pylist():
            then = f"; row {r['kept']} is kept" if kept else ""
            out.append(f"{where(source)} row {r[ROW]}, column {name}: {reason} "
                       f"(value {r['val']!r}{then})")
    return out


def where(source: Source) -> str:
    """The source as the user wrote it: the path in healthscore.yml, or the table of a URL."""
    spec = source.spec
    if spec.path:
        return spec.path + (f" (sheet {spec.sheet})" if spec.sheet else "")
    what = f"table {spec.table}" if spec.table else "query"
    return f"{redact_url(spec.url)} {what}" if spec.url else source.shown


def _reason_column(reason: str, entity: Entity) -> str:
    last = reason.split()[-1]
    return last if entity.column(last) else entity.columns[0].name


def _too_many(source: Source, health: DataHealth, max_share: float, max_rows: int | None) -> str:
    share = health.rows_rejected / health.rows_read
    top = ", ".join(f"{k}: {v}" for k, v in sorted(health.reasons.items(), key=lambda x: -x[1]))
    if share > max_share:
        limit, key = f"the allowed {max_share:.0%}", "max_rejected_share"
    else:
        limit, key = f"the allowed {max_rows} rows", "max_rejected_rows"
    return (
        f"{PROJECT_FILE}: sources.{source.entity}: {health.rows_rejected} of {health.rows_read} "
        f"rows ({share:.1%}) in {source.shown} are invalid ({top}), more than {limit}. "
        f"Fix the data or raise '{key}'. First problems:"
    )
