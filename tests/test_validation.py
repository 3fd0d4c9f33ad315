"""Validation: metrics by hand, the estimators' contract, labels, point-in-time observations,
and the acceptance runs on the demo data and the third-party churnsim data."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import clone

from healthscore.config.load import load_specs
from healthscore.config.resolve import resolve
from healthscore.demo.generate import generate
from healthscore.errors import HealthScoreError
from healthscore.project import Project
from healthscore.templates import write_template
from healthscore.validation import metrics, observations
from healthscore.validation.observations import label
from healthscore.validation.session import review_warnings
from healthscore.validation.suggest import flip_scheme
from healthscore.validation.weights import (
    GradientBoosting,
    SuggestedWeights,
    bootstrap_weights,
    out_of_sample,
    repeated_fits_shared,
    splits,
    time_splits,
)

from .projects import EVENT_COLUMNS, MEASURES_YML, csv_text, write_project
from .test_pipeline import END, _truncated_copy

REPO = Path(__file__).parents[1]
CHURNSIM = REPO / "examples" / "churnsim"
CHURNSIM_DATA = REPO.parent / "shared" / "data" / "churnsim-socialnet7"

# ----------------------------------------------------------------------------- metrics by hand


def test_wilson_interval_matches_the_formula() -> None:
    lo, hi = metrics.wilson(5, 20)  # p = 0.25
    assert lo == pytest.approx(0.1118, abs=1e-4)
    assert hi == pytest.approx(0.4687, abs=1e-4)
    assert metrics.wilson(0, 0) == (None, None)
    assert metrics.wilson(0, 10)[0] == 0.0


def test_auc_lift_and_band_rates_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    risk = np.array([9, 4, 8, 3, 2, 1, 0, 0, 0, 0], dtype=float)
    # pairs (pos, neg): 9 beats all 8; 4 beats 7 of 8 (loses to 8) -> 15/16
    assert metrics.auc(y, risk) == pytest.approx(15 / 16)
    assert metrics.top_decile_lift(y, risk) == pytest.approx(1.0 / 0.2)  # riskiest 1 of 10 churned
    bands = np.array(["red", "red", "red", "yellow", "yellow", "green", "green", "green", "green", "green"])
    rates = metrics.band_rates(y, bands, ["red", "yellow", "green"])
    assert [r["rate"] for r in rates] == [pytest.approx(2 / 3), 0.0, 0.0]
    assert not metrics.monotonic(rates, falling=True)  # 0 -> 0 is not falling
    assert metrics.monotonic([{"rate": 0.3}, {"rate": 0.1}, {"rate": None}, {"rate": 0.05}], True)
    assert metrics.auc(np.zeros(4), np.arange(4.0)) is None


def test_auc_equals_scikit_learns_bit_for_bit_with_ties() -> None:
    """The backtest's own ROC area: the same float as roc_auc_score (a report's numbers and
    the suggestion's choices must not move), ties and a weighted case included."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    for i in range(300):
        n = int(rng.integers(3, 2000))
        y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
        risk = [rng.normal(size=n), rng.integers(0, 7, n).astype(float),
                np.round(rng.normal(size=n) * 50) / 7][i % 3]
        assert metrics.auc(y, risk) == float(roc_auc_score(y, risk))
    weight = rng.uniform(0, 2, n)
    assert metrics.auc(y, risk, weight) == float(roc_auc_score(y, risk, sample_weight=weight))


def test_false_green_and_lead_time_by_hand() -> None:
    y = np.array([1, 1, 1, 0])
    bands = np.array(["green", "red", "yellow", "green"])
    fg = metrics.false_green(y, bands, "green")
    assert (fg["outcomes"], fg["in_band"], fg["rate"]) == (3, 1, pytest.approx(1 / 3))
    d = date(2025, 1, 1)
    history = [
        ("A", d, "yellow"), ("A", d + timedelta(30), "red"), ("A", d + timedelta(60), "red"),
        ("B", d, "red"), ("B", d + timedelta(30), "yellow"),  # recovered: no warning
        ("C", d, "green"),
    ]
    events = {"A": d + timedelta(80), "B": d + timedelta(40)}
    lead = metrics.lead_times(history, events, "red")
    assert lead["accounts"] == 2 and lead["warned"] == 1
    assert lead["median_days"] == 50.0  # A turned red on day 30, churned on day 80


def test_labels_count_outcomes_in_lead_plus_horizon_only() -> None:
    frame = pd.DataFrame({"account_id": ["A", "A", "B", "C"],
                          "as_of": [date(2025, 1, 31), date(2025, 3, 31), date(2025, 1, 31),
                                    date(2025, 1, 31)]})
    events = pd.DataFrame({"account_id": ["A", "B"],
                           "event_date": [date(2025, 4, 30), date(2025, 2, 10)]})
    out = label(frame, events, horizon_days=30, lead_days=10)
    # A@01-31: window (02-10, 03-12] misses 04-30; A@03-31: (04-10, 05-10] holds it;
    # B@01-31: 02-10 is the window's open end, so not inside; C: nothing
    assert out["label"].tolist() == [0, 1, 0, 0]
    assert out["event_date"].tolist()[1] == date(2025, 4, 30)


# ----------------------------------------------------------------------------- estimators


def test_time_splits_never_train_on_later_or_unfinished_observations() -> None:
    days = np.array([date(2025, 1, 1) + timedelta(days=7 * i) for i in range(20) for _ in range(3)])
    splits = list(time_splits(days, folds=4, gap_days=28))
    assert len(splits) == 4
    for train, test in splits:
        assert max(days[train]) + timedelta(days=28) <= min(days[test])


def test_account_folds_never_put_an_account_in_train_and_test() -> None:
    rng = np.random.default_rng(1)
    accounts = rng.choice([f"A{i}" for i in range(60)], 500)
    days = np.array([date(2025, 3, 1)] * 500)  # one as-of date: no time-ordered fold
    y = (rng.uniform(size=500) < 0.3).astype(int)
    folds, kind = splits(days, accounts, y, folds=4, gap_days=90, seed=0)
    assert kind == "grouped by account" and len(folds) == 4
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(500))
    for train, test in folds:
        assert not set(accounts[train]) & set(accounts[test])
    again, _ = splits(days, accounts, y, folds=4, gap_days=90, seed=0)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
    weekly = np.array([date(2025, 1, 5) + timedelta(days=7 * (i % 30)) for i in range(500)])
    assert splits(weekly, accounts, y, folds=4, gap_days=28)[1] == "time-ordered"


def test_suggested_weights_follow_the_estimator_contract_and_flip_a_backwards_measure() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    good, backwards, noise = (rng.uniform(0, 100, n) for _ in range(3))
    risk = -0.05 * good + 0.04 * backwards
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(risk + 0.5)))).astype(int)
    X = np.column_stack([good, backwards, noise])
    est = SuggestedWeights()
    assert clone(est).get_params() == {"good_outcome": False, "gap_days": 0, "C": None,
                                       "random_state": 0}
    assert est.fit(X, y) is est
    assert not hasattr(SuggestedWeights(), "weights_")
    assert est.weights_.sum() == pytest.approx(100)
    assert (est.weights_ >= 0).all()
    assert est.flipped_.tolist()[:2] == [False, True]
    assert est.weights_[2] < 5  # noise gets (almost) nothing
    health = est.health_score(X)
    assert health.min() >= 0 and health.max() <= 100


def test_weights_refitted_on_account_resamples_are_seeded_and_show_a_collinear_pair() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    strong = rng.uniform(0, 100, n)
    twin = np.clip(strong + rng.normal(0, 2, n), 0, 100)  # the same signal twice
    other = rng.uniform(0, 100, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(0.05 * (strong - 50) + 0.03 * (other - 50)))).astype(int)
    X = np.column_stack([strong, twin, other])
    accounts = np.arange(n) // 3
    fitted = SuggestedWeights(C=0.1).fit(X, y)
    w, rev = bootstrap_weights(fitted, X, y, accounts, 30, seed=4)
    again, _ = bootstrap_weights(fitted, X, y, accounts, 30, seed=4)
    assert w.shape == (30, 3) and (w == again).all() and not rev.any()
    assert not (w == bootstrap_weights(fitted, X, y, accounts, 30, seed=5)[0]).all()
    spread = np.percentile(w, 97.5, axis=0) - np.percentile(w, 2.5, axis=0)
    assert spread[0] > 3 * spread[2]  # the twins trade weight between them; the other does not


