"""Compare measure values of two variants, row by row: same rows, same values (nulls equal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEYS = ["account_id", "as_of"]
TOLERANCE = 1e-9


@dataclass
class Comparison:
    rows_left: int
    rows_right: int
    only_left: int = 0
    only_right: int = 0
    differing: dict[str, int] = field(default_factory=dict)  # measure -> rows that differ
    examples: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.only_left or self.only_right or self.differing)

    def summary(self) -> str:
        if self.identical:
            return "yes"
        parts = []
        if self.only_left or self.only_right:
            parts.append(f"rows only left {self.only_left}, only right {self.only_right}")
        parts += [f"{m}: {n}" for m, n in self.differing.items()]
        return "NO (" + "; ".join(parts) + ")"


def read_snapshots(state_dir: Path, dates: list[date]) -> pd.DataFrame:
    """Measure values (``m__*`` columns, renamed to the measure) stored by a healthscore run."""
    from healthscore.store.snapshots import SnapshotStore

    store = SnapshotStore(state_dir)
    tables = []
    for day in dates:
        t = store.read(day)
        cols = KEYS + [c for c in t.column_names if c.startswith("m__")]
        tables.append(t.select(cols).rename_columns([c.removeprefix("m__") for c in cols]))
    return _frame(pa.concat_tables(tables))


def read_result(path: Path, dates: list[date] | None = None) -> pd.DataFrame:
    frame = _frame(pq.read_table(path))
    if dates is not None:
        frame = frame[frame.as_of.isin(set(dates))]
    return frame


def _frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["as_of"] = pd.to_datetime(frame.as_of).dt.date
    frame["account_id"] = frame.account_id.astype(str)
    return frame


def compare(left: pd.DataFrame, right: pd.DataFrame, measures: list[str]) -> Comparison:
    """``left`` and ``right`` hold KEYS and one column per measure."""
    joined = left[KEYS + measures].merge(right[KEYS + measures], on=KEYS, how="outer",
                                         suffixes=("_l", "_r"), indicator=True)
    both = joined[joined["_merge"] == "both"]
    out = Comparison(len(left), len(right),
                     only_left=int((joined["_merge"] == "left_only").sum()),
                     only_right=int((joined["_merge"] == "right_only").sum()))
    for m in measures:
        a = both[f"{m}_l"].to_numpy(dtype=float, na_value=np.nan)
        b = both[f"{m}_r"].to_numpy(dtype=float, na_value=np.nan)
        differ = ~_equal(a, b)
        if differ.any():
            out.differing[m] = int(differ.sum())
            for _, row in both[differ].head(3).iterrows():
                out.examples.append(f"{m} {row.account_id} {row.as_of}: "
                                    f"{row[f'{m}_l']!r} vs {row[f'{m}_r']!r}")
    return out


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal within 1e-9 (relative to the larger value, absolute below 1); two nulls are equal."""
    na, nb = np.isnan(a), np.isnan(b)
    scale = np.maximum(1.0, np.maximum(np.abs(np.nan_to_num(a)), np.abs(np.nan_to_num(b))))
    close = np.abs(np.nan_to_num(a) - np.nan_to_num(b)) <= TOLERANCE * scale
    return (na & nb) | (~na & ~nb & close)
