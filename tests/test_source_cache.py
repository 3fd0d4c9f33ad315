"""The source cache (sources/cache.py): an unchanged source is not read or checked again, its
data health is reported the same; a changed file, mapping or entity contract rebuilds exactly
that source; staleness and the rejection limits are per run; a damaged or half-written entry
is never used."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from healthscore import Project
from healthscore.entities import ENTITIES
from healthscore.errors import DataError
from healthscore.sources import cache
from tests.conftest import DEMO_DATES, copy_project, run_script
from tests.projects import (
    AS_OF,
    EVENT_COLUMNS,
    EVENTS,
    MEASURES_YML,
    SMALL_SPARK,
    csv_text,
    parquet_file,
    project_yml,
    write_project,
)

SCORES = ["account_id", "as_of", "scorecard", "m__logins_30", "score", "band"]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The entities whose source is read (and so checked) from here on."""
    seen: list[str] = []
    real = cache.read_source

    def counting(engine: Any, source: Any) -> Any:
        seen.append(source.entity)
        return real(engine, source)

    monkeypatch.setattr(cache, "read_source", counting)
    return seen


def _run(root: Path, **kw: Any) -> tuple[list[tuple[Any, ...]], dict[str, Any], Any]:
    result = Project.load(root).run(as_of=kw.pop("as_of", AS_OF), **kw)
    frame = result.to_pandas()
    rows = sorted(frame[SCORES].astype(str).itertuples(index=False, name=None))
    health = {k: h.as_dict() for k, h in result.health.items()}
    return rows, health, result


def _entries(root: Path) -> dict[str, list[str]]:
    folder = root / ".healthscore" / cache.FOLDER
    return {e.name: sorted(p.name for p in e.iterdir()) for e in sorted(folder.iterdir())
            if e.is_dir()}


def test_an_unchanged_source_is_not_read_again(mini: Path, reads: list[str]) -> None:
    rows, health, first = _run(mini)
    assert reads == ["accounts", "usage_events"] and first.cached == []
    reads.clear()
    again, health_again, second = _run(mini)
    assert reads == [] and second.cached == ["accounts", "usage_events"]
    assert again == rows and health_again == health
    assert second.warnings == first.warnings
    assert sorted(_entries(mini)) == ["accounts", "usage_events"]
    # check takes them from the cache too; --no-cache reads and checks every source again
    assert Project.load(mini).check().cached == ["accounts", "usage_events"]
    assert reads == []
    assert Project.load(mini).run(as_of=AS_OF, cache=False).cached == []
    assert reads == ["accounts", "usage_events"]


def test_the_cached_rows_are_what_the_run_scores(mini: Path, reads: list[str]) -> None:
    # proof the second run reads the cached rows, not the file: alter the cached rows
    _run(mini)
    import pyarrow.parquet as pq

    [entry] = (mini / ".healthscore" / cache.FOLDER / "usage_events").iterdir()
    rows = pq.read_table(entry / cache.ROWS)
    import pyarrow.compute as pc

    pq.write_table(rows.filter(pc.not_equal(rows["account_id"], "A1")), entry / cache.ROWS)
    saved = json.loads((entry / cache.HEALTH).read_text())
    saved.update(size=(entry / cache.ROWS).stat().st_size, rows=rows.num_rows - 3)
    (entry / cache.HEALTH).write_text(json.dumps(saved))
    reads.clear()
    scores, _, _ = _run(mini)
    assert reads == []
    assert [r[3] for r in scores if r[0] == "A1"] == ["0.0"]  # A1's logins came from the file


TYPED_EVENTS = [(a, u, e, datetime.fromisoformat(t)) for a, u, e, t in EVENTS]


@pytest.mark.parametrize(("events", "copied"), [
    (TYPED_EVENTS, False),  # every column of its type, no row rejected: no copy
    (EVENTS, True),  # timestamps as text: parsed, so the parsed rows are kept
    (TYPED_EVENTS + [("A9", "u9", "login", datetime(2025, 2, 26))], True),  # a rejected row
])
def test_parquet_rows_that_pass_as_read_are_not_copied(
        tmp_path: Path, reads: list[str], events: list[tuple[Any, ...]], copied: bool) -> None:
    write_project(tmp_path, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/events.parquet, max_rejected_share: 0.5}\n"),
        "data/events.parquet": parquet_file(EVENT_COLUMNS, events),
    })
    rows, health, _ = _run(tmp_path)
    [entry] = (tmp_path / ".healthscore" / cache.FOLDER / "usage_events").iterdir()
    assert (entry / cache.ROWS).exists() == copied
    assert json.loads((entry / cache.HEALTH).read_text())["as_read"] == (not copied)
    reads.clear()
    again, health_again, result = _run(tmp_path)
    assert result.cached == ["accounts", "usage_events"]
    assert again == rows and health_again == health
    assert reads == ([] if copied else ["usage_events"])  # the files, not checked again
    # nor copied into the engine on a run that checks them: the clean table reads the file
    assert _copies_in_engine(tmp_path, cache=False) == (["usage_events"] if copied else [])


