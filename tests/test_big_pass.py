"""A big pass merges its parts' contributions from one union as it goes (a small one stores
that union first), and keeps the values its last date counted: the same measures and the
same kept values either way."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from healthscore import Project
from tests.test_measures import build_project

FAR_APART = [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 5)]
CLOSE = [date(2025, 2, 27), date(2025, 2, 28), date(2025, 3, 1), date(2025, 3, 2)]


def _run(config: Any, dates: list[date], stored: list[str]) -> dict[str, pd.DataFrame]:
    """The measures, the running values kept for the next day and each distinct count's
    kept last days of one pass over ``dates``; the prefixes of the tables it stored go into
    ``stored``."""
    from healthscore import pipeline
    from healthscore.measures.carry import Carry
    from healthscore.pipeline import score
    from healthscore.pipeline.incremental import distinct_measures

    engine = pipeline.open_engine(config)
    materialize = engine.materialize

    def recorded(expr: Any, prefix: str) -> Any:
        stored.append(prefix)
        return materialize(expr, prefix)

    engine.materialize = recorded  # type: ignore[method-assign]
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        carry = Carry()
        measures = score.measures_expr(config, loaded, dates, carry=carry)
        out = {"measures": engine.to_arrow(measures).to_pandas()}
        carry.measures = engine.materialize(measures, "measures")
        out["kept"] = engine.to_arrow(carry.kept(distinct_measures(config))).to_pandas()
        kept_ids = engine.register_arrow(
            pa.Table.from_pandas(out["kept"][["account_id"]], preserve_index=False), "kept_ids")
        for name, seen in carry.kept_seen(kept_ids).items():
            out[f"seen {name}"] = engine.to_arrow(seen).to_pandas()
    finally:
        engine.close()
    return {name: _sorted(frame) for name, frame in out.items()}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("account_id", "k", "v", "day") if c in frame.columns]
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("dates", [FAR_APART, CLOSE], ids=["far apart", "close"])
def test_a_big_pass_gives_the_measures_and_kept_values_of_a_small_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dates: list[date]) -> None:
    from healthscore.pipeline import score

    config = Project.load(build_project(tmp_path)).config
    small = _run(config, dates, [])
    monkeypatch.setattr(score, "SMALL_RUN", 0)
    big = _run(config, dates, [])
    assert set(small) == set(big) and "seen users_30" in big
    assert len(big["measures"]) == (7 if dates == FAR_APART else 12)
    for name, frame in small.items():
        pd.testing.assert_frame_equal(frame, big[name], check_exact=False, rtol=1e-12)


def test_far_apart_dates_store_no_copy_of_the_values_seen(tmp_path: Path) -> None:
    """Where a distinct count is counted by joining days to dates, the values seen in the
    pass's span are not stored for the last days kept: those need only the last date's
    window. Over close dates the count from the rows reads them, and they are stored once."""
    config = Project.load(build_project(tmp_path)).config
    far: list[str] = []
    kept = _run(config, FAR_APART, far)["seen users_30"]
    assert "seen" not in far
    assert sorted(kept.itertuples(index=False, name=None)) == [
        ("A", "u1", date(2025, 3, 1)), ("A", "u2", date(2025, 2, 10)), ("B", "u9", date(2025, 2, 15))]
    close: list[str] = []
    _run(config, CLOSE, close)
    assert close.count("seen") == 1
