"""The rules at their edges (docs/configuration.md, "Boundaries"): a value on a cut, a score on
a band's minimum, coverage at min_coverage, a source exactly as old as allowed, an override
on its expiry day, the CTA cooldown, and a CTA closing when its condition clears."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import ibis
import pytest

from healthscore.config import specs
from healthscore.project import Project
from healthscore.scoring import schemes
from healthscore.sources.clean import DataHealth
from healthscore.workflow.service import Workflow

from .projects import AS_OF, EVENTS, csv_text, write_project
from .test_trust import _project

DAY = date(2025, 3, 2)


def _score(scheme: object, values: list[float | None]) -> list[float | None]:
    t = ibis.memtable({"v": values}, schema={"v": "float64"})
    out = t.select(s=schemes.score(scheme, t.v)).to_pyarrow()["s"].to_pylist()  # type: ignore[arg-type]
    return out


def test_a_value_on_a_cut_takes_the_score_above_it() -> None:
    scheme = specs.ThresholdsScheme(type="thresholds", cuts=[1, 6], scores=[0, 50, 100])
    assert _score(scheme, [0.999, 1, 5.999, 6, None]) == [0, 50, 50, 100, None]


def test_linear_ends_are_0_and_100_and_clamped() -> None:
    scheme = specs.LinearScheme(type="linear", low=10, high=20)
    assert _score(scheme, [9, 10, 15, 20, 21]) == [0, 0, 50, 100, 100]


def test_category_values_ignore_case_unless_the_scheme_says_otherwise() -> None:
    t = ibis.memtable({"v": ["Pro", "pro", "BASIC", "other", None]})
    loose = specs.CategoryScheme(type="category", map={"pro": 100, "basic": 40}, default=0)
    exact = specs.CategoryScheme(type="category", map={"pro": 100, "basic": 40}, default=0,
                                 case_sensitive=True)
    for scheme, want in ((loose, [100, 100, 40, 0, None]), (exact, [0, 100, 0, 0, None])):
        got = t.select(s=schemes.score(scheme, t.v)).to_pyarrow()["s"].to_pylist()
        assert got == want


def test_a_score_on_a_bands_minimum_is_in_that_band_and_coverage_at_the_minimum_counts(
        tmp_path: Path) -> None:
    # linear 0..2 logins: A1 2 logins -> 100, A2 1 -> 50, A3 0 -> 0; bands from 50 and 100
    write_project(tmp_path, {
        "measures/usage.yml": """\
            logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d,
                        scheme: {type: linear, low: 0, high: 2}}
            exports_30: {type: days_since, entity: usage_events, filter: "event = 'export'",
                         scheme: {type: linear, low: 30, high: 0}}
            """,
        "scorecards/default.yml": """\
            min_coverage: 60
            bands: [{name: red, min: 0}, {name: yellow, min: 50}, {name: green, min: 100}]
            groups:
              usage: {weight: 60, measures: {logins_30: 100}}
              other: {weight: 40, measures: {exports_30: 100}}
            """,
        "data/usage_events.csv": csv_text(
            ["account_id", "user_id", "event", "timestamp"],
            [e for e in EVENTS if e[2] == "login"]),  # never an export: coverage is exactly 60%
    })
    frame = Project.load(tmp_path).run(as_of=AS_OF).to_pandas().set_index("account_id")
    assert frame["coverage"].tolist() == [60.0, 60.0, 60.0]
    assert frame["band"].to_dict() == {"A1": "green", "A2": "yellow", "A3": "red"}
    text = (tmp_path / "scorecards/default.yml").read_text().replace("min_coverage: 60", "min_coverage: 60.1")
    (tmp_path / "scorecards/default.yml").write_text(text)
    frame = Project.load(tmp_path).run(as_of=AS_OF).to_pandas()
    assert set(frame["band"]) == {"insufficient data"}


def test_a_source_exactly_as_old_as_allowed_is_fresh_a_day_more_is_stale(tmp_path: Path) -> None:
    h = DataHealth("usage_events", "x", newest=date(2025, 2, 25), stale_after_days=4)
    assert not h.stale_on(date(2025, 3, 1)) and h.stale_on(date(2025, 3, 2))
    write_project(tmp_path, {"healthscore.yml": """\
        name: mini
        sources:
          accounts: {path: data/accounts.csv}
          usage_events: {path: data/usage_events.csv, stale_after: 4d}
        scorecards: [default]
        """})
    result = Project.load(tmp_path).run(dates=[date(2025, 3, 1), date(2025, 3, 2)])
    frame = result.to_pandas()
    by_day = {str(d): g.set_index("account_id")["m__logins_30"] for d, g in frame.groupby("as_of")}
    assert by_day["2025-03-01"]["A1"] == 2  # newest row 2025-02-25: 4 days old, fresh
    assert by_day["2025-03-02"].isna().all()  # 5 days old: its measures count as missing


# ----------------------------------------------------------------------------- the workflow


def _at(project: Project, day: date, url: str, hour: int = 9) -> Workflow:
    return Workflow(project.config, project.store, url=url,
                    clock=lambda: datetime.combine(day, datetime.min.time()) + timedelta(hours=hour))


def test_an_override_is_active_until_the_day_before_its_expiry(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'wf.db'}"
    wf = _at(project, DAY, url)
    wf.add_user("ada", "admin")
    wf.set_override("A3", actor="ada", reason_code="relationship", note="sponsor renewed",
                    band="green", expires_on=DAY + timedelta(days=10))
    wf.close()
    for day, band, lapsing in ((DAY + timedelta(days=9), "green", 0),
                               (DAY + timedelta(days=10), "red", 1)):
        w = _at(project, day, url)
        try:
            assert w.final("A3")["final_band"] == band
            assert w.scores().set_index("account_id").loc["A3", "band"] == band
            assert len(w.plan().lapse) == lapsing
        finally:
            w.close()


def test_a_closed_cta_cools_down_for_exactly_cooldown_days(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'wf.db'}"
    wf = _at(project, DAY, url, hour=0)  # closed at the first second of the day
    wf.add_user("ada", "admin")
    wf.add_user("lee", "lead", actor="ada")  # the overdue CTAs escalate to a lead
    wf.apply(wf.plan())
    c = next(c for c in wf.ctas(status="open") if c["account_id"] == "A1")
    wf.close_cta(c["id"], "called them", actor="ada")
    wf.close()
    days = project.config.workflow.cooldown_days
    for later, reopens in ((days, False), (days + 1, True)):
        w = _at(project, DAY + timedelta(days=later), url)
        try:
            plan = w.plan()
            assert ("A1" in {o["account_id"] for o in plan.open}) is reopens
            if not reopens:
                assert {"account_id": "A1", "rule": "exporter",
                        "why": f"closed within {days} days"} in plan.skipped
        finally:
            w.close()


def test_a_cta_closes_on_the_first_run_whose_facts_clear_its_condition(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'wf.db'}"
    wf = _at(project, DAY, url)
    wf.add_user("ada", "admin")
    wf.add_user("lee", "lead", actor="ada")  # the overdue CTAs escalate to a lead
    wf.apply(wf.plan())
    assert sorted(c["account_id"] for c in wf.ctas(status="open")) == ["A1", "A2"]
    wf.close()
    # 30 days after 2025-03-23 A1's export (02-21) has left the window; A2's (02-25) has not
    project.run(as_of="2025-03-23", apply_rules=False)
    w = _at(project, date(2025, 3, 24), url)
    try:
        plan = w.plan()
        assert [c["account_id"] for c in plan.close] == ["A1"]
        w.apply(plan)
        assert [c["account_id"] for c in w.ctas(status="open")] == ["A2"]
    finally:
        w.close()


@pytest.mark.parametrize(("share", "rows", "fails"), [(0.5, None, False), (0.49, None, True),
                                                       (1, 4, False), (1, 3, True)])
def test_rejected_rows_exactly_at_the_limit_pass(tmp_path: Path, share: float, rows: int | None,
                                                 fails: bool) -> None:
    from healthscore.errors import DataError

    from .test_sources import BAD_ACCOUNTS  # 4 of its 8 rows are rejected

    limit = f", max_rejected_rows: {rows}" if rows is not None else ""
    write_project(tmp_path, {
        "healthscore.yml": f"""\
            name: mini
            sources:
              accounts: {{path: data/accounts.csv, max_rejected_share: {share}{limit}}}
              usage_events: {{path: data/usage_events.csv}}
            scorecards: [default]
            """,
        "data/accounts.csv": BAD_ACCOUNTS,
    })
    project = Project.load(tmp_path)
    if fails:
        with pytest.raises(DataError, match="more than the allowed"):
            project.run(as_of=AS_OF)
    else:
        assert project.run(as_of=AS_OF).rows == 4


def test_a_row_on_the_as_of_day_counts_and_the_next_day_does_not(tmp_path: Path) -> None:
    events = [("A1", "u1", "login", "2025-03-01 23:59:59"), ("A1", "u2", "login", "2025-03-02 00:00:00"),
              ("A2", "u3", "login", "2025-01-30 00:00:00"), ("A2", "u3", "login", "2025-01-31 00:00:00")]
    write_project(tmp_path, {"data/usage_events.csv": csv_text(
        ["account_id", "user_id", "event", "timestamp"], events)})
    frame = Project.load(tmp_path).run(as_of=AS_OF).to_pandas().set_index("account_id")
    # a 30-day window as of 2025-03-01 holds 2025-01-31 .. 2025-03-01
    assert frame.loc["A1", "m__logins_30"] == 1 and frame.loc["A2", "m__logins_30"] == 1


@pytest.mark.parametrize("higher", [True, False])
def test_percentile_joined_from_counts_equals_the_window_form(higher: bool) -> None:
    """Scoring ranks percentiles from counts per (date, peer group, value) joined back: the same
    numbers as ranking every row, with ties, missing values and a missing peer group."""
    import random

    rng = random.Random(3)
    rows = [{"account_id": f"A{i}", "as_of": date(2025, 1, 1 + i % 3),
             "segment": rng.choice(["SMB", "Mid", None]),
             "v": rng.choice([None, 0.0, 1.0, 1.0, 2.5, float(rng.randint(0, 9))])}
            for i in range(300)]
    t = ibis.memtable(rows, schema={"account_id": "string", "as_of": "date", "segment": "string",
                                    "v": "float64"})
    scheme = specs.PercentileScheme(type="percentile", by="segment", higher_is_better=higher)
    windowed = t.mutate(p=schemes.percentile(scheme, t.v, t)).to_pandas()
    joined = schemes.with_percentile(t, "v", scheme, "p").to_pandas()
    assert list(joined.columns) == ["account_id", "as_of", "segment", "v", "p"]
    a = windowed.set_index("account_id").sort_index()["p"]
    b = joined.set_index("account_id").sort_index()["p"]
    assert (a.isna() == b.isna()).all() and a.isna().any()
    assert (a[a.notna()] == b[b.notna()]).all()  # bit for bit, not approximately
    assert b.notna().sum() > 200