@pytest.mark.parametrize("cached", [False, True])
def test_a_file_changed_while_the_run_reads_it_fails_the_run_and_writes_nothing(
        tmp_path: Path, cached: bool) -> None:
    events = tmp_path / "data" / "events.parquet"
    write_project(tmp_path, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\nusage_events: {path: data/events.parquet}\n"),
        "data/events.parquet": parquet_file(EVENT_COLUMNS, TYPED_EVENTS),
    })
    if cached:  # the next run takes the source from the cache: it reads the file again
        _run(tmp_path, as_of="2025-02-28")
    project = Project.load(tmp_path)
    before = project.store.dates()
    assert date.fromisoformat(AS_OF) not in before

    def rewrite(step: str) -> None:  # once the sources are read: a file written in place
        if step.startswith("scoring") and events.stat().st_mtime_ns != 1:
            parquet_file(EVENT_COLUMNS, TYPED_EVENTS[:-1])(events)
            os.utime(events, ns=(1, 1))

    with pytest.raises(DataError) as err:
        project.run(as_of=AS_OF, progress=rewrite)
    assert str(err.value) == (
        f"sources.usage_events: {events} changed while the run read it (its size or "
        "modification time is not what it was when the run began). Nothing was written. Run "
        "again once the file is written whole; to avoid this, write each new file under another "
        "name and rename it into place.")
    assert project.store.dates() == before  # no snapshot of the refused date


def _copies_in_engine(root: Path, cache: bool) -> list[str]:
    """The event sources whose clean rows a run copies into its engine (not read from files)."""
    from healthscore import pipeline

    config = Project.load(root).config
    engine = pipeline.open_engine(config)
    try:
        pipeline.load_sources(config, engine, lambda _: None, cache)
        tables = engine.con.con.sql("SELECT table_name FROM duckdb_tables()").fetchall()
        return ["usage_events" for (name,) in tables if name.startswith("hs_clean_usage_events")]
    finally:
        engine.close()


def test_a_changed_file_rebuilds_only_that_source(mini: Path, reads: list[str]) -> None:
    _run(mini)
    events = mini / "data" / "usage_events.csv"
    os.utime(events, ns=(1, 1))  # touched, same content: hashed again, still the same key
    reads.clear()
    _run(mini)
    assert reads == []
    events.write_text(csv_text(EVENT_COLUMNS, [*EVENTS, ("A2", "u3", "login", "2025-02-26")]))
    rows, health, _ = _run(mini)
    assert reads == ["usage_events"]
    assert ("A2", AS_OF, "default", "2.0", "100.0", "green") in rows
    assert health["usage_events"]["rows_read"] == 7
    assert [len(v) for v in _entries(mini).values()] == [1, 1]  # the old entry removed