def test_a_shared_fit_is_the_first_one_only_for_the_same_parameters_and_data() -> None:
    from healthscore.validation.weights import once

    fitted: list[int] = []

    def fit(k: int) -> int:
        fitted.append(k)
        return k

    X, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    other_x = X.copy()
    other_x[2, 1] = 5.5
    with repeated_fits_shared():
        assert once("C 1", (X, y), lambda: fit(1)) == 1
        assert once("C 1", (X.copy(), y.copy()), lambda: fit(2)) == 1  # the same content
        assert once("C 2", (X, y), lambda: fit(3)) == 3  # another parameter
        assert once("C 1", (X, 1 - y), lambda: fit(4)) == 4  # other labels
        assert once("C 1", (other_x, y), lambda: fit(5)) == 5  # another value
        assert once("C 1", (X.reshape(2, 3), y), lambda: fit(6)) == 6  # another shape
    assert once("C 1", (X, y), lambda: fit(7)) == 7  # outside: fitted every time
    assert fitted == [1, 3, 4, 5, 6, 7]
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 100, (2000, 2))
    y = (rng.uniform(size=2000) < np.where(X[:, 0] < 20, 0.3, 0.05)).astype(int)
    with repeated_fits_shared():  # the estimators' own fits: the same C on other labels is new
        first = SuggestedWeights(C=0.1).fit(X, y)
        reversed_labels = SuggestedWeights(C=0.1).fit(X, 1 - y)
        again = SuggestedWeights(C=0.1).fit(X, y)
    assert not first.flipped_[0] and reversed_labels.flipped_[0]
    assert (again.weights_ == first.weights_).all()


def test_gradient_boosting_follows_the_contract_and_is_reproducible() -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(800, 3))
    X[rng.uniform(size=800) < 0.2, 1] = np.nan  # missing values are the trees' business
    X[:, 2] = np.nan  # and a measure with no value at all is left out
    y = (rng.uniform(size=800) < 1 / (1 + np.exp(-2 * X[:, 0] ** 2 + 1))).astype(int)  # U-shaped
    est = GradientBoosting(random_state=3)
    assert clone(est).get_params()["random_state"] == 3 and not hasattr(est, "model_")
    assert est.fit(X, y) is est
    again = clone(est).fit(X, y)
    assert (est.decision_function(X) == again.decision_function(X)).all()
    assert metrics.auc(y, est.decision_function(X)) > 0.75  # an additive linear score cannot


def test_black_box_gap_says_how_far_the_additive_score_is_in_one_sentence() -> None:
    from healthscore.validation.backtest import GBM, black_box_gap

    comp = [{"model": "configured scorecard", "auc": 0.70}, {"model": "suggested weights", "auc": 0.74},
            {"model": "L1 logistic regression (measure values)", "auc": 0.72}, {"model": GBM, "auc": 0.7512}]
    assert black_box_gap(comp) == (
        "The suggested additive score (AUC 0.740) is 0.011 below the best black box, the "
        "gradient-boosted trees (measure values) (0.751); the configured scorecard (0.700) is "
        "0.051 below it.")
    comp[3]["auc"] = None
    assert black_box_gap(comp).startswith(  # type: ignore[union-attr]
        "The suggested additive score (AUC 0.740) is 0.020 above the best black box, the L1")


def test_flipping_a_scheme_reverses_every_kind() -> None:
    from healthscore.config import specs

    assert flip_scheme(specs.LinearScheme(type="linear", low=0, high=10))["low"] == 10
    assert flip_scheme(specs.PercentileScheme(type="percentile"))["higher_is_better"] is False
    assert flip_scheme(specs.ThresholdsScheme(type="thresholds", cuts=[1], scores=[0, 80]))[
        "scores"] == [100, 20]
    assert flip_scheme(specs.BooleanScheme(type="boolean"))["if_true"] == 0
    assert flip_scheme(specs.CategoryScheme(type="category", map={"a": 30}, default=10))[
        "map"] == {"a": 70}


# ----------------------------------------------------------------------------- subscriptions

SUBS = [  # (account_id, start_date, end_date, mrr)
    ("A1", "2024-01-01", "2024-02-01", 10), ("A1", "2024-02-01", "2024-03-01", 10),
    ("A1", "2024-03-05", "2024-04-01", 20),  # a 4-day gap: a late renewal, with expansion
    ("A2", "2024-01-15", "2024-02-15", 10),  # ends, nothing follows: churn on 02-15
    ("A3", "2024-01-01", "2024-02-01", 10), ("A3", "2024-02-01", "2024-05-01", 10),
]


def _subscription_project(root: Path) -> Path:
    return write_project(root, {
        "healthscore.yml": "name: subs\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  subscriptions: {path: data/subs.csv}\nscorecards: [default]\n",
        "measures/usage.yml": "mrr_now: {type: sum, entity: subscriptions, column: mrr, mode: open, "
                              "scheme: {type: linear, low: 0, high: 20}}\n",
        "scorecards/default.yml": "groups: {revenue: {weight: 100, measures: {mrr_now: 100}}}\n",
        "data/accounts.csv": csv_text(["account_id", "name"], [("A1", "x"), ("A2", "y"), ("A3", "z")]),
        "data/subs.csv": csv_text(["account_id", "start_date", "end_date", "mrr"], SUBS),
        "data/usage_events.csv": None,
    }, base=False)


def test_subscriptions_give_start_and_churn_dates_and_outcomes(tmp_path: Path) -> None:
    project = Project.load(_subscription_project(tmp_path))
    scores = project.run(dates=[date(2024, 1, 10), date(2024, 3, 3), date(2024, 3, 10)]).to_pandas()
    seen = {(r.account_id, r.as_of.isoformat()): r.m__mrr_now for r in scores.itertuples()}
    # A2 starts 01-15 (not there on 01-10) and churned on 02-15 (gone by March);
    # A1 is still a customer in its 4-day gap (grace 7 days), with no open period
    assert seen == {("A1", "2024-01-10"): 10, ("A3", "2024-01-10"): 10,
                    ("A1", "2024-03-03"): 0, ("A3", "2024-03-03"): 10,
                    ("A1", "2024-03-10"): 20, ("A3", "2024-03-10"): 10}
    config = project.config
    from healthscore import pipeline

    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        assert loaded.observed_until == date(2024, 3, 5)  # the newest period start
        churn = observations.outcome_events(loaded, "churn")
        renewals = observations.outcome_events(loaded, "renewal")
        expansions = observations.outcome_events(loaded, "expansion")
    finally:
        engine.close()
    # A1 ends 04-01 and A3 05-01, after renewals stop being known (03-05): not churns yet
    assert churn.values.tolist() == [["A2", date(2024, 2, 15)]]
    assert renewals.values.tolist() == [["A1", date(2024, 2, 1)], ["A1", date(2024, 3, 5)],
                                        ["A3", date(2024, 2, 1)]]
    assert expansions.values.tolist() == [["A1", date(2024, 3, 5)]]


# ----------------------------------------------------------------------------- point in time


def test_observations_never_use_data_after_their_as_of_date(
        small_validation: tuple, kept_small_scores: dict, monkeypatch: pytest.MonkeyPatch,
        demo_data: Path, tmp_path: Path) -> None:
    """The backtest's observation at D (built from all the data) equals the one built from the
    data as it stood on D: nothing after D reaches a measure, a score or the active set."""
    full, first = small_validation
    _scores_kept_in(kept_small_scores, monkeypatch)  # the 15 month ends its backtest scored
    obs = observations.build(full.config, [date.fromisoformat(d) for d in first.result["dates"]],
                             "churn", 90, 0, END, lambda _: None)
    assert len(kept_small_scores) == 1
    cols = [c for c in obs.frame.columns if c.startswith(("m__", "s__", "g__"))]
    assert len(cols) > 30
    for day in [date(2025, 6, 30), date(2025, 12, 31)]:
        _truncated_copy(demo_data, tmp_path / f"cut-{day}" / "data", day)
        cut = Project.load(_demo_project(tmp_path / f"cut-{day}" / "p", tmp_path / f"cut-{day}" / "data"))
        alone = observations.build(cut.config, [day], "churn", 90, 0, END, lambda _: None).frame
        a = obs.frame[obs.frame.as_of == day].set_index(["account_id", "scorecard"]).sort_index()
        b = alone.set_index(["account_id", "scorecard"]).sort_index()
        assert list(a.index) == list(b.index)
        for col in [*cols, "score", "band"]:
            same = (a[col] == b[col]) | (a[col].isna() & b[col].isna())
            if a[col].dtype.kind == "f":
                same |= (a[col] - b[col]).abs() < 1e-9
            assert same.all(), col
        # and the labels do look ahead: churners of the next 90 days are marked
        future = obs.events[(obs.events.event_date > day)
                            & (obs.events.event_date <= day + timedelta(days=90))]
        assert set(a[a.label == 1].index.get_level_values(0)) == set(future.account_id) & set(
            a.index.get_level_values(0))


