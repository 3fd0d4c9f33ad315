"""The snapshot swap survives a kill at every step: no stored date is lost, each date is the
old or the new snapshot whole, and the next run cleans up what the killed one left."""

from __future__ import annotations

import os
import textwrap
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.store.snapshots import SnapshotStore, add_pass

from .conftest import run_script

DATES = ["2025-01-31", "2025-02-28"]
KEPT = "2024-12-31"  # a date the run does not touch
STEPS = ["staged", "journaled", "moved old", "moved new", "moved old", "moved new", "done"]

SWAP = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import pyarrow as pa, pyarrow.parquet as pq
    from healthscore.store import snapshots

    seen = []
    stop = int(sys.argv[2])

    def checkpoint(step):
        seen.append(step)
        if len(seen) == stop:
            os._exit(9)  # a kill: no finally, no cleanup

    snapshots._checkpoint = checkpoint
    store = snapshots.SnapshotStore(Path(sys.argv[1]))
    with store.staging() as stage:
        for day in sys.argv[3:]:
            (stage / f"as_of={day}").mkdir()
            pq.write_table(pa.table({"v": ["new"]}), stage / f"as_of={day}" / "data_0.parquet")
    print(",".join(seen))
""")


def _write(root: Path, day: str, value: str) -> None:
    folder = root / "snapshots" / f"as_of={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"v": [value]}), folder / "data_0.parquet")


def _value(store: SnapshotStore, day: str) -> str:
    files = sorted(store.path(__import__("datetime").date.fromisoformat(day)).glob("*.parquet"))
    return str(pq.read_table(files).column("v").to_pylist())


def test_the_swap_goes_through_these_steps(tmp_path: Path) -> None:
    for day in (KEPT, *DATES):
        _write(tmp_path, day, "old")
    done = run_script(SWAP, str(tmp_path), "0", *DATES)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(",") == STEPS


def _killed_and_recovered(root: Path, script: str, stop: int) -> SnapshotStore:
    """Every date written "old", then a swap of DATES by ``script`` killed at step ``stop``,
    then the recovery the next run does first: the store, holding every date."""
    for day in (KEPT, *DATES):
        _write(root, day, "old")
    killed = run_script(script, str(root), str(stop), *DATES)
    assert killed.returncode == 9, killed.stderr
    store = SnapshotStore(root)
    store.recover()
    assert [d.isoformat() for d in store.dates()] == [KEPT, *DATES]
    return store


@pytest.mark.parametrize("stop", range(1, len(STEPS) + 1))
def test_a_kill_at_any_step_loses_nothing(tmp_path: Path, stop: int) -> None:
    store = _killed_and_recovered(tmp_path, SWAP, stop)
    want = "['old']" if STEPS[stop - 1] == "staged" else "['new']"  # journaled: rolled forward
    assert [_value(store, d) for d in DATES] == [want, want]
    assert _value(store, KEPT) == "['old']"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "snapshots")
    assert left == []


# ------------------------------------------------------------------ one file for many dates

PASS_SWAP = SWAP.replace(
    """    for day in sys.argv[3:]:
        (stage / f"as_of={day}").mkdir()
        pq.write_table(pa.table({"v": ["new"]}), stage / f"as_of={day}" / "data_0.parquet")""",
    """    import datetime
    days = [datetime.date.fromisoformat(d) for d in sys.argv[3:]]
    rows = pa.table({"as_of": days, "v": ["new"] * len(days)})
    snapshots.add_pass(stage, lambda path: pq.write_table(rows, path))""")
assert PASS_SWAP != SWAP
PASS_STEPS = ["staged", "journaled", "moved file", *STEPS[2:]]


def _rows(days: list[str], scores: list[float], primary: list[bool]) -> pa.Table:
    return pa.table({"as_of": [date.fromisoformat(d) for d in days],
                     "account_id": [f"A{i}" for i in range(len(days))],
                     "score": scores, "is_primary": primary})


def _stage_pass(store: SnapshotStore, rows: pa.Table) -> None:
    with store.staging() as stage:
        add_pass(stage, lambda path: pq.write_table(rows, path, row_group_size=1))


def test_a_pass_file_and_an_older_date_folder_read_the_same(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    old = _rows([KEPT, KEPT], [10.0, 20.0], [True, False])
    (store.path(date.fromisoformat(KEPT))).mkdir(parents=True)  # as older versions wrote it
    pq.write_table(old, store.path(date.fromisoformat(KEPT)) / "data_0.parquet")
    _stage_pass(store, _rows([DATES[0], DATES[0], DATES[1]], [30.0, 40.0, 50.0],
                             [True, False, True]))
    assert [d.isoformat() for d in store.dates()] == [KEPT, *DATES]
    assert sorted(p.name for p in store.path(date.fromisoformat(DATES[0])).iterdir()) == ["rows.json"]
    scores = {d: store.read(date.fromisoformat(d)).column("score").to_pylist()
              for d in (KEPT, *DATES)}
    assert scores == {KEPT: [10.0, 20.0], DATES[0]: [30.0, 40.0], DATES[1]: [50.0]}
    first = store.read(date.fromisoformat(DATES[0]), columns=["account_id", "score", "nope"],
                       primary_only=True)
    assert first.to_pydict() == {"account_id": ["A0"], "score": [30.0]}
    kept = store.read(date.fromisoformat(KEPT), columns=["score", "nope"], primary_only=True)
    assert kept.to_pydict() == {"score": [10.0]}


def test_a_pass_file_goes_when_no_date_names_it(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    _stage_pass(store, _rows([KEPT, *DATES], [1.0, 2.0, 3.0], [True] * 3))
    first = sorted(p.name for p in store.passes.iterdir())
    _stage_pass(store, _rows(DATES, [4.0, 5.0], [True] * 2))  # two of its three dates again
    assert [store.read(date.fromisoformat(d)).column("score").to_pylist()
            for d in (KEPT, *DATES)] == [[1.0], [4.0], [5.0]]
    assert len(list(store.passes.iterdir())) == 2 and first[0] in {p.name for p in store.passes.iterdir()}
    store.prune(date.fromisoformat(DATES[0]))  # KEPT goes: the first file has no date left
    assert first[0] not in {p.name for p in store.passes.iterdir()}
    assert len(list(store.passes.iterdir())) == 1


@pytest.mark.parametrize("stop", range(1, len(PASS_STEPS) + 1))
def test_a_kill_at_any_step_of_a_pass_file_swap_loses_nothing(tmp_path: Path, stop: int) -> None:
    store = _killed_and_recovered(tmp_path, PASS_SWAP, stop)
    want = ["old"] if PASS_STEPS[stop - 1] == "staged" else ["new"]  # journaled: rolled forward
    assert [store.read(date.fromisoformat(d)).column("v").to_pylist() for d in DATES] == [want] * 2
    assert store.read(date.fromisoformat(KEPT)).column("v").to_pylist() == ["old"]
    files = list(store.passes.glob("*")) if store.passes.is_dir() else []
    assert len(files) == (0 if want == ["old"] else 1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "snapshots") == []


def test_the_swap_of_a_pass_file_goes_through_these_steps(tmp_path: Path) -> None:
    for day in (KEPT, *DATES):
        _write(tmp_path, day, "old")
    done = run_script(PASS_SWAP, str(tmp_path), "0", *DATES)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(",") == PASS_STEPS


def test_a_pass_file_of_a_swap_under_way_is_kept(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.passes.mkdir(parents=True)
    pq.write_table(pa.table({"v": [1]}), store.passes / "pass-abc.parquet")
    stage = tmp_path / ".staging-run1"  # another run, alive, between its journal and folders
    stage.mkdir()
    (stage / ".owner").write_text(str(os.getpid()))
    (tmp_path / ".swap-run1.json").write_text(
        '{"stage": ".staging-run1", "trash": ".trash-run1", "parts": [], "files": ["pass-abc.parquet"]}')
    store.recover()
    assert [p.name for p in store.passes.iterdir()] == ["pass-abc.parquet"]
    (tmp_path / ".swap-run1.json").unlink()  # no swap and no date names it: it goes
    store.recover()
    assert list(store.passes.iterdir()) == []
