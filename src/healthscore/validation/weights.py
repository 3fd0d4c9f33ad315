"""Estimators of the backtest, following the scikit-learn contract: ``__init__`` stores
parameters, ``fit`` returns ``self``, learned values end in ``_``.

All of them rank observations by *risk* of the outcome through ``decision_function``, so one
protocol evaluates the configured scorecard, the suggested weights, the best single measure
and a plain L1 logistic regression side by side.

Scores are "higher is healthier". For an outcome that is bad (churn) risk is ``100 - score``;
for a good outcome (renewal, expansion) it is the score itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from healthscore.validation.metrics import auc

CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
T = TypeVar("T")
_DONE: ContextVar[dict[bytes, Any] | None] = ContextVar("validation_fits_done", default=None)


@contextmanager
def repeated_fits_shared() -> Iterator[None]:
    """Within it, a fit asked for again on the same inputs is the first one's (see :func:`once`):
    a backtest's nested folds meet the same training dates more than once (an outer fold's
    inner fold is often another nesting's), and every fit here is deterministic, so only the
    time changes."""
    token = _DONE.set({})
    try:
        yield
    finally:
        _DONE.reset(token)


def once(what: str, arrays: tuple[np.ndarray, ...], fit: Callable[[], T]) -> T:
    """``fit()``; inside :func:`repeated_fits_shared`, computed once per ``what`` (every
    parameter of the fit) and content of ``arrays`` (its data), then shared: read it, never
    change it."""
    done = _DONE.get()
    if done is None:
        return fit()
    digest = hashlib.sha1(what.encode(), usedforsecurity=False)
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"|{a.dtype.str}{a.shape}|".encode())
        digest.update(a.data)
    key = digest.digest()
    if key not in done:
        done[key] = fit()
    return done[key]  # type: ignore[no-any-return]


def _fitted(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """``model`` (a pipeline) fitted on X, y, or the same fit done before (see :func:`once`)."""
    return once(repr(model), (X, y), lambda: model.fit(X, y))


def time_splits(
    dates: np.ndarray, folds: int, gap_days: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window splits over as-of dates: each test block is later than everything its
    model was trained on, and training keeps only observations whose outcome window
    (``gap_days`` = lead + horizon) had closed by the test block's first date."""
    unique = np.array(sorted(set(dates)))
    blocks = np.array_split(unique, folds + 1)
    for k in range(1, len(blocks)):
        if not len(blocks[k]):
            continue
        first = blocks[k][0]
        cutoff = first - timedelta(days=gap_days)
        train = np.flatnonzero(np.array([d <= cutoff for d in dates]))
        test = np.flatnonzero(np.isin(dates, blocks[k]))
        if len(train) and len(test):
            yield train, test


