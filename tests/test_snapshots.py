"""The snapshot swap survives a kill at every step: no stored date is lost, each date is the
old or the new snapshot whole, and the next run cleans up what the killed one left."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.store.snapshots import SnapshotStore

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
    done = subprocess.run([sys.executable, "-c", SWAP, str(tmp_path), "0", *DATES],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip().split(",") == STEPS


@pytest.mark.parametrize("stop", range(1, len(STEPS) + 1))
def test_a_kill_at_any_step_loses_nothing(tmp_path: Path, stop: int) -> None:
    for day in (KEPT, *DATES):
        _write(tmp_path, day, "old")
    killed = subprocess.run([sys.executable, "-c", SWAP, str(tmp_path), str(stop), *DATES],
                            capture_output=True, text=True)
    assert killed.returncode == 9, killed.stderr
    store = SnapshotStore(tmp_path)
    store.recover()  # what the next run does first
    assert [d.isoformat() for d in store.dates()] == [KEPT, *DATES]
    want = "['old']" if STEPS[stop - 1] == "staged" else "['new']"  # journaled: rolled forward
    assert [_value(store, d) for d in DATES] == [want, want]
    assert _value(store, KEPT) == "['old']"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "snapshots")
    assert left == []