def test_a_file_changed_at_the_same_size_and_time_is_seen(mini: Path, reads: list[str]) -> None:
    # two writes within one tick of the file system's clock leave the same size and time:
    # a file modified that close to its hashing is hashed again on the next run
    events = mini / "data" / "usage_events.csv"
    _run(mini)
    stat = events.stat()
    events.write_text(events.read_text().replace("u1", "u9"))  # same size
    os.utime(events, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reads.clear()
    _run(mini)
    assert reads == ["usage_events"]


def test_a_changed_mapping_or_contract_rebuilds_only_that_source(
        mini: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _run(mini)
    reads.clear()
    write_project(mini, {"healthscore.yml": project_yml(
        "accounts: {path: data/accounts.csv}\n"
        "usage_events: {path: data/usage_events.csv, columns: {user_id: user_id}}\n")})
    _run(mini)
    assert reads == ["usage_events"]
    reads.clear()
    events = ENTITIES["usage_events"]
    changed = dataclasses.replace(events, columns=(*events.columns, dataclasses.replace(
        events.columns[-1], name="extra_column")))
    monkeypatch.setitem(ENTITIES, "usage_events", changed)
    _run(mini)
    assert reads == ["usage_events"]


def test_accounts_changes_leave_the_others_cached_while_their_ids_stay_known(
        mini: Path, reads: list[str]) -> None:
    _run(mini)
    accounts = mini / "data" / "accounts.csv"
    accounts.write_text(accounts.read_text().replace("Acme", "Acme Corp"))
    reads.clear()
    _run(mini)
    assert reads == ["accounts"]  # same ids: the events' unknown-account check stands
    accounts.write_text(accounts.read_text().rstrip("\n")
                        + "\nA4,Hooli,SMB,2024-01-01\n")
    reads.clear()
    _run(mini)
    assert reads == ["accounts"]  # a new id: every event's account is still known
    # (an account deleted with rows, or rows of an unknown account: test_source_cache_ids)


def test_staleness_and_rejection_limits_are_per_run(mini: Path, reads: list[str]) -> None:
    write_project(mini, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/usage_events.csv, stale_after: 3d, max_rejected_share: 0.5}\n"),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, [*EVENTS, ("A9", "u9", "login", "2025-02-01")]),
    })
    stale = ("usage_events: newest row is from 2025-02-25, older than 3 days before 2025-03-01; "
             "its measures count as missing.")
    _, _, first = _run(mini)
    assert stale in first.warnings
    reads.clear()
    _, _, fresh = _run(mini, as_of="2025-02-27")
    assert reads == [] and fresh.cached == ["accounts", "usage_events"]
    assert not any("newest row" in w for w in fresh.warnings)
    # a stricter limit fails the run from the cache exactly as from the file
    write_project(mini, {"healthscore.yml": project_yml(
        "accounts: {path: data/accounts.csv}\n"
        "usage_events: {path: data/usage_events.csv, stale_after: 3d, max_rejected_share: 0.5, "
        "max_rejected_rows: 0}\n")}, base=False)
    with pytest.raises(DataError) as cached:
        Project.load(mini).run(as_of=AS_OF)
    assert reads == []
    with pytest.raises(DataError) as uncached:
        Project.load(mini).run(as_of=AS_OF, cache=False)
    assert reads == ["accounts", "usage_events"]
    assert cached.value.message == uncached.value.message == (
        "healthscore.yml: sources.usage_events: 1 of 7 rows (14.3%) in "
        f"{mini / 'data' / 'usage_events.csv'} are invalid (unknown account_id: 1), more than "
        "the allowed 0 rows. Fix the data or raise 'max_rejected_rows'. First problems:")
    assert cached.value.details == uncached.value.details