def account_splits(accounts: np.ndarray, folds: int, seed: int = 0
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """K folds grouped by account (scikit-learn's GroupKFold, shuffled with ``seed``): an
    account's observations are all in training or all in testing, never in both."""
    n = len(np.unique(accounts))
    if n < 2:
        return
    cv = GroupKFold(n_splits=min(folds, n), shuffle=True, random_state=seed)
    yield from cv.split(np.zeros(len(accounts)), groups=accounts)


TIME_ORDERED, BY_ACCOUNT = "time-ordered", "grouped by account"


def splits(dates: np.ndarray, accounts: np.ndarray, y: np.ndarray, folds: int, gap_days: int,
           seed: int = 0) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Time-ordered folds when the as-of dates allow any whose training data holds both
    outcomes; else K folds grouped by account. Returns the folds and which kind they are."""
    usable = [(tr, te) for tr, te in time_splits(dates, folds, gap_days)
              if len(np.unique(y[tr])) == 2]
    if usable:
        return usable, TIME_ORDERED
    grouped = [(tr, te) for tr, te in account_splits(accounts, folds, seed)
               if len(np.unique(y[tr])) == 2]
    return grouped, BY_ACCOUNT


def _risk_sign(good_outcome: bool) -> float:
    return 1.0 if good_outcome else -1.0


def column_means(X: np.ndarray) -> np.ndarray:
    """Each column's mean over its known values; 50 (a neutral score) for a column with none,
    e.g. a manual measure nobody has entered yet."""
    known = ~np.isnan(X)
    counts = known.sum(axis=0)
    sums = np.where(known, X, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 50.0)


class ConfiguredScore(BaseEstimator, ClassifierMixin):
    """The scorecard as configured: nothing to learn, risk comes from its ``score`` column."""

    def __init__(self, column: int = 0, good_outcome: bool = False) -> None:
        self.column = column
        self.good_outcome = good_outcome

    def fit(self, X: np.ndarray, y: np.ndarray, **_: Any) -> ConfiguredScore:
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        score = np.asarray(X, dtype=float)[:, self.column]
        return _risk_sign(self.good_outcome) * np.nan_to_num(score, nan=50.0)


class BestSingleMeasure(BaseEstimator, ClassifierMixin):
    """The one measure score that ranks the training observations best (either direction)."""

    def __init__(self, good_outcome: bool = False) -> None:
        self.good_outcome = good_outcome

    def fit(self, X: np.ndarray, y: np.ndarray, **_: Any) -> BestSingleMeasure:
        X = np.asarray(X, dtype=float)
        self.fill_ = column_means(X)
        filled = np.where(np.isnan(X), self.fill_, X)
        best, sign, best_auc = 0, 1.0, -1.0
        for j in range(X.shape[1]):
            a = auc(y, filled[:, j])
            if a is None:
                continue
            if max(a, 1 - a) > best_auc:
                best, sign, best_auc = j, (1.0 if a >= 0.5 else -1.0), max(a, 1 - a)
        self.measure_index_, self.sign_, self.train_auc_ = best, sign, best_auc
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        col = X[:, self.measure_index_]
        return self.sign_ * np.where(np.isnan(col), self.fill_[self.measure_index_], col)


def _choose_c(make: Any, X: np.ndarray, y: np.ndarray, dates: np.ndarray | None, gap: int,
              groups: np.ndarray | None = None) -> float:
    """C of the L1 penalty with the best AUC on later observations than those it was fitted on
    (or, when the dates do not allow that, on other accounts than those)."""
    inner: list[tuple[np.ndarray, np.ndarray]] = []
    if dates is not None and len(set(dates)) >= 3:
        inner = list(time_splits(dates, 2, gap))
    if not inner and groups is not None:
        inner = list(account_splits(groups, 3))
    if not inner:
        return 0.1
    best, best_auc = 0.1, -1.0
    for c in CS:
        scores = []
        for train, test in inner:
            if len(np.unique(y[train])) < 2:
                continue
            model = _fitted(make(c), X[train], y[train])
            a = auc(y[test], model.decision_function(X[test]))
            if a is not None:
                scores.append(a)
        if scores and np.mean(scores) > best_auc:
            best, best_auc = c, float(np.mean(scores))
    return best


class L1Logistic(BaseEstimator, ClassifierMixin):
    """L1-regularised logistic regression on standardised measure values (missing values get
    the training median), with C chosen on later observations than it is fitted on."""

    def __init__(self, gap_days: int = 0, random_state: int = 0) -> None:
        self.gap_days = gap_days
        self.random_state = random_state

    def _make(self, c: float) -> Any:
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
            LogisticRegression(l1_ratio=1.0, solver="liblinear", C=c, random_state=self.random_state),
        )

    def fit(self, X: np.ndarray, y: np.ndarray, dates: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> L1Logistic:
        X = np.asarray(X, dtype=float)
        self.C_ = _choose_c(self._make, X, y, dates, self.gap_days, groups)
        self.model_ = _fitted(self._make(self.C_), X, y)
        self.coef_ = self.model_[-1].coef_[0]
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.decision_function(np.asarray(X, dtype=float)))


class GradientBoosting(BaseEstimator, ClassifierMixin):
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) on the raw
    measure values: a black box to measure the additive scores against. Missing values are
    handled by the trees; a fixed ``random_state`` and no early stopping keep it reproducible."""

    def __init__(self, max_iter: int = 150, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 40, random_state: int = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, **_: Any) -> GradientBoosting:
        X = np.asarray(X, dtype=float)
        # a measure with no value at all in the training data says nothing (and trips the binner)
        self.used_ = ~np.isnan(X).all(axis=0)
        model = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            early_stopping=False, random_state=self.random_state,
        )
        with _one_thread():
            self.model_ = model.fit(X[:, self.used_] if self.used_.any() else np.zeros((len(X), 1)), y)
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        X = X[:, self.used_] if self.used_.any() else np.zeros((len(X), 1))
        with _one_thread():
            return np.asarray(self.model_.decision_function(X))


def _one_thread() -> threadpool_limits:
    """The trees on one OpenMP thread: a backtest's few thousand rows gain nothing from more,
    and on a busy machine (the web app, the daily run, other jobs) OpenMP's threads wait for
    each other at every split: two fits of 150 trees on 6,000 x 40 took 38 s on two threads
    of a loaded 2-core machine and 0.7 s on one."""
    return threadpool_limits(limits=1, user_api="openmp")


