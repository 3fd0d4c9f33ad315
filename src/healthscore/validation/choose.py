"""The suggested scorecard: chosen on later dates than it is fitted on, and offered only when
it holds up out of sample.

:class:`SuggestedScorecard` makes every choice on an inner, later slice of the dates it is
given (nested: inside an outer fold it never sees that fold's test dates): whether to keep
the configured scorecard, re-weight its measure scores only, or re-shape the measures
(learned monotone thresholds, each measure alone or all together as an additive model) and
re-weight them; how many steps a shape gets; and the weights' penalty. The winner on the
inner slice is fitted again on all the dates given.

:func:`offer` then says whether the suggestion is offered: out of sample it must beat the
configured scorecard beyond the bootstrap interval of the gain, rank at least as well as the
L1 logistic regression, come within ``GBM_MARGIN`` of the gradient-boosted trees and keep the
outcome rate monotone band by band. Otherwise it is withheld, with every failed condition and
its numbers.

``X`` holds, side by side, the measures' raw values (NaN where none or not numeric), their
configured scores and, last, the configured scorecard's score: ``X[:, :p]``, ``X[:, p:2p]``,
``X[:, 2p]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from healthscore.validation.metrics import auc, band_rates, bootstrap_aucs, monotonic
from healthscore.validation.shapes import (
    ADDITIVE_TREES,
    ISOTONIC,
    apply_shape,
    shapes_by_steps,
)
from healthscore.validation.weights import CS, SuggestedWeights, account_splits, once, time_splits

CONFIGURED, REWEIGHT, RESHAPE = ("keep the configured scorecard", "re-weight only",
                                 "re-shape and re-weight")
SHAPINGS = ((ISOTONIC, 3), (ISOTONIC, 5), (ISOTONIC, 8), (ADDITIVE_TREES, 3), (ADDITIVE_TREES, 5),
            (ADDITIVE_TREES, 8))
GBM_MARGIN = 0.01  # how far below the gradient-boosted trees an offered suggestion may rank


def inner_splits(dates: np.ndarray | None, groups: np.ndarray | None, y: np.ndarray, gap: int,
                 seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Where the choices are made: two expanding time-ordered folds over the dates given (each
    tested on later dates than it is fitted on), or, when the dates do not allow that, three
    folds grouped by account. Folds whose training or test part lacks an outcome are dropped."""
    def both(folds: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(tr, te) for tr, te in folds if len(np.unique(y[tr])) == 2
                and len(np.unique(y[te])) == 2]

    inner: list[tuple[np.ndarray, np.ndarray]] = []
    if dates is not None and len(set(dates)) >= 3:
        inner = both(time_splits(dates, 2, gap))
    if not inner and groups is not None:
        inner = both(account_splits(groups, 3, seed))
    return inner


def _candidates() -> list[tuple[str, str | None, int | None, float | None]]:
    """(choice, shape learner, steps, penalty C), simplest first: a later one must rank better
    on the inner slice to be chosen."""
    out: list[tuple[str, str | None, int | None, float | None]] = [(CONFIGURED, None, None, None)]
    out += [(REWEIGHT, None, None, c) for c in CS]
    out += [(RESHAPE, learner, steps, c) for learner, steps in SHAPINGS for c in CS]
    return out


def _label(choice: str, learner: str | None, steps: int | None, c: float | None) -> str:
    if choice == CONFIGURED:
        return choice
    if choice == REWEIGHT:
        return f"{choice} (C {c:g})"
    return f"{choice} ({learner}, {steps} steps, C {c:g})"


