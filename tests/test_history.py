"""Account attributes as they were: an account_history source makes segment, seats, stage and
CSM point-in-time, for attributes, ratios over seats, scorecard selection and percentiles."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from healthscore.project import Project

from .projects import EVENTS, SMALL_SPARK, csv_text, write_project

# today's accounts file: A1 has 10 seats now (its segment is stale there: Mid-Market)
ACCOUNTS = [
    ("A1", "Acme", "Mid-Market", "2024-01-01", 10, "Maria"),
    ("A2", "Globex", "Enterprise", "2024-06-01", 4, "Ivan"),
    ("A3", "Initech", "SMB", "2024-01-15", 2, "Maria"),
]
# A1 was SMB with 5 seats until 2025-02-15; A3's history starts on 2025-02-20; A2 has none
HISTORY = [
    ("A1", "2024-01-01", "SMB", 5, "Ivan"),
    ("A1", "2025-02-15", "Enterprise", 10, None),  # blank CSM: unchanged
    ("A1", "2025-02-20", None, None, "Maria"),
    ("A3", "2025-02-20", "SMB", 2, "Maria"),
]
EARLY, LATE = date(2025, 2, 10), date(2025, 3, 1)


def _files(history: list[tuple[object, ...]] | None) -> dict[str, object]:
    sources = "  account_history: {path: data/account_history.csv}\n" if history is not None else ""
    files: dict[str, object] = {
        "healthscore.yml": f"""\
name: mini
sources:
  accounts: {{path: data/accounts.csv}}
  usage_events: {{path: data/usage_events.csv}}
{sources}scorecards: [enterprise, default]
""",
        "measures/usage.yml": """\
            users_90: {type: count_distinct, entity: usage_events, column: user_id, window: 90d}
            seat_use: {type: ratio, numerator: users_90, denominator: accounts.licensed_seats,
                       scheme: {type: linear, low: 0, high: 1}}
            seats: {type: attribute, column: licensed_seats,
                    scheme: {type: percentile, by: segment}}
            """,
        "scorecards/enterprise.yml": "when: \"segment = 'Enterprise'\"\n"
                                     "groups: {use: {weight: 100, measures: {seat_use: 100}}}\n",
        "scorecards/default.yml": "groups: {use: {weight: 50, measures: {seat_use: 100}},"
                                  " size: {weight: 50, measures: {seats: 100}}}\n",
        "data/accounts.csv": csv_text(["account_id", "name", "segment", "start_date",
                                       "licensed_seats", "csm"], ACCOUNTS),
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], EVENTS),
    }
    if history is not None:
        files["data/account_history.csv"] = csv_text(
            ["account_id", "valid_from", "segment", "licensed_seats", "csm"], history)
    return files


def _scores(root: Path, dates: list[date]) -> pd.DataFrame:
    frame = Project.load(root).run(dates=dates, apply_rules=False).to_pandas()
    frame = frame[frame["is_primary"]]
    return frame.set_index(["as_of", "account_id"]).sort_index()


def test_attributes_ratios_selection_and_percentiles_are_read_as_of_each_date(tmp_path: Path) -> None:
    write_project(tmp_path, _files(HISTORY))
    f = _scores(tmp_path, [EARLY, LATE])
    early, late = f.loc[EARLY], f.loc[LATE]
    # A1: SMB with 5 seats (CSM Ivan) before 2025-02-15, Enterprise with 10 seats after
    assert (early.loc["A1", "segment"], early.loc["A1", "csm"], early.loc["A1", "scorecard"]) == (
        "SMB", "Ivan", "default")
    assert (late.loc["A1", "segment"], late.loc["A1", "csm"], late.loc["A1", "scorecard"]) == (
        "Enterprise", "Maria", "enterprise")
    assert early.loc["A1", "m__seat_use"] == pytest.approx(1 / 5)  # 1 user over 5 seats
    assert late.loc["A1", "m__seat_use"] == pytest.approx(2 / 10)  # 2 users over 10 seats
    # A2 has no history, and A3's starts later: the accounts file's values until then
    assert (late.loc["A2", "segment"], late.loc["A2", "m__seat_use"]) == ("Enterprise", 0.25)
    assert (early.loc["A3", "segment"], early.loc["A3", "m__seats"]) == ("SMB", 2)
    # percentile of seats among the date's SMB accounts: early A1 (5 seats) and A3 (2)
    assert (early.loc["A1", "s__seats"], early.loc["A3", "s__seats"]) == (75.0, 25.0)
    assert late.loc["A3", "s__seats"] == 50.0  # late, A3 is the only SMB account


def test_without_history_the_accounts_file_is_used_as_it_is_today(tmp_path: Path) -> None:
    write_project(tmp_path, _files(None))
    early = _scores(tmp_path, [EARLY]).loc[EARLY]
    assert (early.loc["A1", "segment"], early.loc["A1", "scorecard"]) == ("Mid-Market", "default")
    assert early.loc["A1", "m__seat_use"] == pytest.approx(1 / 10)


def test_history_never_leaks_a_later_change(tmp_path: Path) -> None:
    """Scoring both dates together on all the history == scoring each date on the history as
    it stood that day."""
    write_project(tmp_path / "all", _files(HISTORY))
    together = _scores(tmp_path / "all", [EARLY, LATE])
    for day in (EARLY, LATE):
        known = [h for h in HISTORY if date.fromisoformat(str(h[1])) <= day]
        write_project(tmp_path / str(day), _files(known))
        alone = _scores(tmp_path / str(day), [day])
        a, b = together.loc[day], alone.loc[day]
        cols = ["segment", "csm", "scorecard", "score", "band", "m__seat_use", "m__seats"]
        pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False)


@pytest.mark.spark
def test_spark_reads_history_as_duckdb_does(tmp_path: Path) -> None:
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 on the PATH (apt-get install openjdk-17-jre)")
    write_project(tmp_path / "duck", _files(HISTORY))
    files = _files(HISTORY)
    text = str(files["healthscore.yml"])
    files["healthscore.yml"] = text.replace("name: mini\n", f"name: mini\nengine: spark\n{SMALL_SPARK}")
    write_project(tmp_path / "spark", files)
    duck, spark = _scores(tmp_path / "duck", [EARLY, LATE]), _scores(tmp_path / "spark", [EARLY, LATE])
    cols = ["segment", "csm", "scorecard", "score", "band", "m__seat_use", "m__seats", "s__seats"]
    pd.testing.assert_frame_equal(duck[cols], spark[cols], check_dtype=False)


def test_validation_flags_todays_seats_only_without_a_history_of_them(tmp_path: Path) -> None:
    from healthscore.validation import signals

    write_project(tmp_path, _files(None))
    measure = Project.load(tmp_path).config.measures["seat_use"]
    for dated, flagged in ((frozenset(), True), (frozenset({"accounts.licensed_seats"}), False)):
        info: dict = {"flags": []}
        signals._flag_leak(info, measure, dated)
        assert any("reads accounts.licensed_seats" in f["why"] for f in info["flags"]) is flagged