@pytest.mark.parametrize("damage", ["truncated rows", "rows of another entry", "bad health"])
def test_a_damaged_entry_is_ignored_and_rebuilt(mini: Path, reads: list[str], damage: str) -> None:
    rows, health, _ = _run(mini)
    [entry] = (mini / ".healthscore" / cache.FOLDER / "usage_events").iterdir()
    if damage == "truncated rows":
        data = (entry / cache.ROWS).read_bytes()
        (entry / cache.ROWS).write_bytes(data[: len(data) // 2])
    elif damage == "rows of another entry":
        [accounts] = (mini / ".healthscore" / cache.FOLDER / "accounts").iterdir()
        (entry / cache.ROWS).write_bytes((accounts / cache.ROWS).read_bytes())
    else:
        (entry / cache.HEALTH).write_text('{"size": 1')
    reads.clear()
    again, health_again, result = _run(mini)
    assert reads == ["usage_events"] and result.cached == ["accounts"]
    assert again == rows and health_again == health
    reads.clear()
    assert _run(mini)[2].cached == ["accounts", "usage_events"]  # rebuilt whole


KILL = textwrap.dedent("""
    import os, sys
    from healthscore import Project
    from healthscore.sources import cache

    def checkpoint(step):
        if step == sys.argv[2]:
            os._exit(9)  # a kill: no finally, no cleanup

    cache._checkpoint = checkpoint
    Project.load(sys.argv[1]).check()
""")


@pytest.mark.parametrize("step", ["rows written", "health written"])
def test_a_run_killed_while_writing_leaves_no_entry(mini: Path, reads: list[str], step: str) -> None:
    killed = run_script(KILL, str(mini), step)
    assert killed.returncode == 9, killed.stderr
    assert _entries(mini) == {"accounts": [next(iter(_entries(mini)["accounts"]))]}
    assert _entries(mini)["accounts"][0].startswith(".tmp-")  # the dead run's staging folder
    rows, health, result = _run(mini)
    assert reads == ["accounts", "usage_events"] and result.cached == []
    assert [len(v) for v in _entries(mini).values()] == [1, 1]  # staging folder removed
    assert not any(name.startswith(".tmp-") for v in _entries(mini).values() for name in v)


def test_what_filters_match_is_kept_with_the_entry(tmp_path: Path, reads: list[str],
                                                   filtered: list[list[str]]) -> None:
    """A filter that matches no row is reported on every run, but an unchanged source is
    not scanned for it again: the note is kept in its entry; a changed filter is checked."""
    signins = [(a, u, "signin" if e == "login" else e, t) for a, u, e, t in EVENTS]
    root = write_project(tmp_path, {"data/usage_events.csv": csv_text(EVENT_COLUMNS, signins)})
    scanned = filtered
    note = ("usage_events: measures/usage.yml: logins_30: filter \"event = 'login'\" matches "
            "none of the 6 rows of usage_events (text is compared ignoring case), so the "
            "measure is 0 or missing for every account. Values seen: event: 'signin' (4), "
            "'export' (2). Fix the filter or the data.")
    _, _, first = _run(root)
    assert scanned == [["usage_events"]] and note in first.warnings
    [entry] = (root / ".healthscore" / cache.FOLDER / "usage_events").iterdir()
    assert json.loads((entry / cache.NOTES).read_text())["notes"] == [note[len("usage_events: "):]]
    _, _, second = _run(root)
    assert reads == ["accounts", "usage_events"] and second.cached == ["accounts", "usage_events"]
    assert scanned == [["usage_events"], []] and second.warnings == first.warnings
    (root / "measures" / "usage.yml").write_text(MEASURES_YML.replace("'login'", "'signin'"))
    _, _, third = _run(root)
    assert scanned[-1] == ["usage_events"] and not [w for w in third.warnings if "matches" in w]
    assert reads == ["accounts", "usage_events"]  # the rows themselves still from the cache


def test_the_cache_can_be_turned_off(mini: Path, reads: list[str]) -> None:
    write_project(mini, {"healthscore.yml": project_yml(
        "accounts: {path: data/accounts.csv}\nusage_events: {path: data/usage_events.csv}\n",
        "scorecards: [default]\nsettings: {source_cache: false}")})
    _run(mini)
    _run(mini)
    assert reads == ["accounts", "usage_events"] * 2
    assert not (mini / ".healthscore" / cache.FOLDER).exists()


def test_demo_scores_are_identical_with_and_without_the_cache(
        scored_demo: Path, tmp_path: Path, reads: list[str]) -> None:
    """The demo as first scored (``scored_demo``: nothing cached yet, every source read from
    its files) and the same dates scored again from the cache entries that run left."""
    first = Project.load(scored_demo)
    frames: list[pd.DataFrame] = [pa.concat_tables([first.store.read(d) for d in DEMO_DATES],
                                                   promote_options="default").to_pandas()]
    healths: list[dict[str, Any]] = [first.last_run()["health"]]  # type: ignore[index]
    result = Project.load(copy_project(scored_demo, tmp_path / "p")).run(dates=DEMO_DATES,
                                                                         apply_rules=False)
    frames.append(result.to_pandas())
    healths.append({k: h.as_dict() for k, h in result.health.items()})
    frames = [f.sort_values(["account_id", "as_of", "scorecard"]).reset_index(drop=True)
              for f in frames]
    assert result.cached == sorted(healths[0])  # every demo source is a file
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert healths[0] == healths[1]


@pytest.mark.spark
def test_spark_reads_its_own_cache(tmp_path: Path, reads: list[str]) -> None:
    pytest.importorskip("pyspark")
    import shutil

    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 on the PATH (apt-get install openjdk-17-jre)")
    # the accounts' CSV is kept as a copy; the events' Parquet file passes as read, so its
    # entry keeps only the health and the next run reads the file again
    write_project(tmp_path, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\nusage_events: {path: data/events.parquet}\n",
            "scorecards: [default]\nengine: spark\n" + SMALL_SPARK.rstrip("\n")),
        "data/events.parquet": parquet_file(EVENT_COLUMNS, TYPED_EVENTS),
    })
    rows, health, _ = _run(tmp_path)
    folder = tmp_path / ".healthscore" / cache.FOLDER
    [accounts_entry], [events_entry] = (list((folder / e).iterdir()) for e in
                                        ("accounts", "usage_events"))
    assert (accounts_entry / cache.ROWS).exists() and not (events_entry / cache.ROWS).exists()
    reads.clear()
    again, health_again, result = _run(tmp_path)
    assert reads == ["usage_events"] and result.cached == ["accounts", "usage_events"]
    assert again == rows and health_again == health
