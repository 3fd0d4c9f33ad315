"""Partial leaks: a back-dated feed (rows stamped before the churn that only exist because of
it) and rows recorded after the outcome are flagged on the measures that read them, and on
no other measure of the same source."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from healthscore.project import Project

from .projects import SMALL_SPARK, csv_text, write_project

START, END = date(2024, 10, 1), date(2025, 9, 30)


def _every(first: date, last: date, step: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]


def _project(root: Path) -> Path:
    accounts, events = [], []
    for i in range(80):
        a = f"A{i:02d}"
        churn = date(2025, 2, 15) + timedelta(days=4 * i) if i % 2 else None
        accounts.append((a, a, "SMB", "2023-01-01", churn or "", "gold" if i % 4 < 2 else "silver"))
        last = (churn - timedelta(days=1)) if churn else END
        slow = churn - timedelta(days=60) if churn else END  # churners log in less at the end
        days = _every(START + timedelta(days=i % 3), min(slow, last), 3)
        days += _every(slow, last, 6) if churn else []
        events += [(a, "login", d) for d in days]
        events += [(a, "export", d) for d in _every(START + timedelta(days=i % 7), last, 10)]
        if churn:  # the back-dated feed: written at the churn, stamped 25 days before it
            events.append((a, "cancel_page", churn - timedelta(days=25)))
        if churn and i < 6:  # ...and a few rows recorded after the churn
            events.append((a, "cancel_page", churn + timedelta(days=3)))
        if not churn and i % 16 == 0:  # a few stayers visit the page too
            events.append((a, "cancel_page", date(2025, 3, 1) + timedelta(days=i)))
    return write_project(root, {
        "healthscore.yml": "name: leaks\nsources:\n  accounts: {path: data/accounts.csv, "
                           "attributes: {tier: string}}\n"
                           "  usage_events: {path: data/usage_events.csv}\nscorecards: [default]\n"
                           f"validation: {{observed_until: {END}, bootstrap: 50, segment_by: tier}}\n",
        "measures/usage.yml": """\
            logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d,
                        scheme: {type: linear, low: 0, high: 10}}
            exports_30: {type: count, entity: usage_events, filter: "event = 'export'", window: 30d,
                         scheme: {type: linear, low: 0, high: 3}}
            cancel_90: {type: count, entity: usage_events, filter: "event = 'cancel_page'",
                        window: 90d, scheme: {type: linear, low: 1, high: 0}}
            """,
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {logins_30: 60, "
                                  "exports_30: 20, cancel_90: 20}}}\n",
        "data/accounts.csv": csv_text(["account_id", "name", "segment", "start_date", "churn_date",
                                       "tier"],
                                      accounts),
        "data/usage_events.csv": csv_text(["account_id", "event", "timestamp"],
                                          [(a, e, f"{d} 10:00:00") for a, e, d in events]),
    })


@pytest.fixture(scope="module")
def leaks(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = _project(tmp_path_factory.mktemp("leaks"))
    return Project.load(root).validate(start="2025-01-31", end="2025-06-30", horizon="90d").to_json()


def _flags(data: dict, name: str) -> list[str]:
    return [f"{f['flag']}: {f['why']}" for f in data["signals"][name]["flags"]]


def test_a_back_dated_feed_is_flagged_though_its_auc_is_far_from_perfect(leaks: dict) -> None:
    s = leaks["signals"]["cancel_90"]
    assert s["separation"] < 0.8  # the old rule (AUC >= 0.95) cannot see it
    d = s["by_distance"]
    assert d["auc_near"] >= 0.8 and d["auc_far"] < 0.6
    assert (f"leaky: tells the outcome apart only in the last 30 days before it (AUC "
            f"{d['auc_near']:.2f}, against {d['auc_far']:.2f} further ahead)") in " ".join(
        _flags(leaks, "cancel_90"))


def test_a_real_signal_that_builds_up_early_is_not_a_late_mover(leaks: dict) -> None:
    d = leaks["signals"]["logins_30"]["by_distance"]
    assert d["auc_far"] >= 0.6  # churners log in less two months ahead already
    assert not any(f.startswith("leaky") for f in _flags(leaks, "logins_30"))


def test_rows_after_the_churn_flag_only_the_measures_that_read_them(leaks: dict) -> None:
    assert leaks["rows_after_churn"] == {"usage_events": 3}
    assert ("leaky: 3 rows of usage_events matching its filter are dated after their account "
            "churned: data recorded after the outcome. Check how the source stamps its rows."
            ) in _flags(leaks, "cancel_90")
    # logins and exports come from the same source but none of their rows is after a churn
    assert not any(f.startswith("leaky") for f in _flags(leaks, "exports_30"))


def test_an_extra_account_column_splits_the_metrics_by_segment(leaks: dict) -> None:
    """validation.segment_by names the project's own attribute 'tier' (sources.accounts)."""
    segments = leaks["segments"]
    assert sorted(segments) == ["gold", "silver"]
    assert sum(s["observations"] for s in segments.values()) == leaks["overall"]["observations"]


@pytest.mark.spark
def test_spark_finds_the_same_leaks_with_the_same_numbers(leaks: dict, tmp_path: Path) -> None:
    """The backtest on the Spark engine: the same observations, per-measure AUCs near and far
    from the outcome, flags and rows after the churn as on DuckDB."""
    import shutil

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 on the PATH (apt-get install openjdk-17-jre)")
    config = _project(tmp_path) / "healthscore.yml"
    config.write_text(config.read_text().replace("name: leaks\n",
                                                 f"name: leaks\nengine: spark\n{SMALL_SPARK}"))
    spark = Project.load(tmp_path).validate(start="2025-01-31", end="2025-06-30",
                                            horizon="90d").to_json()
    assert spark["rows_after_churn"] == leaks["rows_after_churn"] == {"usage_events": 3}
    assert spark["overall"]["observations"] == leaks["overall"]["observations"] > 0
    assert spark["overall"]["auc"] == pytest.approx(leaks["overall"]["auc"], abs=1e-9)
    for name in ("cancel_90", "logins_30", "exports_30"):
        assert _flags(spark, name) == _flags(leaks, name), name
        for key in ("separation",):
            assert spark["signals"][name][key] == pytest.approx(leaks["signals"][name][key], abs=1e-9)
        assert spark["signals"][name]["by_distance"] == pytest.approx(
            leaks["signals"][name]["by_distance"], abs=1e-9), name
    assert any(f.startswith("leaky") for f in _flags(spark, "cancel_90"))
