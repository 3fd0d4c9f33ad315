"""Suggested schemes: a monotone, few-step shape per measure, then the weights.

For each measure with numeric values, the outcome rate is fitted as a monotone function of
the value (scikit-learn's isotonic regression over decile bins, its direction taken from the
data), merged into at most ``max_steps`` steps and scaled to 0-100 health: exactly a
``thresholds`` scheme with learned cuts and scores. The reshaped measure scores are then
weighted by :class:`SuggestedWeights`, so the suggestion stays an additive, explainable
scorecard that ``healthscore run`` can use unchanged. A measure whose values are not numbers,
or whose shape comes out flat, keeps its configured score.

The estimator follows the scikit-learn contract. Its ``X`` holds, side by side, the raw
values of the measures (NaN where a measure has none or is not numeric) and their configured
scores: ``X[:, :p]`` and ``X[:, p:]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression

from healthscore.validation.metrics import band_rates, bootstrap_aucs, monotonic
from healthscore.validation.weights import SuggestedWeights

BINS = 10  # candidate cuts: the deciles of a measure's values
MIN_BIN = 30  # observations a step needs (fewer: merged with its neighbour)


def learn_shape(x: np.ndarray, y: np.ndarray, good_outcome: bool, max_steps: int
                ) -> dict[str, Any] | None:
    """Cuts and health scores (0-100) of a monotone step function of ``x``; None when the
    values are too few or the shape is flat. ``direction`` says whether higher values are
    healthier ('higher is better') or not."""
    ok = ~np.isnan(x)
    x, y = x[ok], y[ok]
    if len(x) < 2 * MIN_BIN or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return None
    cuts = np.unique(np.quantile(x, np.linspace(0, 1, BINS + 1)[1:-1]))
    cuts = cuts[cuts > x.min()]
    which = np.searchsorted(cuts, x, side="right")
    n = np.bincount(which, minlength=len(cuts) + 1).astype(float)
    k = np.bincount(which, weights=y, minlength=len(cuts) + 1)
    keep = n > 0
    rates, n, edges = k[keep] / n[keep], n[keep], _edges(cuts, keep)
    rho = pd.Series(x).corr(pd.Series(y), method="spearman")
    rising = bool(rho >= 0) if not np.isnan(rho) else True  # outcome rises with the value
    fitted = IsotonicRegression(increasing=rising).fit(np.arange(len(rates)), rates,
                                                       sample_weight=n).predict(np.arange(len(rates)))
    steps = _merge(list(zip(fitted, n, strict=True)), edges, max_steps)
    values = np.array([r for r, _, _ in steps])
    if values.max() - values.min() < 1e-9:
        return None
    health = (values - values.min()) / (values.max() - values.min()) * 100
    if not good_outcome:
        health = 100 - health
    return {"cuts": [float(c) for _, _, c in steps[1:] if c is not None],
            "scores": [round(float(h), 1) for h in health],
            "direction": "higher is better" if rising == good_outcome else "lower is better"}


def _edges(cuts: np.ndarray, keep: np.ndarray) -> list[float | None]:
    """The lower edge of each non-empty bin (None for the first)."""
    lower: list[float | None] = [None, *[float(c) for c in cuts]]
    return [e for e, k in zip(lower, keep, strict=True) if k]


def _merge(bins: list[tuple[float, float]], edges: list[float | None], max_steps: int
           ) -> list[tuple[float, float, float | None]]:
    """Adjacent bins with the same fitted rate become one step; then the closest neighbours
    (or a step with too few observations) merge until at most ``max_steps`` remain. Each step
    is (rate, observations, lower edge)."""
    steps: list[tuple[float, float, float | None]] = []
    for (rate, n), edge in zip(bins, edges, strict=True):
        if steps and abs(steps[-1][0] - rate) < 1e-12:
            steps[-1] = (steps[-1][0], steps[-1][1] + n, steps[-1][2])
        else:
            steps.append((rate, n, edge))
    while len(steps) > 1 and (len(steps) > max_steps or min(s[1] for s in steps) < MIN_BIN):
        small = [i for i, s in enumerate(steps) if s[1] < MIN_BIN]
        if small:
            i = small[0] - 1 if small[0] == len(steps) - 1 else small[0]
        else:
            i = int(np.argmin([abs(steps[j + 1][0] - steps[j][0]) for j in range(len(steps) - 1)]))
        (r1, n1, e1), (r2, n2, _) = steps[i], steps[i + 1]
        steps[i:i + 2] = [((r1 * n1 + r2 * n2) / (n1 + n2), n1 + n2, e1)]
    return steps


def apply_shape(shape: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The thresholds scheme: value < cuts[0] -> scores[0], ..., >= cuts[-1] -> scores[-1]."""
    scores = np.asarray(shape["scores"], dtype=float)
    out = scores[np.searchsorted(np.asarray(shape["cuts"], dtype=float), x, side="right")]
    return np.where(np.isnan(x), np.nan, out)