NOW = datetime(2026, 11, 2, 8, 30)


@pytest.fixture(scope="module")
def kept_small_scores() -> dict[tuple[int, tuple[date, ...]], pd.DataFrame]:
    """The scores the small demo's backtest computed: (id of the config, as-of dates) -> frame."""
    return {}


@pytest.fixture(scope="module")
def small_validation(demo_data: Path, tmp_path_factory: pytest.TempPathFactory,
                     kept_small_scores: dict[tuple[int, tuple[date, ...]], pd.DataFrame],
                     ) -> tuple[Project, Any]:
    """The 150-account demo and its validation over 16 month ends (one without a complete
    outcome window); its scores are kept in ``kept_small_scores``."""
    project = Project.load(_demo_project(tmp_path_factory.mktemp("small-validate") / "p", demo_data))
    with pytest.MonkeyPatch.context() as patch:
        _scores_kept_in(kept_small_scores, patch)
        result = project.validate(start="2025-04-30", end="2026-07-31", horizon="90d", now=NOW)
    return project, result


def test_two_runs_write_byte_identical_json_report_and_suggestion(small_validation: tuple,
                                                                tmp_path: Path) -> None:
    project, first = small_validation
    again = project.validate(start="2025-04-30", end="2026-07-31", horizon="90d", now=NOW)
    runs = []
    for i, v in enumerate((first, again)):
        html, js = v.write(tmp_path / f"run{i}")
        runs.append((js.read_bytes(), html.read_bytes(), v.suggestion_yaml().encode()))
    assert runs[0] == runs[1]
    data = json.loads(runs[0][0])
    assert data["generated_at"] == "2026-11-02T08:30:00"
    w = data["weights"]
    assert w["resamples"] == 50
    for m in w["measures"]:  # every weight with its spread over the account bootstrap
        lo, hi = m["weight_ci"]
        assert 0 <= lo <= hi <= 100 and 0 <= m["kept_share"] <= 1 and 0 <= m["reversed_share"] <= 1
    assert any(m["weight_ci"][1] > m["weight_ci"][0] for m in w["measures"])


def test_too_few_outcomes_give_a_note_instead_of_a_bare_auc(small_validation: tuple,
                                                            tmp_path: Path) -> None:
    from rich.console import Console

    from healthscore.cli import render

    _, v = small_validation
    data = v.to_json()
    seg, cards = data["segments"], data["scorecards"]
    assert [(n, m["outcomes"]) for n, m in seg.items()] == [("Enterprise", 0), ("Mid-Market", 12),
                                                            ("SMB", 48)]
    few = "too few outcomes to judge (12 churn, at least 20 needed)"
    assert seg["Mid-Market"]["auc_note"] == few
    assert seg["Enterprise"]["auc_note"] == "too few outcomes to judge (0 churn, at least 20 needed)"
    assert cards["enterprise"]["auc_note"] == seg["Enterprise"]["auc_note"]
    assert data["alarm"] is None  # nothing too good here
    for m in [seg["SMB"], cards["default"], data["overall"]]:
        assert m["auc_note"] is None and m["auc_ci"][0] < m["auc"] < m["auc_ci"][1]
    assert seg["Mid-Market"]["auc_ci"][0] < seg["Mid-Market"]["auc"]  # kept in the JSON
    html = (v.write(tmp_path)[0]).read_text()
    smb = seg["SMB"]
    assert f'<td><span class="flag">{few}</span></td>' in html
    assert f"<td>{smb['auc']:.3f} ({smb['auc_ci'][0]:.2f}-{smb['auc_ci'][1]:.2f})</td>" in html
    console = Console(record=True, width=200)
    render.validation(console, data)
    lines = console.export_text().splitlines()
    assert lines[1] == f"{data['question']['question']} {data['question']['answer']}"  # seed 000's
    assert any("Mid-Market" in line and few in line for line in lines)
    assert not any("Mid-Market" in line and f"{seg['Mid-Market']['auc']:.3f}" in line for line in lines)


def test_black_boxes_sit_beside_the_additive_scores_on_the_same_folds(small_validation: tuple,
                                                                        tmp_path: Path) -> None:
    from rich.console import Console

    from healthscore.cli import render
    from healthscore.validation.backtest import GBM, SUGGESTED

    _, v = small_validation
    data = v.to_json()
    comp = {c["model"]: c for c in data["weights"]["comparison"]}
    assert list(comp) == ["configured scorecard", SUGGESTED, "suggested weights",
                          "suggested schemes and weights", "best single measure",
                          "L1 logistic regression (measure values)", GBM]
    folds = [(f["test_from"], f["test"]) for f in comp["suggested weights"]["folds"]]
    for c in comp.values():
        assert c["observations"] == comp["configured scorecard"]["observations"] > 500
        assert [(f["test_from"], f["test"]) for f in c["folds"]] == folds
        assert c["auc_ci"][0] < c["auc"] < c["auc_ci"][1] and c["top_decile_lift"] > 0
    sentence = data["weights"]["black_box_gap"]
    best = max(comp[GBM]["auc"], comp["L1 logistic regression (measure values)"]["auc"])
    assert sentence.startswith(
        f"The suggested additive score (AUC {comp[SUGGESTED]['auc']:.3f}) is ")
    assert f"({best:.3f}); the configured scorecard" in sentence
    assert f"<p>{sentence}</p>" in v.write(tmp_path)[0].read_text()
    console = Console(record=True, width=300)
    render.validation(console, data)
    assert sentence in console.export_text()


def test_too_few_outcomes_and_the_fast_bootstrap_by_hand() -> None:
    from sklearn.metrics import roc_auc_score

    assert metrics.too_few_outcomes(np.array([1] * 19 + [0] * 30), "churn") == (
        "too few outcomes to judge (19 churn, at least 20 needed)")
    assert metrics.too_few_outcomes(np.array([1] * 30 + [0] * 5), "renewal") == (
        "too few outcomes to judge (5 without renewal, at least 20 needed)")
    assert metrics.too_few_outcomes(np.array([1] * 20 + [0] * 20), "churn") is None
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=600) < 0.2).astype(int)
    risk = np.round(rng.normal(size=600) + y, 1)  # ties count one half
    accounts = rng.integers(0, 150, 600)
    fast = metrics.bootstrap_aucs(y, risk, accounts, 40, seed=9)
    draw = np.random.default_rng(9)
    ids, inverse = np.unique(accounts, return_inverse=True)
    for value in fast[:5]:
        w = np.bincount(draw.integers(0, len(ids), len(ids)), minlength=len(ids))[inverse]
        assert value == pytest.approx(roc_auc_score(y[w > 0], risk[w > 0], sample_weight=w[w > 0]))


def _snapshot_project(root: Path, accounts: int = 400, seed: int = 0, leak: bool = False) -> Path:
    """One as-of date (2025-03-01): logins in February say who churns by the end of May. Two
    category measures: segment (noise) and industry, which with ``leak`` reads 'closing' for
    every account about to churn."""
    rng = np.random.default_rng(seed)
    rows, events = [], []
    for i in range(accounts):
        churns = rng.uniform() < 0.25
        churn = date(2025, 3, 2) + timedelta(days=int(rng.integers(0, 88))) if churns else None
        industry = "closing" if leak and churns else rng.choice(["retail", "media", "health"])
        rows.append((f"A{i:03d}", rng.choice(["SMB", "Enterprise"]), industry, "2024-01-01", churn))
        for k in range(int(rng.poisson(3 if churns else 7))):
            events.append((f"A{i:03d}", "u1", "login", f"2025-02-{1 + k % 27:02d} 09:00:00"))
        for k in range(int(rng.poisson(2))):
            events.append((f"A{i:03d}", "u1", "export", f"2025-02-{1 + k % 27:02d} 10:00:00"))
    category = "{type: category, map: {SMB: 40, Enterprise: 80, retail: 60}, default: 50}"
    return write_project(root, {
        "healthscore.yml": "name: snapshot\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv}\nscorecards: [default]\n"
                           "validation: {observed_until: 2025-06-30, bootstrap: 100}\n",
        "measures/usage.yml": MEASURES_YML
        + "exports_30: {type: count, entity: usage_events, filter: \"event = 'export'\", window: 30d,"
          " scheme: {type: linear, low: 0, high: 4}}\n"
        + f"segment_kind: {{type: attribute, column: segment, scheme: {category}}}\n"
        + f"industry_kind: {{type: attribute, column: industry, scheme: {category}}}\n",
        "scorecards/default.yml": (
            "groups:\n  usage: {weight: 80, measures: {logins_30: 50, exports_30: 50}}\n"
            "  profile: {weight: 20, measures: {segment_kind: 50, industry_kind: 50}}\n"),
        "data/accounts.csv": csv_text(["account_id", "segment", "industry", "start_date", "churn_date"],
                                      rows),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, events),
    })