class SuggestedScorecard(BaseEstimator, ClassifierMixin):
    """The suggestion, every choice made on later dates than the fit (see the module
    docstring). Learned: ``choice_`` (one of CONFIGURED, REWEIGHT, RESHAPE), ``learner_``,
    ``steps_``, ``C_``, the inner AUC of each candidate (``inner_aucs_``), ``shapes_`` (one per
    measure, None where the configured scheme is kept) and ``weights_model_``."""

    def __init__(self, good_outcome: bool = False, gap_days: int = 0, random_state: int = 0
                 ) -> None:
        self.good_outcome = good_outcome
        self.gap_days = gap_days
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, dates: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> SuggestedScorecard:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y)
        self.p_ = (X.shape[1] - 1) // 2
        inner = inner_splits(dates, groups, y, self.gap_days, self.random_state)
        self.inner_aucs_ = self._inner_aucs(X, y, inner) if inner else {}
        best: tuple[str, str | None, int | None, float | None] = (CONFIGURED, None, None, None)
        best_auc = self.inner_aucs_.get(_label(*best), -1.0)
        for cand in _candidates()[1:]:
            a = self.inner_aucs_.get(_label(*cand))
            if a is not None and a > best_auc + 1e-9:
                best, best_auc = cand, a
        self.choice_, self.learner_, self.steps_, self.C_ = best
        self.inner_auc_ = best_auc if best_auc >= 0 else None
        self._refit(X, y)
        self.classes_ = np.array([0, 1])
        return self

    def _inner_aucs(self, X: np.ndarray, y: np.ndarray,
                    inner: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        """Each candidate's mean AUC over the inner folds; the shapes are learned once per fold
        and learner (every step count from one fit), the penalties tried on them."""
        p = self.p_
        found: dict[str, list[float]] = {}
        for train, test in inner:
            a = auc(y[test], self._sign() * X[test, 2 * p])
            if a is not None:
                found.setdefault(CONFIGURED, []).append(a)
            learned = self._shapings(X[train, :p], y[train])
            shapings: list[tuple[str, str | None, int | None]] = [(REWEIGHT, None, None)]
            shapings += [(RESHAPE, learner, steps) for learner, steps in SHAPINGS]
            for choice, learner, steps in shapings:
                shapes: list[dict[str, Any] | None] = (
                    learned[learner, steps or 0] if learner else [None] * p)
                if choice == RESHAPE and all(s is None for s in shapes):
                    continue  # nothing re-shaped: the same as re-weighting
                S = _reshaped(X, shapes, p)
                fit_on, test_on = S[train], S[test]
                for c in CS:
                    model = self._weights(c).fit(fit_on, y[train])
                    a = auc(y[test], model.decision_function(test_on))
                    if a is not None:
                        found.setdefault(_label(choice, learner, steps, c), []).append(a)
        return {k: float(np.mean(v)) for k, v in found.items() if len(v) == len(inner)}

    def _shapings(self, values: np.ndarray, y: np.ndarray
                  ) -> dict[tuple[str, int], list[dict[str, Any] | None]]:
        """The shapes of every (learner, steps) of SHAPINGS, each learner run once for all its
        step counts."""
        out: dict[tuple[str, int], list[dict[str, Any] | None]] = {}
        for learner in dict.fromkeys(learner for learner, _ in SHAPINGS):
            out.update({(learner, k): shapes for k, shapes in self._shapes(values, y, learner).items()})
        return out

    def _shapes(self, values: np.ndarray, y: np.ndarray, learner: str
                ) -> dict[int, list[dict[str, Any] | None]]:
        """The shapes of ``learner`` for each of its step counts in SHAPINGS (learned once for
        the same training data, see :func:`once`)."""
        steps = [k for name, k in SHAPINGS if name == learner]
        return once(f"shapes {learner} {steps} {self.good_outcome} {self.random_state}", (values, y),
                    lambda: shapes_by_steps(values, y, self.good_outcome, steps, learner,
                                            self.random_state))

    def _weights(self, c: float) -> SuggestedWeights:
        return SuggestedWeights(good_outcome=self.good_outcome, C=c, random_state=self.random_state)

    def _sign(self) -> float:
        return 1.0 if self.good_outcome else -1.0

    def _refit(self, X: np.ndarray, y: np.ndarray) -> None:
        p = self.p_
        self.shapes_: list[dict[str, Any] | None] = [None] * p
        self.weights_model_: SuggestedWeights | None = None
        if self.choice_ == CONFIGURED:
            return
        if self.choice_ == RESHAPE:
            self.shapes_ = list(self._shapes(X[:, :p], y, self.learner_ or ISOTONIC)[self.steps_ or 0])
        self.weights_model_ = self._weights(self.C_ or 0.1).fit(_reshaped(X, self.shapes_, p), y)

    def health_score(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if self.weights_model_ is None:
            return np.nan_to_num(X[:, 2 * self.p_], nan=50.0)
        return self.weights_model_.health_score(_reshaped(X, self.shapes_, self.p_))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self._sign() * self.health_score(X)

    def describe(self) -> str:
        return _label(self.choice_, self.learner_, self.steps_, self.C_)


def _reshaped(X: np.ndarray, shapes: list[dict[str, Any] | None], p: int) -> np.ndarray:
    """The measure scores under ``shapes`` (the configured scores where a shape is None)."""
    cols = [apply_shape(s, X[:, j]) if s is not None else X[:, p + j] for j, s in enumerate(shapes)]
    return np.column_stack(cols) if cols else np.empty((len(X), 0))


def fit_final(X: np.ndarray, y: np.ndarray, names: list[str], configured_weights: dict[str, float],
              good_outcome: bool, gap_days: int, seed: int, dates: np.ndarray,
              accounts: np.ndarray) -> dict[str, Any]:
    """The suggestion fitted on every observation (its choices made on the later dates among
    them), as the scorecard YAML needs it: per measure its scheme (None: the configured one),
    direction, weight and whether its scheme is reversed."""
    model = SuggestedScorecard(good_outcome=good_outcome, gap_days=gap_days,
                               random_state=seed).fit(X, y, dates=dates, groups=accounts)
    w = model.weights_model_
    if w is None:
        weights = {n: configured_weights.get(n, 0.0) for n in names}
        flipped = dict.fromkeys(names, False)
    else:
        weights = {n: float(w.weights_[j]) for j, n in enumerate(names)}
        flipped = {n: bool(w.flipped_[j] and w.weights_[j] > 0) for j, n in enumerate(names)}
    return {
        "choice": model.choice_, "chosen": model.describe(), "inner_auc": model.inner_auc_,
        "inner_aucs": model.inner_aucs_,
        "measures": {n: {"scheme": ({"type": "thresholds", "cuts": s["cuts"], "scores": s["scores"]}
                                    if s is not None else None),
                         "direction": s["direction"] if s is not None else None,
                         "weight": weights[n], "flipped": flipped[n]}
                     for n, s in zip(names, model.shapes_, strict=True)},
        "weights": weights, "flipped": flipped,
    }


def offer(suggested: dict[str, Any], configured: dict[str, Any], l1: dict[str, Any] | None,
          gbm: dict[str, Any] | None, y: np.ndarray, accounts: np.ndarray,
          bands: list[tuple[str, float]], outcome: str, good_outcome: bool, resamples: int,
          seed: int) -> dict[str, Any]:
    """Whether the suggestion is offered, from its out-of-sample ranking (``suggested``) beside
    the configured scorecard's, the L1 logistic regression's and the gradient-boosted trees'
    (the same test observations); and why (not), with the numbers of every failed condition."""
    idx = suggested["_index"]
    if not len(idx) or suggested["auc"] is None or configured["auc"] is None:
        return {"offered": False, "failed": ["measured"],
                "why": "Suggested scorecard withheld: nothing was measured out of sample."}
    mine = bootstrap_aucs(y[idx], suggested["_risk"], accounts[idx], resamples, seed)
    theirs = bootstrap_aucs(y[idx], configured["_risk"], accounts[idx], resamples, seed)
    gain = suggested["auc"] - configured["auc"]
    lo, hi = (np.percentile(mine - theirs, [2.5, 97.5]) if len(mine) == len(theirs) and len(mine)
              else (np.nan, np.nan))
    rates = _band_rates(suggested["_risk"], y[idx], bands, good_outcome)
    out: dict[str, Any] = {"auc": suggested["auc"], "auc_gain": float(gain),
                           "gain_ci": [float(lo), float(hi)], "bands": rates,
                           "bands_monotonic": monotonic(rates, falling=not good_outcome)}
    ci = f"95% CI of the gain {lo:+.3f} to {hi:+.3f} over {len(mine)} resamples of accounts"
    mine_auc = suggested["auc"]
    failed: list[tuple[str, str]] = []
    if not lo > 0:
        failed.append(("configured", f"{mine_auc:.3f} out of sample is {gain:+.3f} against the "
                                     f"configured scorecard ({configured['auc']:.3f}; {ci}): "
                                     f"not clearly better, keep the configured scorecard"))
    if l1 is not None and l1["auc"] is not None and mine_auc < l1["auc"]:
        failed.append(("l1", f"{mine_auc:.3f} out of sample is {l1['auc'] - mine_auc:.3f} below "
                             f"the L1 logistic regression ({l1['auc']:.3f}): a plain linear model "
                             f"of the raw values ranks better"))
    if gbm is not None and gbm["auc"] is not None and mine_auc < gbm["auc"] - GBM_MARGIN:
        failed.append(("gbm", f"{mine_auc:.3f} out of sample is {gbm['auc'] - mine_auc:.3f} below "
                              f"the gradient-boosted model ({gbm['auc']:.3f}): the data has "
                              f"interactions or shapes an additive monotone scorecard cannot "
                              f"express"))
    if not out["bands_monotonic"]:
        failed.append(("bands", f"the {outcome} rate does not "
                                f"{'rise' if good_outcome else 'fall'} band by band with it"))
    if failed:
        why = "Suggested scorecard withheld: " + "; ".join(text for _, text in failed) + "."
    else:
        why = (f"Suggested scorecard offered: out of sample it ranks {gain:+.3f} AUC better than "
               f"the configured scorecard ({ci}), at least as well as the L1 logistic regression"
               f"{_vs(l1)} and within {GBM_MARGIN} of the gradient-boosted model{_vs(gbm)}, and "
               f"the {outcome} rate {'rises' if good_outcome else 'falls'} band by band.")
    return {**out, "offered": not failed, "failed": [k for k, _ in failed], "why": why}


def _vs(row: dict[str, Any] | None) -> str:
    return f" ({row['auc']:.3f})" if row is not None and row["auc"] is not None else ""


def _band_rates(risk: np.ndarray, y: np.ndarray, bands: list[tuple[str, float]],
                good_outcome: bool) -> list[dict[str, Any]]:
    health = risk if good_outcome else -risk
    names = [b for b, _ in bands]
    which = np.searchsorted(np.array([m for _, m in bands]), health, side="right") - 1
    return band_rates(y, np.array(names, dtype=object)[np.clip(which, 0, len(names) - 1)], names)