class SuggestedSchemes(BaseEstimator, ClassifierMixin):
    """A learned monotone thresholds scheme per numeric measure, then suggested weights on
    the reshaped scores (see the module docstring for ``X``)."""

    def __init__(self, good_outcome: bool = False, gap_days: int = 0, max_steps: int = 5,
                 random_state: int = 0) -> None:
        self.good_outcome = good_outcome
        self.gap_days = gap_days
        self.max_steps = max_steps
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, dates: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> SuggestedSchemes:
        X = np.asarray(X, dtype=float)
        p = X.shape[1] // 2
        self.shapes_ = [learn_shape(X[:, j], y, self.good_outcome, self.max_steps) for j in range(p)]
        self.weights_model_ = SuggestedWeights(
            good_outcome=self.good_outcome, gap_days=self.gap_days, random_state=self.random_state,
        ).fit(self.transform(X), y, dates=dates, groups=groups)
        self.classes_ = np.array([0, 1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The measure scores under the learned shapes (configured scores where none)."""
        X = np.asarray(X, dtype=float)
        p = X.shape[1] // 2
        cols = [apply_shape(s, X[:, j]) if s is not None else X[:, p + j]
                for j, s in enumerate(self.shapes_)]
        return np.column_stack(cols)

    def health_score(self, X: np.ndarray) -> np.ndarray:
        return self.weights_model_.health_score(self.transform(X))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.weights_model_.decision_function(self.transform(X))


def fit_all(values: np.ndarray, scores: np.ndarray, y: np.ndarray, names: list[str],
            good_outcome: bool, gap_days: int, seed: int, dates: np.ndarray,
            accounts: np.ndarray) -> dict[str, Any]:
    """The suggested schemes and weights fitted on every observation."""
    model = SuggestedSchemes(good_outcome=good_outcome, gap_days=gap_days, random_state=seed).fit(
        np.hstack([values, scores]), y, dates=dates, groups=accounts)
    w = model.weights_model_
    return {
        "measures": {n: {"scheme": ({"type": "thresholds", "cuts": s["cuts"], "scores": s["scores"]}
                                    if s is not None else None),
                         "direction": s["direction"] if s is not None else None,
                         "weight": float(w.weights_[j]), "flipped": bool(w.flipped_[j] and w.weights_[j] > 0)}
                     for j, (n, s) in enumerate(zip(names, model.shapes_, strict=True))},
        "weights": {n: float(w.weights_[j]) for j, n in enumerate(names)},
        "flipped": {n: bool(w.flipped_[j]) for j, n in enumerate(names)},
    }


def offer(schemes: dict[str, Any], configured: dict[str, Any], y: np.ndarray, accounts: np.ndarray,
          bands: list[tuple[str, float]], outcome: str, good_outcome: bool, resamples: int,
          seed: int, weights_auc: float | None = None) -> dict[str, Any]:
    """Whether the suggested schemes beat the configured scorecard out of sample beyond the
    bootstrap interval of the gain (same test observations, same resamples of accounts) with
    outcome rates monotone across the bands, and rank at least as well as re-weighting alone
    (``weights_auc``); and why (not)."""
    idx = schemes["_index"]
    if not len(idx) or schemes["auc"] is None or configured["auc"] is None:
        return {"offered": False, "why": "nothing was measured out of sample, so no scheme is "
                                         "suggested."}
    mine = bootstrap_aucs(y[idx], schemes["_risk"], accounts[idx], resamples, seed)
    theirs = bootstrap_aucs(y[idx], configured["_risk"], accounts[idx], resamples, seed)
    gain = schemes["auc"] - configured["auc"]
    lo, hi = (np.percentile(mine - theirs, [2.5, 97.5]) if len(mine) == len(theirs) and len(mine)
              else (np.nan, np.nan))
    health = schemes["_risk"] if good_outcome else -schemes["_risk"]
    names = [b for b, _ in bands]
    which = np.searchsorted(np.array([m for _, m in bands]), health, side="right") - 1
    rates = band_rates(y[idx], np.array(names, dtype=object)[np.clip(which, 0, len(names) - 1)], names)
    falls = monotonic(rates, falling=not good_outcome)
    out = {"auc_gain": float(gain), "gain_ci": [float(lo), float(hi)], "bands": rates,
           "bands_monotonic": falls}
    ci = f"95% CI of the gain {lo:+.3f} to {hi:+.3f} over {len(mine)} resamples of accounts"
    if not lo > 0:
        why = (f"not offered: out of sample they rank {gain:+.3f} AUC against the configured "
               f"scorecard ({ci}), not clearly better. Keep the configured schemes.")
    elif not falls:
        why = (f"not offered: they rank {gain:+.3f} AUC better than the configured scorecard out of "
               f"sample ({ci}), but the {outcome} rate does not "
               f"{'rise' if good_outcome else 'fall'} band by band with them.")
    elif weights_auc is not None and weights_auc > schemes["auc"]:
        why = (f"not offered: they rank {gain:+.3f} AUC better than the configured scorecard out of "
               f"sample ({ci}), but the suggested weights alone rank better still "
               f"({weights_auc:.3f} against {schemes['auc']:.3f}): re-weighting is suggested.")
        return {**out, "offered": False, "why": f"Suggested schemes {why}"}
    else:
        why = (f"offered: out of sample they rank {gain:+.3f} AUC better than the configured "
               f"scorecard ({ci}), and the {outcome} rate {'rises' if good_outcome else 'falls'} "
               f"band by band.")
    return {**out, "offered": bool(lo > 0 and falls), "why": f"Suggested schemes {why}"}