def _two_measure_project(root: Path, churn_rate: Any, accounts: int = 800, seed: int = 3) -> Path:
    """One as-of date (2025-03-01); each account logs in 0-12 times and exports 0-8 times in
    February, and churns by the end of May with probability ``churn_rate(logins, exports)``.
    The configured schemes saturate: logins linear 0-2, exports linear 0-4."""
    rng = np.random.default_rng(seed)
    rows, events = [], []
    for i in range(accounts):
        logins, exports = int(rng.integers(0, 13)), int(rng.integers(0, 9))
        churns = rng.uniform() < churn_rate(logins, exports)
        churn = date(2025, 3, 2) + timedelta(days=int(rng.integers(0, 88))) if churns else None
        rows.append((f"A{i:03d}", "SMB", "2024-01-01", churn))
        events += [(f"A{i:03d}", "u1", "login", f"2025-02-{1 + k:02d} 09:00:00") for k in range(logins)]
        events += [(f"A{i:03d}", "u1", "export", f"2025-02-{1 + k:02d} 10:00:00") for k in range(exports)]
    return write_project(root, {
        "healthscore.yml": "name: two\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv}\nscorecards: [default]\n"
                           "validation: {observed_until: 2025-06-30, bootstrap: 100}\n",
        "measures/usage.yml": MEASURES_YML
        + "exports_30: {type: count, entity: usage_events, filter: \"event = 'export'\", window: 30d,"
          " scheme: {type: linear, low: 0, high: 4}}\n",
        "scorecards/default.yml": "groups:\n  usage: {weight: 100, measures: "
                                  "{logins_30: 50, exports_30: 50}}\n",
        "data/accounts.csv": csv_text(["account_id", "segment", "start_date", "churn_date"], rows),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, events),
    })


def _offer_run(root: Path) -> tuple[Any, dict[str, Any], dict[str, float]]:
    v = Project.load(root).validate(start="2025-03-01", end="2025-03-01", horizon="90d", now=NOW)
    data = v.to_json()
    return v, data, {c["model"]: c["auc"] for c in data["weights"]["comparison"]}


def test_an_additive_suggestion_that_reshapes_a_far_off_cut_is_offered(tmp_path: Path) -> None:
    from healthscore.validation.backtest import GBM, L1, SUGGESTED

    # churn falls at 6 logins (the configured scheme stops looking at 2) and, less, with exports
    v, data, comp = _offer_run(_two_measure_project(
        tmp_path / "p", lambda logins, exports: (0.45 if logins < 6 else 0.08) + 0.02 * (8 - exports)))
    s = data["weights"]["schemes"]
    assert s["choice"] == "re-shape and re-weight"
    assert comp[SUGGESTED] - comp["configured scorecard"] > 0.1  # re-shaped, it gains out of sample
    assert comp[SUGGESTED] >= comp[L1] and comp[SUGGESTED] >= comp[GBM] - 0.01
    assert s["offered"] is True and s["failed"] == [] and s["bands_monotonic"] is True
    assert s["why"].startswith(f"Suggested scorecard offered: out of sample it ranks "
                               f"{comp[SUGGESTED] - comp['configured scorecard']:+.3f} AUC better")
    cuts = s["measures"]["logins_30"]["scheme"]["cuts"]
    assert any(5 <= c <= 6 for c in cuts)  # the learned cut where churn falls
    assert "# Suggested scorecard offered" in v.suggestion_yaml()
    html = v.write(tmp_path / "report")[0].read_text()
    assert f'<p class="ok">{escape(s["why"])}</p>' in html
    assert f"Chosen on later dates than fitted: {escape(s['chosen'])} (AUC " in html


def test_the_suggestion_is_withheld_when_an_interaction_lets_the_black_box_win(tmp_path: Path) -> None:
    from healthscore.validation.backtest import GBM, L1, SUGGESTED

    # churn when exactly one of the two is low: no additive monotone score can rank that
    v, data, comp = _offer_run(_two_measure_project(
        tmp_path / "p", lambda logins, exports: 0.5 if (logins < 6) != (exports < 4) else 0.05))
    s = data["weights"]["schemes"]
    assert comp[GBM] - comp[SUGGESTED] > 0.1
    assert s["offered"] is False and "gbm" in s["failed"]
    gbm = (f"{comp[SUGGESTED]:.3f} out of sample is {comp[GBM] - comp[SUGGESTED]:.3f} below the "
           f"gradient-boosted model ({comp[GBM]:.3f}): the data has interactions or shapes an "
           f"additive monotone scorecard cannot express")
    assert s["why"].startswith("Suggested scorecard withheld: ") and gbm in s["why"]
    assert s["why"] == "Suggested scorecard withheld: " + "; ".join(
        {"configured": f"{comp[SUGGESTED]:.3f} out of sample is "
                       f"{comp[SUGGESTED] - comp['configured scorecard']:+.3f} against the "
                       f"configured scorecard ({comp['configured scorecard']:.3f}; 95% CI of the "
                       f"gain {s['gain_ci'][0]:+.3f} to {s['gain_ci'][1]:+.3f} over 100 resamples "
                       f"of accounts): not clearly better, keep the configured scorecard",
         "l1": f"{comp[SUGGESTED]:.3f} out of sample is {comp[L1] - comp[SUGGESTED]:.3f} below the "
               f"L1 logistic regression ({comp[L1]:.3f}): a plain linear model of the raw values "
               f"ranks better",
         "gbm": gbm,
         "bands": "the churn rate does not fall band by band with it"}[k] for k in s["failed"]) + "."
    text = v.suggestion_yaml()
    assert f"# {s['why']}" in text and "# Written because it was asked for" in text


