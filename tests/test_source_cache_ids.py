"""The source cache when the account ids change (sources/cache.py): an entry checked against
other account ids is used as it is when the checks would give each of its rows the verdict
they gave, and the source is read and checked again otherwise. Either way the rows and the
data health are those of a source read and checked afresh."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from healthscore import Project, pipeline
from healthscore.sources import cache
from tests.projects import (
    ACCOUNT_COLUMNS,
    ACCOUNTS,
    EVENT_COLUMNS,
    EVENTS,
    csv_text,
    parquet_file,
    project_yml,
    write_project,
)

TYPED_EVENTS = [(a, u, e, datetime.fromisoformat(t)) for a, u, e, t in EVENTS]
LENIENT = project_yml("accounts: {path: data/accounts.csv}\n"
                      "usage_events: {path: data/usage_events.csv, max_rejected_share: 0.5}\n")


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The entities whose source is checked (read and cleaned) from here on."""
    seen: list[str] = []
    real = cache.clean

    def counting(raw: Any, source: Any, *args: Any, **kw: Any) -> Any:
        seen.append(source.entity)
        return real(raw, source, *args, **kw)

    monkeypatch.setattr(cache, "clean", counting)
    return seen


def _load(root: Path, use_cache: bool = True) -> tuple[dict[str, list[tuple[Any, ...]]],
                                                          dict[str, Any], list[str]]:
    """(every source's clean rows, its data health, the sources taken from the cache)."""
    config = Project.load(root).config
    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None, use_cache)
        rows = {e: sorted(tuple(str(v) for v in r.values())
                          for r in engine.to_arrow(t).to_pylist())
                for e, t in loaded.tables.items()}
        return rows, {e: h.as_dict() for e, h in loaded.health.items()}, sorted(loaded.cached)
    finally:
        engine.close()


def _accounts(root: Path, rows: list[tuple[str, ...]]) -> None:
    (root / "data" / "accounts.csv").write_text(csv_text(ACCOUNT_COLUMNS, rows))


def _as_checked_afresh(root: Path, rows: dict[str, Any], health: dict[str, Any]) -> None:
    fresh_rows, fresh_health, cached = _load(root, use_cache=False)
    assert cached == []
    assert rows == fresh_rows and health == fresh_health


@pytest.mark.parametrize("events", ["csv", "parquet"])
def test_a_new_account_takes_the_other_sources_from_the_cache(
        tmp_path: Path, checked: list[str], monkeypatch: pytest.MonkeyPatch, events: str) -> None:
    # csv: the entry keeps a copy of the clean rows; parquet: it reads the files as they are
    files: dict[str, Any] = {"data/usage_events.csv": csv_text(EVENT_COLUMNS, EVENTS)}
    if events == "parquet":
        files = {"healthscore.yml": project_yml(
                     "accounts: {path: data/accounts.csv}\n"
                     "usage_events: {path: data/events.parquet}\n"),
                 "data/events.parquet": parquet_file(EVENT_COLUMNS, TYPED_EVENTS)}
    root = write_project(tmp_path, files)
    _load(root)
    _accounts(root, [*ACCOUNTS, ("A4", "Hooli", "SMB", "2024-01-01")])
    asked: list[int] = []
    real = cache._ids_known

    def asking(*args: Any) -> bool:
        asked.append(1)
        return real(*args)

    monkeypatch.setattr(cache, "_ids_known", asking)
    checked.clear()
    rows, health, cached = _load(root)
    assert checked == ["accounts"] and cached == ["usage_events"] and asked == [1]
    # recorded for the new ids: the next run takes it without asking again
    again = _load(root)
    assert again == (rows, health, ["accounts", "usage_events"]) and asked == [1]
    assert checked == ["accounts"]
    _as_checked_afresh(root, rows, health)


def test_a_deleted_account_with_rows_makes_its_sources_checked_again(
        mini: Path, checked: list[str]) -> None:
    write_project(mini, {"healthscore.yml": LENIENT}, base=False)
    _load(mini)
    _accounts(mini, ACCOUNTS[:2])  # A3 has one event
    checked.clear()
    rows, health, cached = _load(mini)
    assert checked == ["accounts", "usage_events"] and cached == []
    assert health["usage_events"]["reasons"] == {"unknown account_id": 1}
    assert not [r for r in rows["usage_events"] if r[0] == "A3"]
    _as_checked_afresh(mini, rows, health)
    # a deleted account without rows leaves the other sources as they were checked
    _accounts(mini, [*ACCOUNTS, ("A4", "Hooli", "SMB", "2024-01-01")])
    checked.clear()
    assert _load(mini)[2] == [] and checked == ["accounts", "usage_events"]  # A3 is back
    _accounts(mini, ACCOUNTS)
    checked.clear()
    assert _load(mini)[2] == ["usage_events"] and checked == ["accounts"]


def test_a_deleted_account_whose_only_rows_were_rejected_is_checked_again(
        mini: Path, checked: list[str]) -> None:
    """The clean rows hold no row of A4 (its one event has no date), yet checked afresh that
    row is also of an unknown account: the entry keeps the account ids of every row read."""
    bad = ("A4", "u9", "login", "not a date")
    write_project(mini, {"healthscore.yml": LENIENT,
                         "data/usage_events.csv": csv_text(EVENT_COLUMNS, [*EVENTS, bad])})
    a4 = ("A4", "Hooli", "SMB", "2024-01-01")
    _accounts(mini, [*ACCOUNTS, a4])
    _load(mini)
    # a new account: every row read is of a known account still, the entry stands
    _accounts(mini, [*ACCOUNTS, a4, ("A5", "Umbrella", "SMB", "2024-01-01")])
    checked.clear()
    rows, health, cached = _load(mini)
    assert checked == ["accounts"] and cached == ["usage_events"]
    _as_checked_afresh(mini, rows, health)
    _accounts(mini, ACCOUNTS)
    checked.clear()
    rows, health, cached = _load(mini)
    assert checked == ["accounts", "usage_events"] and cached == []
    assert health["usage_events"]["reasons"] == {
        "unparseable timestamp in timestamp": 1, "unknown account_id": 1}
    _as_checked_afresh(mini, rows, health)


def test_rows_of_an_unknown_account_are_kept_once_it_is_added(
        mini: Path, checked: list[str]) -> None:
    new = ("A4", "u9", "login", "2025-02-27 09:00:00")
    write_project(mini, {"healthscore.yml": LENIENT,
                         "data/usage_events.csv": csv_text(EVENT_COLUMNS, [*EVENTS, new])})
    _, health, _ = _load(mini)
    assert health["usage_events"]["reasons"] == {"unknown account_id": 1}
    _accounts(mini, [*ACCOUNTS, ("A4", "Hooli", "SMB", "2024-01-01")])
    checked.clear()
    rows, health, cached = _load(mini)
    assert checked == ["accounts", "usage_events"] and cached == []
    assert health["usage_events"]["rows_rejected"] == 0
    assert [r[:3] for r in rows["usage_events"] if r[0] == "A4"] == [("A4", "u9", "login")]
    _as_checked_afresh(mini, rows, health)