class SuggestedWeights(BaseEstimator, ClassifierMixin):
    """Non-negative weights in percent for the measure scores of a scorecard.

    An L1-regularised logistic regression is fitted on the scores (standardised; missing
    scores get the training mean). Each coefficient becomes a weight per score point; a
    measure whose coefficient says its score works backwards is *flipped* (scored as
    ``100 - score``) so that every weight is non-negative and the result stays an additive
    0-100 health score. Weights are rounded to 0.1 percent, as they would be written down,
    and the score is computed from the rounded weights.

    ``C`` fixes the penalty (else it is chosen on later dates than those fitted);
    ``random_state`` seeds the solver, so the same data gives the same weights."""

    def __init__(self, good_outcome: bool = False, gap_days: int = 0, C: float | None = None,
                 random_state: int = 0) -> None:
        self.good_outcome = good_outcome
        self.gap_days = gap_days
        self.C = C
        self.random_state = random_state

    def _make(self, c: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(
            l1_ratio=1.0, solver="liblinear", C=c, random_state=self.random_state))

    def fit(self, X: np.ndarray, y: np.ndarray, dates: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> SuggestedWeights:
        X = np.asarray(X, dtype=float)
        self.fill_ = column_means(X)
        filled = np.where(np.isnan(X), self.fill_, X)
        self.C_ = self.C if self.C is not None else _choose_c(self._make, filled, y, dates,
                                                               self.gap_days, groups)
        model = _fitted(self._make(self.C_), filled, y)
        scale = model[0].scale_
        per_point = model[-1].coef_[0] / np.where(scale > 0, scale, 1.0)
        # health per score point: against the outcome when it is bad, with it when it is good
        health = per_point if self.good_outcome else -per_point
        self.flipped_ = health < 0
        total = np.abs(health).sum()
        raw = np.abs(health) / total * 100 if total > 0 else np.full(len(health), 100 / len(health))
        self.weights_ = _round_percent(raw)
        self.classes_ = np.array([0, 1])
        return self

    def health_score(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        filled = np.where(np.isnan(X), self.fill_, X)
        oriented = np.where(self.flipped_, 100 - filled, filled)
        return np.asarray(oriented @ (self.weights_ / 100.0))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return _risk_sign(self.good_outcome) * self.health_score(X)


def bootstrap_weights(
    fitted: SuggestedWeights, X: np.ndarray, y: np.ndarray, accounts: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and reversals of ``fitted`` refitted (same penalty, same seed) on ``n`` resamples
    of whole accounts: arrays of shape (n, measures). Resamples with one class are skipped."""
    rng = np.random.default_rng([seed, 1])
    ids, inverse = np.unique(accounts, return_inverse=True)
    model = clone(fitted).set_params(C=fitted.C_)
    weights, flipped = [], []
    for _ in range(n):
        counts = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
        rows = np.repeat(np.arange(len(y)), counts[inverse])
        if len(np.unique(y[rows])) < 2:
            continue
        model.fit(X[rows], y[rows])
        weights.append(model.weights_)
        flipped.append(model.flipped_ & (model.weights_ > 0))
    p = X.shape[1]
    if not weights:
        return np.empty((0, p)), np.empty((0, p), dtype=bool)
    return np.vstack(weights), np.vstack(flipped)


def _round_percent(raw: np.ndarray) -> np.ndarray:
    """Round to 0.1 keeping the sum at exactly 100 (largest remainders get the spare tenths)."""
    tenths = raw * 10
    floor = np.floor(tenths)
    spare = int(round(1000 - floor.sum()))
    order = np.argsort(-(tenths - floor), kind="stable")
    floor[order[:spare]] += 1
    return np.asarray(floor / 10)


def out_of_sample(
    estimator: Any, X: np.ndarray, y: np.ndarray, dates: np.ndarray, accounts: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Risk predicted for every test observation by a model fitted on the training part of
    its fold only (``folds`` from :func:`splits`).

    Returns (indices of the test observations, their risk, per-fold facts)."""
    index, risk, facts = [], [], []
    for train, test in folds:
        model = clone(estimator)
        args = _fit_args(model)
        params = {k: v[train] for k, v in (("dates", dates), ("groups", accounts)) if k in args}
        model.fit(X[train], y[train], **params)
        r = model.decision_function(X[test])
        index.append(test)
        risk.append(r)
        facts.append({"train_until": _iso(max(dates[train])), "test_from": _iso(min(dates[test])),
                      "test_to": _iso(max(dates[test])), "train": int(len(train)),
                      "test": int(len(test)), "auc": auc(y[test], r)})
    if not index:
        return np.array([], dtype=int), np.array([]), facts
    return np.concatenate(index), np.concatenate(risk), facts


def _fit_args(model: Any) -> tuple[str, ...]:
    return tuple(model.fit.__code__.co_varnames[: model.fit.__code__.co_argcount])


def _iso(d: date) -> str:
    return d.isoformat()