@pytest.fixture(scope="module")
def snapshot_validation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The snapshot project (400 accounts, no leak) and its validation on 2025-03-01, built once
    for the tests that read them. Copy the project folder to change it."""
    root = _snapshot_project(tmp_path_factory.mktemp("snapshot") / "p")
    return root, Project.load(root).validate(start="2025-03-01", end="2025-03-01", horizon="90d",
                                             now=NOW)


def test_a_snapshot_gets_a_full_out_of_sample_section_from_account_folds(
        snapshot_validation: tuple, tmp_path: Path) -> None:
    from healthscore.validation.backtest import GBM

    _, v = snapshot_validation
    data = v.to_json()
    assert data["dates"] == ["2025-03-01"] and data["overall"]["observations"] == 400
    w = data["weights"]
    assert w["splits"] == "grouped by account"
    assert w["note"].startswith(
        "too few as-of dates for 4 time-ordered folds with a 90-day outcome window between "
        "training and testing: the out-of-sample figures come from 4 folds grouped by account "
        "instead (an account is never in both the training and the test part of a fold).")
    comp = {c["model"]: c for c in w["comparison"]}
    assert len(comp) == 7 and GBM in comp
    for c in comp.values():
        assert c["observations"] == 400 and len(c["folds"]) == 4
        assert c["auc_ci"][0] < c["auc"] < c["auc_ci"][1] and c["top_decile_lift"] > 1
    # the configured linear 0-2 logins saturates: only the black boxes see the whole range
    assert comp[GBM]["auc"] > 0.85 and comp["configured scorecard"]["auc"] < 0.6
    assert w["black_box_gap"].startswith("The suggested additive score (AUC ")
    # the scheme of logins is so badly shaped that the learned schemes jump far above it
    assert data["alarm"]["measures"] == ["logins_30"]
    assert data["alarm"]["rankings"] == [  # not the black boxes
        "suggested scorecard (chosen on later dates)", "suggested schemes and weights"]
    conf, mine = comp["configured scorecard"]["auc"], comp["suggested schemes and weights"]["auc"]
    assert (f"suggested schemes and weights {mine:.3f} ({mine - conf:.2f} above the configured "
            f"scorecard's {conf:.3f})") in data["alarm"]["why"]
    html = v.write(tmp_path / "report")[0].read_text()
    assert f'<p class="flag">{escape(data["alarm"]["why"])}</p>' in html
    assert "Out of sample, same splits (grouped by account folds)" in html
    assert "Out-of-sample figures come from folds grouped by account" in html


def test_category_measures_get_coverage_rates_an_auc_a_leak_flag_and_one_hot_baselines(
        snapshot_validation: tuple, tmp_path: Path) -> None:
    from healthscore.validation.backtest import GBM

    clean = snapshot_validation[1].to_json()
    data = Project.load(_snapshot_project(tmp_path / "leak", leak=True)).validate(
        start="2025-03-01", end="2025-03-01", horizon="90d", now=NOW).to_json()
    for run in (clean, data):
        seg = run["signals"]["segment_kind"]
        assert seg["coverage"] == 1.0 and seg["kind"] == "category"
        assert not {f["flag"] for f in seg["flags"]} & {"low_coverage", "leaky"}
        assert {c["category"] for c in seg["categories"]} == {"SMB", "Enterprise"}
        assert sum(c["observations"] for c in seg["categories"]) == 400
        assert 0.35 < seg["auc"] < 0.65  # noise
    leak = data["signals"]["industry_kind"]
    closing = next(c for c in leak["categories"] if c["category"] == "closing")
    assert closing["rate"] == 1.0 and closing["outcomes"] == data["overall"]["outcomes"]
    assert leak["coverage"] == 1.0 and leak["auc"] > 0.95
    flags = [f["flag"] + ": " + f["why"] for f in leak["flags"]]
    assert len(flags) == 1 and flags[0].startswith("leaky: separates the outcome almost perfectly")
    assert not {f["flag"] for f in clean["signals"]["industry_kind"]["flags"]} & {"leaky"}
    # the black boxes see the categories (one-hot), so they find the leak too
    comp = {c["model"]: c["auc"] for c in data["weights"]["comparison"]}
    assert comp["L1 logistic regression (measure values)"] > 0.97 and comp[GBM] > 0.97
    # and so the alarm goes off, naming the leaky measure first
    alarm = data["alarm"]
    assert alarm["measures"] == ["industry_kind", "logins_30"]
    assert alarm["why"].startswith("Too good to be true? Out of sample: ")
    assert f"{GBM} {comp[GBM]:.3f} (above 0.95)" in alarm["why"]
    assert ("check first industry_kind (AUC 1.00 on its own, flagged leaky), logins_30 (AUC "
            in alarm["why"])
    coef = next(m for m in data["weights"]["measures"] if m["measure"] == "industry_kind")
    assert set(coef["l1_coefficients"]) == {"closing", "retail", "media", "health"}
    assert coef["l1_coefficient"] == coef["l1_coefficients"]["closing"] > 0


NOISE = [f"noise_{k}" for k in range(8)]


def _noise_config(root: Path) -> Any:
    measures = "".join(f"{n}: {{type: count, entity: usage_events, filter: \"event = '{n}'\", "
                       f"window: 30d, scheme: {{type: linear, low: 0, high: 10}}}}\n" for n in NOISE)
    weights = ", ".join(f"{n}: {10 + 5 * (k % 2)}" for k, n in enumerate(NOISE))
    root = write_project(root, {"measures/usage.yml": measures,
                                "scorecards/default.yml": f"groups: {{usage: {{weight: 100, measures: "
                                                          f"{{{weights}}}}}}}\n"})
    return resolve(load_specs(root))


def _noise_frame(seed: int, accounts: int = 500, dates: int = 6) -> pd.DataFrame:
    """Observations in the shape validate builds them, with no signal at all: each account's
    measure values and its churn are drawn independently."""
    rng = np.random.default_rng(seed)
    n = accounts * dates
    frame = pd.DataFrame({
        "account_id": np.repeat([f"A{i:03d}" for i in range(accounts)], dates),
        "as_of": np.tile([date(2025, 1, 31) + timedelta(days=30 * k) for k in range(dates)], accounts),
        "label": (rng.uniform(size=n) < 0.06).astype(int),
    })
    level = np.repeat(rng.gamma(2.0, 2.0, (accounts, len(NOISE))), dates, axis=0)
    for j, name in enumerate(NOISE):  # per-account levels: repeated observations, as in life
        frame[f"m__{name}"] = rng.poisson(level[:, j]).astype(float)
        frame[f"s__{name}"] = np.clip(frame[f"m__{name}"] * 10, 0, 100)
    frame["score"] = frame[[f"s__{n}" for n in NOISE]].mean(axis=1)
    return frame


def test_contradicts_fires_on_no_measure_of_pure_noise_in_20_seeded_runs(tmp_path: Path) -> None:
    from healthscore.validation import signals
    from healthscore.validation.backtest import Options, flag_reversals, suggest_weights

    config = _noise_config(tmp_path)
    sc = config.scorecards[0]
    flagged, reversed_somewhere = {}, 0
    for seed in range(20):
        frame = _noise_frame(seed)
        options = Options(dates=[], horizon_days=30, seed=seed, bootstrap=200)
        found = signals.discover(frame, sc, config.measures, False, bootstrap=200, seed=seed)
        weights = suggest_weights(frame, sc, options)
        flag_reversals(found, weights)
        reversed_somewhere += sum(m["flipped"] for m in weights["measures"])
        flagged[seed] = [n for n, info in found.items()
                         if any(f["flag"] == "contradicts" for f in info["flags"])]
    assert flagged == {seed: [] for seed in range(20)}
    assert reversed_somewhere > 0  # the fits do reverse noise now and then: the test is what stops it


def _panel(accounts: int = 300, months: int = 8, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Monthly observations of two measures; churn is likely below 20 on the first (whose
    configured score saturates at 5) and above 70 on the second. X as SuggestedScorecard reads it."""
    rng = np.random.default_rng(seed)
    acc = np.repeat(np.arange(accounts), months)
    dates = np.array([date(2025, 1, 1) + timedelta(days=30 * k) for k in range(months)] * accounts)
    x1, x2 = rng.uniform(0, 100, len(acc)), rng.uniform(0, 100, len(acc))
    y = (rng.uniform(size=len(acc)) < np.where(x1 < 20, 0.25, 0.04) + np.where(x2 > 70, 0.05, 0)
         ).astype(int)
    s1, s2 = np.clip(x1 / 5 * 100, 0, 100), 100 - x2
    return np.column_stack([x1, x2, s1, s2, (s1 + s2) / 2]), y, dates, acc


def test_the_suggested_scorecard_chooses_on_later_dates_and_never_sees_the_test_fold() -> None:
    from healthscore.validation.choose import RESHAPE, SuggestedScorecard

    X, y, dates, acc = _panel()
    model = SuggestedScorecard(gap_days=30).fit(X, y, dates=dates, groups=acc)
    assert model.choice_ == RESHAPE and any(abs(c - 20) < 3 for c in model.shapes_[0]["cuts"])
    assert model.inner_auc_ == max(model.inner_aucs_.values())
    assert model.inner_aucs_["keep the configured scorecard"] < model.inner_auc_ - 0.1
    folds, _ = splits(dates, acc, y, 3, 30)
    idx, risk, _ = out_of_sample(SuggestedScorecard(gap_days=30), X, y, dates, acc, folds)
    assert metrics.auc(y[idx], risk) > metrics.auc(y, -X[:, 4]) + 0.1  # re-shaped, it gains
    # other outcomes on the last fold's test dates change nothing chosen or predicted there
    train, test = folds[-1]
    shuffled = y.copy()
    shuffled[test] = np.random.default_rng(1).permutation(y[test])
    with repeated_fits_shared():  # as in a backtest: a fit on the same training data is done once
        idx2, risk2, _ = out_of_sample(SuggestedScorecard(gap_days=30), X, shuffled, dates, acc, folds)
        _, again, _ = out_of_sample(SuggestedScorecard(gap_days=30), X, y, dates, acc, folds)
    assert np.array_equal(idx2, idx) and np.array_equal(risk2, risk)
    assert np.array_equal(again, risk)  # its fits taken from the run before: the same predictions
    assert max(dates[train]) < min(dates[test])


def test_a_learned_shape_is_a_monotone_thresholds_scheme_with_the_cut_where_the_risk_moves() -> None:
    from healthscore.validation.shapes import apply_shape, learn_shape

    rng = np.random.default_rng(4)
    x = rng.uniform(0, 100, 5000)
    y = (rng.uniform(size=5000) < np.where(x < 20, 0.3, 0.05)).astype(int)
    shape = learn_shape(x, y, good_outcome=False, max_steps=5)
    assert shape is not None and shape["direction"] == "higher is better"
    assert shape["scores"] == sorted(shape["scores"]) and shape["scores"][0] == 0.0
    assert shape["scores"][-1] == 100.0 and len(shape["scores"]) <= 5
    assert any(abs(c - 20) < 3 for c in shape["cuts"])  # a decile edge next to the true cut
    scored = apply_shape(shape, np.array([5.0, 50.0, np.nan]))
    assert scored[0] < scored[1] and np.isnan(scored[2])
    assert learn_shape(x, rng.permutation(y) * 0, good_outcome=False, max_steps=5) is None  # flat


def test_the_offer_rule_names_every_condition_that_failed_with_its_numbers() -> None:
    from healthscore.validation.choose import offer

    rng = np.random.default_rng(6)
    y = (rng.uniform(size=2000) < 0.1).astype(int)
    risk = rng.normal(size=2000) + y
    idx = np.arange(2000)

    def row(r: np.ndarray) -> dict[str, Any]:
        return {"auc": metrics.auc(y, r), "_index": idx, "_risk": r}

    bands = [("red", 0.0), ("yellow", 50.0), ("green", 75.0)]
    same = offer(row(risk), row(risk), None, None, y, idx // 4, bands, "churn", False, 100, 0)
    assert same["offered"] is False and same["auc_gain"] == 0.0 and same["failed"] == ["configured"]
    mine = same["auc"]
    assert same["why"] == (f"Suggested scorecard withheld: {mine:.3f} out of sample is +0.000 "
                           f"against the configured scorecard ({mine:.3f}; 95% CI of the gain "
                           f"+0.000 to +0.000 over 100 resamples of accounts): not clearly better, "
                           f"keep the configured scorecard.")
    better = row(risk + 2 * y)  # clearly better than the configured score...
    boxes = row(risk + 3 * y)  # ...but the black boxes rank better still
    out = offer(better, row(risk), boxes, boxes, y, idx // 4, [("red", 0.0)], "churn", False, 100, 0)
    assert out["offered"] is False and out["gain_ci"][0] > 0 and out["failed"] == ["l1", "gbm"]
    a, b = better["auc"], boxes["auc"]
    assert out["why"] == (
        f"Suggested scorecard withheld: {a:.3f} out of sample is {b - a:.3f} below the L1 logistic "
        f"regression ({b:.3f}): a plain linear model of the raw values ranks better; {a:.3f} out "
        f"of sample is {b - a:.3f} below the gradient-boosted model ({b:.3f}): the data has "
        f"interactions or shapes an additive monotone scorecard cannot express.")
    near = row(risk + 2 * y - 0.05 * rng.normal(size=2000))  # within 0.01 of the trees, above L1
    assert better["auc"] - near["auc"] < 0.01 < better["auc"] - row(risk)["auc"]
    out = offer(better, row(risk), row(risk), near, y, idx // 4, [("red", 0.0)], "churn", False,
                100, 0)
    assert out["offered"] is True and out["failed"] == []
    assert out["why"].startswith(f"Suggested scorecard offered: out of sample it ranks "
                                 f"{a - row(risk)['auc']:+.3f} AUC better than the configured ")


def test_suggested_schemes_reshape_a_saturated_scheme_and_win_out_of_sample(
        snapshot_validation: tuple, tmp_path: Path) -> None:
    from healthscore.validation.backtest import L1, SCHEMES, SUGGESTED

    shared, v = snapshot_validation
    root = tmp_path / "p"  # a copy: the suggestion is written into it
    shutil.copytree(shared, root, ignore=shutil.ignore_patterns(".healthscore"))
    data = v.to_json()
    comp = {c["model"]: c["auc"] for c in data["weights"]["comparison"]}
    s = data["weights"]["schemes"]
    # linear 0-2 logins saturates at two logins; the learned thresholds see the whole range
    assert comp[SCHEMES] - comp["configured scorecard"] > 0.25
    assert comp[SCHEMES] > comp["suggested weights"] + 0.25  # re-weighting alone cannot fix it
    assert comp[SCHEMES] > max(comp["L1 logistic regression (measure values)"],
                               comp["gradient-boosted trees (measure values)"]) - 0.02
    assert s["choice"] == "re-shape and re-weight" and s["chosen"].startswith("re-shape and re-weight (")
    assert comp[SUGGESTED] - comp["configured scorecard"] > 0.25  # chosen on other accounts
    assert s["gain_ci"][0] > 0 and s["bands_monotonic"] is True
    # but the true effect of logins is linear, and the L1 logistic ranks a little better still
    assert s["offered"] is False and s["failed"] == ["l1"] and comp[L1] > comp[SUGGESTED]
    assert s["why"] == (f"Suggested scorecard withheld: {comp[SUGGESTED]:.3f} out of sample is "
                        f"{comp[L1] - comp[SUGGESTED]:.3f} below the L1 logistic regression "
                        f"({comp[L1]:.3f}): a plain linear model of the raw values ranks better.")
    rates = [b["rate"] for b in s["bands"] if b["rate"] is not None]
    assert rates == sorted(rates, reverse=True)  # churn falls band by band
    logins = s["measures"]["logins_30"]
    assert logins["direction"] == "higher is better" and logins["scheme"]["type"] == "thresholds"
    assert logins["scheme"]["scores"] == sorted(logins["scheme"]["scores"])
    assert max(logins["scheme"]["cuts"]) > 2  # beyond where the configured scheme stopped looking
    assert s["measures"]["segment_kind"]["scheme"] is None  # a category keeps its scheme
    # the suggestion is that scorecard, and it scores as well when run
    text = v.suggestion_yaml()
    assert f"# Chosen on later dates than fitted: {s['chosen']}." in text
    (root / "scorecards" / "suggested.yml").write_text(text)
    (root / "healthscore.yml").write_text((root / "healthscore.yml").read_text().replace(
        "scorecards: [default]", "scorecards: [suggested]"))
    entries = {e.measure: e for e in resolve(load_specs(root)).scorecards[0].all_entries()}
    assert list(entries["logins_30"].scheme.cuts) == logins["scheme"]["cuts"]
    again = Project.load(root).validate(start="2025-03-01", end="2025-03-01", horizon="90d", now=NOW)
    assert again.to_json()["overall"]["auc"] > 0.85


def _demo_project(root: Path, data: Path) -> Path:
    write_template(root, "eight-categories", data)
    return root


# ----------------------------------------------------------------------------- acceptance: demo


@pytest.fixture(scope="module")
def kept_demo_scores() -> dict[tuple[int, tuple[date, ...]], pd.DataFrame]:
    """The scores the demo's backtest computed: (id of the config, as-of dates) -> frame."""
    return {}


def _scores_kept_in(kept: dict[tuple[int, tuple[date, ...]], pd.DataFrame],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a backtest takes the scores of a config and dates already in ``kept``
    from there (the frame scoring them again would compute), and keeps the ones it computes."""
    real = observations.pipeline.score_frame

    def score_frame(config: Any, loaded: Any, dates: list[date], progress: Any) -> pd.DataFrame:
        key = (id(config), tuple(dates))
        if key not in kept:
            kept[key] = real(config, loaded, dates, progress)
        return kept[key].copy()

    monkeypatch.setattr(observations.pipeline, "score_frame", score_frame)


@pytest.fixture(scope="module")
def demo_validation(tmp_path_factory: pytest.TempPathFactory,
                    kept_demo_scores: dict[tuple[int, tuple[date, ...]], pd.DataFrame],
                    ) -> tuple[Project, dict, Any]:
    """The 2,000-account demo, its validation over 19 month ends (nothing recorded) and that
    validation's JSON; its scores are kept in ``kept_demo_scores``."""
    root = tmp_path_factory.mktemp("demo-validate")
    generate(root / "data", accounts=2000, months=24, seed=7, end_date=END)
    project = Project.load(_demo_project(root, root / "data"))
    with pytest.MonkeyPatch.context() as patch:
        _scores_kept_in(kept_demo_scores, patch)
        result = project.validate(start="2025-01-31", end="2026-07-31", every="month",
                                  horizon="90d")
    return project, result.to_json(), result


@pytest.mark.acceptance
def test_demo_scorecard_predicts_churn_with_falling_band_rates(demo_validation: tuple) -> None:
    _, data, _ = demo_validation
    o = data["overall"]
    assert o["auc"] >= 0.75
    assert o["auc_ci"][0] > 0.7
    assert o["monotonic"] is True
    rates = [b["rate"] for b in o["bands"]]
    assert rates[0] > rates[1] > rates[2]  # red > yellow > green
    assert o["top_decile_lift"] > 2.5
    assert len(data["dates"]) == 19 and o["observations"] > 20000


@pytest.mark.acceptance
def test_demo_validation_flags_the_planted_signals(demo_validation: tuple) -> None:
    _, data, _ = demo_validation
    flags = {n: [f["flag"] for f in s["flags"]] for n, s in data["signals"].items()}
    # planted: ordinary ticket volume is over-rated (reversed); CS-initiated contacts follow risk
    assert "contradicts" in flags["tickets_90d"]
    assert "contradicts" in flags["cs_initiated_contacts_90d"]
    assert "contradicts" not in flags["nps_latest"]
    # seat_utilization divides by licensed seats, read as they were from the account history
    assert "leaky" not in flags["seat_utilization"]
    ticket_deciles = data["signals"]["tickets_90d"]["deciles"]
    assert ticket_deciles[0]["rate"] > ticket_deciles[-1]["rate"]  # fewer tickets, more churn
    comparison = {c["model"]: c["auc"] for c in data["weights"]["comparison"]}
    assert comparison["suggested weights"] > comparison["configured scorecard"]


@pytest.mark.acceptance
def test_validate_writes_report_json_record_and_reminds(demo_validation: tuple, tmp_path: Path) -> None:
    project, _, result = demo_validation
    assert any("never been validated" in w for w in review_warnings(project.config))
    html, data = result.write(tmp_path / "report")
    result.record(html)
    text = html.read_text()
    assert "<script" not in text and "http" not in text.split("</style>")[0]
    assert "<svg" in text and "Signal discovery" in text and "suggested weights" in text
    assert json.loads(data.read_text())["overall"]["observations"] > 0
    assert review_warnings(project.config) == []
    later = date.today() + timedelta(days=120)
    warning = review_warnings(project.config, today=later)
    assert len(warning) == len(project.config.scorecards) == 4  # one per scorecard
    assert "days ago (review every 90 days)" in warning[0]
    suggestion = yaml.safe_load(result.suggestion_yaml())
    assert sum(g["weight"] for g in suggestion["groups"].values()) == pytest.approx(100)


@pytest.mark.acceptance
def test_renewal_outcome_gets_the_mirrored_view(demo_validation: tuple, kept_demo_scores: dict,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    project, _, _ = demo_validation
    _scores_kept_in(kept_demo_scores, monkeypatch)  # the same dates' scores as the churn backtest's
    data = project.validate(start="2025-01-31", end="2026-07-31", outcome="renewal").to_json()
    assert len(kept_demo_scores) == 1  # scored once for both outcomes
    o = data["overall"]
    assert o["outcomes"] > 1000 and "false_red" in o and "lead_time" not in o
    # renewal rates rise from red to green; a renewal is a good outcome, so risk is the score
    rates = [b["rate"] for b in o["bands"]]
    assert rates[0] < rates[-1] and o["monotonic"] is True
    assert data["weights"]["comparison"][0]["model"] == "configured scorecard"


# ----------------------------------------------------------------------------- acceptance: churnsim


needs_churnsim = pytest.mark.skipif(not CHURNSIM_DATA.exists(),
                                    reason=f"third-party data not found at {CHURNSIM_DATA}")


@pytest.fixture(scope="module")
def kept_churnsim_backtests() -> dict[tuple[int, str], dict[str, Any]]:
    """The backtests the churnsim tests ran: (id of the config, its options but the clock) ->
    the backtest's result."""
    return {}


def _backtests_kept_in(kept: dict[tuple[int, str], dict[str, Any]],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a backtest of a config and options already in ``kept`` is taken from
    there (a copy of the result, which the comparison adds to), and a new one is kept."""
    from healthscore.validation import backtest

    real = backtest.validate

    def validate(config: Any, options: Any, progress: Any) -> dict[str, Any]:
        key = (id(config), repr(dataclasses.replace(options, now=None)))
        if key not in kept:
            kept[key] = real(config, options, progress)
        return dict(kept[key])

    monkeypatch.setattr(backtest, "validate", validate)


@pytest.fixture(scope="module")
def churnsim(tmp_path_factory: pytest.TempPathFactory,
             kept_churnsim_backtests: dict[tuple[int, str], dict[str, Any]],
             ) -> tuple[Path, dict, Any]:
    """The churnsim example project, its validation's JSON and the validation, built once; its
    backtest is kept in ``kept_churnsim_backtests``."""
    if not CHURNSIM_DATA.exists():
        pytest.skip(f"third-party data not found at {CHURNSIM_DATA}")
    root = tmp_path_factory.mktemp("churnsim") / "churnsim"
    _copy_churnsim(root)
    with pytest.MonkeyPatch.context() as patch:
        _backtests_kept_in(kept_churnsim_backtests, patch)
        result = Project.load(root).validate()
    return root, result.to_json(), result


def _copy_churnsim(root: Path) -> None:
    shutil.copytree(CHURNSIM, root, ignore=shutil.ignore_patterns(".healthscore"))
    text = (root / "healthscore.yml").read_text()
    (root / "healthscore.yml").write_text(text.replace("../../../shared", str(REPO.parent / "shared")))


@needs_churnsim
def test_churnsim_suggested_weights_beat_plain_l1_logistic_out_of_sample(churnsim: tuple) -> None:
    _, data, _ = churnsim
    comp = {c["model"]: c for c in data["weights"]["comparison"]}
    suggested = comp["suggested weights"]
    baseline = comp["L1 logistic regression (measure values)"]
    assert suggested["observations"] == baseline["observations"] > 3000
    assert [f["test_from"] for f in suggested["folds"]] == [f["test_from"] for f in baseline["folds"]]
    gbm = comp["gradient-boosted trees (measure values)"]
    assert [f["test_from"] for f in gbm["folds"]] == [f["test_from"] for f in baseline["folds"]]
    assert gbm["observations"] == baseline["observations"] and gbm["auc_ci"][0] < gbm["auc"]
    assert suggested["auc"] >= baseline["auc"]
    assert suggested["auc"] > comp["configured scorecard"]["auc"]
    effects = {m["measure"]: m for m in data["weights"]["measures"]}
    for known_bad in ("unfriends_28d", "dislikes_28d"):
        assert effects[known_bad]["effect_of_higher_value"] in ("lowers health", "none")
    assert effects["unfriends_28d"]["flipped"] or effects["unfriends_28d"]["suggested_weight"] == 0


@needs_churnsim
def test_churnsim_outcomes_come_from_subscriptions(churnsim: tuple) -> None:
    _, data, _ = churnsim
    o = data["overall"]
    assert data["observed_until"] == "2020-06-01"
    assert o["accounts"] > 600 and 200 < o["outcomes"] < 400
    assert o["monotonic"] is True


@needs_churnsim
def test_planted_leaky_measures_and_a_wrong_sign_weight_are_flagged(tmp_path: Path) -> None:
    if not CHURNSIM_DATA.exists():
        pytest.skip("no churnsim data")
    root = tmp_path / "churnsim"
    _copy_churnsim(root)
    # a copy of the label: a CSM "sentiment" entered for every account that ever churns
    subs = pd.read_parquet(CHURNSIM_DATA / "subscription.parquet")
    last = subs.groupby("account_id")["end_date"].max()
    churned = last[pd.to_datetime(last) < pd.Timestamp("2020-05-25")].index
    rows = [(str(a), "insider", 1 if a in set(churned) else 0, "2020-01-01 00:00:00") for a in last.index]
    # and a note typed in after the customer had left: data recorded after the outcome
    rows += [(str(a), "insider", 1, f"{pd.Timestamp(last[a]) + pd.Timedelta(days=3):%Y-%m-%d} 09:00:00")
             for a in churned[:5]]
    (root / "manual.csv").write_text(csv_text(["account_id", "measure", "value", "entered_at"], rows))
    text = (root / "healthscore.yml").read_text().replace(
        "scorecards: [default]", "  manual_values: {path: manual.csv}\nscorecards: [default]")
    (root / "healthscore.yml").write_text(text)
    (root / "measures" / "planted.yml").write_text(
        "insider: {type: manual, scheme: {type: linear, low: 1, high: 0}}\n"
        "days_since_churn: {type: attribute, column: churn_date,"
        " scheme: {type: category, map: {}, default: 50}}\n"
        "unfriends_good: {type: count, entity: usage_events, filter: \"event = 'unfriend'\", window: 28d,"
        " scheme: {type: linear, low: 0, high: 10}}\n")
    sc = yaml.safe_load((root / "scorecards" / "default.yml").read_text())
    sc["groups"]["planted"] = {"weight": 10, "measures": {"insider": 40, "days_since_churn": 20,
                                                          "unfriends_good": 40}}
    sc["groups"]["relationship"]["weight"] = 20
    (root / "scorecards" / "default.yml").write_text(yaml.safe_dump(sc))
    data = Project.load(root).validate().to_json()
    flags = {n: " ".join(f["flag"] + ": " + f["why"] for f in s["flags"]) for n, s in data["signals"].items()}
    assert "leaky: separates the outcome almost perfectly" in flags["insider"]
    assert "leaky: 5 rows of manual_values are dated after their account churned" in flags["insider"]
    assert data["rows_after_churn"] == {"manual_values": 5}
    assert "leaky: reads accounts.churn_date" in flags["days_since_churn"]
    # a copy of the label lifts the suggested weights far above the configured score
    assert data["alarm"]["measures"][:2] == ["insider", "days_since_churn"]
    assert "suggested weights" in data["alarm"]["rankings"]
    assert "above the configured scorecard's" in data["alarm"]["why"]
    assert "contradicts" in flags["unfriends_good"]


# ----------------------------------------------------------------------------- errors


def test_validate_errors_say_what_and_how(mini: Path) -> None:
    project = Project.load(mini)
    with pytest.raises(HealthScoreError, match=r"^--outcome: must be churn, renewal or expansion. "
                                               r"Got 'upsell'.$"):
        project.validate(outcome="upsell")
    with pytest.raises(HealthScoreError, match=r"^--horizon: is not a duration: 'soon'"):
        project.validate(horizon="soon")
    with pytest.raises(HealthScoreError) as err:
        project.validate(start="2025-01-01", end="2025-03-01", horizon="90d")
    assert str(err.value).startswith(
        "no as-of date from 2025-01-01 to 2025-03-01 has a complete outcome window: outcomes are "
        "known up to 2025-02-25 and each date needs 90 days after it (lead 0d + horizon 90d). "
        "Choose --to 2024-11-27 or earlier")


def test_a_version_to_compare_with_that_cannot_be_read_fails_before_the_backtest(mini: Path) -> None:
    """The other version is read first: a wrong --compare costs no backtest (here the backtest
    itself would fail, for want of a date with a complete outcome window)."""
    project = Project.load(mini)
    with pytest.raises(HealthScoreError) as err:
        project.validate(start="2025-01-01", end="2025-03-01", horizon="90d", compare="no-such-thing")
    assert str(err.value) == (
        f"--compare: 'no-such-thing' is neither a scorecard file (.yml) nor a git revision of "
        f"{mini}. Pass a path such as scorecards/old.yml, or a revision such as HEAD~1.")


def test_compare_with_a_scorecard_file_uses_the_same_observations(
        churnsim: tuple, kept_churnsim_backtests: dict, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    root, _, first = churnsim
    other = tmp_path / "tenure_only.yml"
    other.write_text("groups: {relationship: {weight: 100, measures: {tenure_days: 100}}}\n")
    _backtests_kept_in(kept_churnsim_backtests, monkeypatch)  # the module's backtest, not again
    data = Project(first.config).validate(compare=str(other)).to_json()
    assert len(kept_churnsim_backtests) == 1
    c = data["compare"]
    assert c["observations"] == data["overall"]["observations"]
    assert c["this"]["auc"] == pytest.approx(data["overall"]["auc"])
    assert c["that"]["auc"] != pytest.approx(c["this"]["auc"])
    with pytest.raises(HealthScoreError, match="neither a scorecard file"):
        Project.load(root).validate(compare="no-such-thing")


def test_suggestion_is_a_valid_scorecard(churnsim: tuple, tmp_path: Path) -> None:
    shared, _, result = churnsim
    root = tmp_path / "own"  # a copy: the module's project stays as it is for other tests
    shutil.copytree(shared, root, ignore=shutil.ignore_patterns(".healthscore"))
    text = result.suggestion_yaml()
    assert text.startswith("# Suggested by 'healthscore validate'")
    (root / "scorecards" / "suggested.yml").write_text(text)
    proj = (root / "healthscore.yml").read_text().replace("scorecards: [default]", "scorecards: [suggested]")
    (root / "healthscore.yml").write_text(proj)
    config = resolve(load_specs(root))
    weights = {e.measure: e for e in config.scorecards[0].all_entries()}
    assert "unfriends_28d" in weights
    # the suggestion re-shapes here (chosen on the later dates), so unfriends gets learned
    # thresholds that score more unfriends lower (it was: the percentile scheme reversed)
    scheme = weights["unfriends_28d"].scheme
    assert scheme.type == "thresholds" and list(scheme.scores) == sorted(scheme.scores, reverse=True)
    assert scheme.scores[0] > scheme.scores[-1]


@needs_churnsim
def test_cli_validate_compares_with_a_git_revision_and_writes_the_suggestion(churnsim: tuple,
                                                                             tmp_path: Path) -> None:
    import subprocess

    from typer.testing import CliRunner

    from healthscore.cli.main import app

    root, _, _ = churnsim
    repo = tmp_path / "repo"
    shutil.copytree(root, repo / "cs", ignore=shutil.ignore_patterns(".healthscore"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    (repo / "cs" / "scorecards" / "default.yml").write_text(
        "groups: {relationship: {weight: 100, measures: {tenure_days: 100}}}\n")
    out = tmp_path / "suggested.yml"
    result = CliRunner().invoke(app, ["validate", "-p", str(repo / "cs"), "--compare", "HEAD",
                                      "--write-suggestion", str(out), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "Against HEAD on 7,002 shared observations" in result.output
    data = json.loads((tmp_path / "rep" / "validation.json").read_text())
    assert data["compare"]["that"]["auc"] == pytest.approx(0.701, abs=0.01)  # the committed scorecard
    assert out.read_text().startswith("# Suggested by 'healthscore validate'")
    assert (tmp_path / "rep" / "report.html").exists()


def test_override_track_record_by_hand() -> None:
    from healthscore.validation.overrides import track_record

    def ov(i: int, account: str, was: str, to: str, set_at: str, reason: str = "relationship") -> dict:
        return {"id": i, "account_id": account, "system_band": was, "band": to, "score": None,
                "set_at": set_at, "reason_code": reason, "set_by": "cara"}

    overrides = [
        ov(1, "A", "green", "red", "2025-01-10T09:00:00"),     # worse, churned 02-01: right
        ov(2, "B", "red", "green", "2025-01-10T09:00:00"),     # better, stayed: right
        ov(3, "C", "red", "green", "2025-01-10T09:00:00", "known_issue"),  # better, churned: wrong
        ov(4, "D", "yellow", "red", "2025-01-10T09:00:00"),    # worse, stayed: wrong
        ov(5, "E", "green", "green", "2025-01-10T09:00:00"),   # no change of band: not judged
        ov(6, "F", "green", "red", "2025-03-20T09:00:00"),     # window not over: not judged
    ]
    events = pd.DataFrame({"account_id": ["A", "C", "F"],
                           "event_date": [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]})
    rec = track_record(overrides, events, date(2025, 4, 30), 90, ["red", "yellow", "green"], lambda s: None)
    assert (rec["judged"], rec["right"], rec["share_right"]) == (4, 2, 0.5)
    assert [r["right"] for r in rec["overrides"]] == [True, True, False, False]
    assert rec["by_reason"] == {"relationship": {"judged": 3, "right": 2},
                                "known_issue": {"judged": 1, "right": 0}}


def test_module_mark_track_record_by_hand() -> None:
    """Seed 002's CSM marks judged like overrides: a mark to a worse colour than the module had
    is right when churn follows within the horizon, one to a better colour when it does not."""
    from healthscore.validation.overrides import mark_record

    def mark(i: int, account: str, was: str | None, to: str, set_at: str,
             reason: str = "relationship") -> dict:
        return {"id": i, "account_id": account, "module": "sentiment", "system_colour": was,
                "colour": to, "set_at": set_at, "reason_code": reason, "set_by": "cara"}

    marks = [
        mark(1, "A", "green", "red", "2025-01-10T09:00:00"),     # worse, churned 02-01: right
        mark(2, "B", "yellow", "green", "2025-01-10T09:00:00", "known_issue"),  # better, stayed: right
        mark(3, "C", "green", "yellow", "2025-01-10T09:00:00"),  # worse, stayed: wrong
        mark(4, "D", "red", "red", "2025-01-10T09:00:00"),       # no change: not judged
        mark(5, "E", None, "red", "2025-01-10T09:00:00"),        # colour unknown then: not judged
        mark(6, "A", "green", "red", "2025-02-01T09:00:00"),     # churn on the mark's day: wrong
        mark(7, "F", "green", "red", "2025-03-20T09:00:00"),     # window not over: not judged
    ]
    events = pd.DataFrame({"account_id": ["A", "F"], "event_date": [date(2025, 2, 1), date(2025, 4, 1)]})
    rec = mark_record(marks, events, date(2025, 5, 31), 90)
    assert (rec["judged"], rec["right"], rec["share_right"]) == (4, 2, 0.5)
    assert [(r["mark_id"], r["module"], r["right"]) for r in rec["marks"]] == [
        (1, "sentiment", True), (2, "sentiment", True), (3, "sentiment", False), (6, "sentiment", False)]
    assert rec["by_reason"] == {"relationship": {"judged": 3, "right": 1},
                                "known_issue": {"judged": 1, "right": 1}}
    from healthscore.validation.report import _track_record

    html = _track_record(rec, "Module marks", "module marks", "a module's colour", "colour", "churn")
    assert html.startswith("<h2>Module marks</h2><p>2 of 4 module marks that changed a module's colour "
                           "were right (50.0%): a module mark to a worse colour was followed by churn "
                           "within 90 days, one to a better colour was not.</p>")
