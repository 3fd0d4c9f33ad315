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

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from threadpoolctl import threadpool_limits

from healthscore.validation.weights import SuggestedWeights

BINS = 10  # candidate cuts: the deciles of a measure's values
MIN_BIN = 30  # observations a step needs (fewer: merged with its neighbour)


def learn_shape(x: np.ndarray, y: np.ndarray, good_outcome: bool, max_steps: int
                ) -> dict[str, Any] | None:
    """Cuts and health scores (0-100) of a monotone step function of ``x``; None when the
    values are too few or the shape is flat. ``direction`` says whether higher values are
    healthier ('higher is better') or not."""
    return shape_by_steps(x, y, good_outcome, (max_steps,))[max_steps]


def shape_by_steps(x: np.ndarray, y: np.ndarray, good_outcome: bool, steps: Sequence[int]
                   ) -> dict[int, dict[str, Any] | None]:
    """:func:`learn_shape` for each of ``steps`` (at most that many steps): the bins and their
    monotone fit are computed once, only the merging differs."""
    ok = ~np.isnan(x)
    x, y = x[ok], y[ok]
    if not _learnable(x, y):
        return dict.fromkeys(steps)
    rates, n, edges = _binned(x, y.astype(float))
    return _step_schemes(rates, n, edges, _rising(x, y), good_outcome, steps)


def _learnable(x: np.ndarray, y: np.ndarray) -> bool:
    return len(x) >= 2 * MIN_BIN and len(np.unique(x)) >= 2 and len(np.unique(y)) >= 2


def _rising(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether the outcome rises with the value (Spearman's sign; rising when unclear)."""
    rho = pd.Series(x).corr(pd.Series(y), method="spearman")
    return bool(rho >= 0) if not np.isnan(rho) else True


def _binned(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    """The mean of ``v`` per decile bin of ``x`` (empty bins left out), the bins' sizes and
    their lower edges."""
    cuts = np.unique(np.quantile(x, np.linspace(0, 1, BINS + 1)[1:-1]))
    cuts = cuts[cuts > x.min()]
    which = np.searchsorted(cuts, x, side="right")
    n = np.bincount(which, minlength=len(cuts) + 1).astype(float)
    k = np.bincount(which, weights=v, minlength=len(cuts) + 1)
    keep = n > 0
    return k[keep] / n[keep], n[keep], _edges(cuts, keep)


def _step_schemes(rates: np.ndarray, n: np.ndarray, edges: list[float | None], rising: bool,
                  good_outcome: bool, steps: Sequence[int]) -> dict[int, dict[str, Any] | None]:
    """Per-bin outcome rates (or log-odds) made monotone (isotonic regression, weighted by the
    bins' sizes), then for each of ``steps`` merged into at most that many steps and scaled to
    0-100 health."""
    fitted = IsotonicRegression(increasing=rising).fit(np.arange(len(rates)), rates,
                                                       sample_weight=n).predict(np.arange(len(rates)))
    bins = list(zip(fitted, n, strict=True))
    return {k: _scheme(_merge(bins, edges, k), rising, good_outcome) for k in steps}


def _scheme(steps: list[tuple[float, float, float | None]], rising: bool, good_outcome: bool
            ) -> dict[str, Any] | None:
    """Merged steps scaled to 0-100 health as a thresholds scheme; None when flat."""
    values = np.array([r for r, _, _ in steps])
    if values.max() - values.min() < 1e-9:
        return None
    health = (values - values.min()) / (values.max() - values.min()) * 100
    if not good_outcome:
        health = 100 - health
    return {"cuts": [float(c) for _, _, c in steps[1:] if c is not None],
            "scores": [round(float(h), 1) for h in health],
            "direction": "higher is better" if rising == good_outcome else "lower is better"}


def additive_shapes(X: np.ndarray, y: np.ndarray, good_outcome: bool, max_steps: int,
                    random_state: int = 0) -> list[dict[str, Any] | None]:
    """Every numeric measure's shape learned together, as an additive model: scikit-learn's
    HistGradientBoostingClassifier with no interactions (``interaction_cst``, one measure per
    tree: a GAM), each shape monotone (``monotonic_cst``) in the direction the data gives the
    measure alone, with few leaves. Each measure's shape function (the model's log-odds as its
    value moves, the others held still) is averaged over the decile bins of its values and
    turned into a few-step thresholds scheme like :func:`learn_shape`'s. Unlike the outcome
    rate of a measure alone, it is the measure's effect with the others taken into account."""
    return additive_shapes_by_steps(X, y, good_outcome, (max_steps,), random_state)[max_steps]


def additive_shapes_by_steps(X: np.ndarray, y: np.ndarray, good_outcome: bool,
                             steps: Sequence[int], random_state: int = 0
                             ) -> dict[int, list[dict[str, Any] | None]]:
    """:func:`additive_shapes` for each of ``steps``: the model is fitted once (the number of
    steps only changes how its shape functions are merged)."""
    X = np.asarray(X, dtype=float)
    out: dict[int, list[dict[str, Any] | None]] = {k: [None] * X.shape[1] for k in steps}
    usable = [j for j in range(X.shape[1]) if _learnable(X[~np.isnan(X[:, j]), j],
                                                         y[~np.isnan(X[:, j])])]
    if not usable or len(np.unique(y)) < 2:
        return out
    sub = X[:, usable]
    rising = [_rising(sub[~np.isnan(sub[:, k]), k], y[~np.isnan(sub[:, k])])
              for k in range(len(usable))]
    model = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=3, min_samples_leaf=MIN_BIN,
        interaction_cst=[[k] for k in range(len(usable))],
        monotonic_cst=[1 if r else -1 for r in rising], early_stopping=False,
        random_state=random_state)
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(sub, y)
        effects = _shape_functions(model, sub)
    for k, j in enumerate(usable):
        ok = ~np.isnan(sub[:, k])
        rates, n, edges = _binned(sub[ok, k], effects[k])
        for steps_k, scheme in _step_schemes(rates, n, edges, rising[k], good_outcome,
                                             steps).items():
            out[steps_k][j] = scheme
    return out


def _shape_functions(model: HistGradientBoostingClassifier, X: np.ndarray) -> list[np.ndarray]:
    """Per column of ``X``, the model's log-odds at each known value of that column with every
    other column missing (at its missing-value leaf). Each distinct value is predicted once,
    all columns in one call: a row's prediction depends on that row alone."""
    probes, inverses = [], []
    for k in range(X.shape[1]):
        values, inverse = np.unique(X[~np.isnan(X[:, k]), k], return_inverse=True)
        probe = np.full((len(values), X.shape[1]), np.nan)
        probe[:, k] = values
        probes.append(probe)
        inverses.append(inverse)
    predicted = model.decision_function(np.vstack(probes))
    starts = np.cumsum([0] + [len(p) for p in probes])
    return [predicted[starts[k]:starts[k + 1]][inverse] for k, inverse in enumerate(inverses)]


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


ISOTONIC, ADDITIVE_TREES = "isotonic", "additive trees"


def learn_shapes(values: np.ndarray, y: np.ndarray, good_outcome: bool, max_steps: int,
                 learner: str = ISOTONIC, random_state: int = 0) -> list[dict[str, Any] | None]:
    """A shape per column of ``values``: each measure alone (``isotonic``, :func:`learn_shape`)
    or all together (``additive trees``, :func:`additive_shapes`)."""
    return shapes_by_steps(values, y, good_outcome, (max_steps,), learner, random_state)[max_steps]


def shapes_by_steps(values: np.ndarray, y: np.ndarray, good_outcome: bool, steps: Sequence[int],
                    learner: str = ISOTONIC, random_state: int = 0
                    ) -> dict[int, list[dict[str, Any] | None]]:
    """:func:`learn_shapes` for each of ``steps`` at once: what does not depend on the number
    of steps (the bins, the monotone fits, the additive model) is learned once."""
    if learner == ADDITIVE_TREES:
        return additive_shapes_by_steps(values, y, good_outcome, steps, random_state)
    per_measure = [shape_by_steps(values[:, j], y, good_outcome, steps)
                   for j in range(values.shape[1])]
    return {k: [m[k] for m in per_measure] for k in steps}


class SuggestedSchemes(BaseEstimator, ClassifierMixin):
    """A learned monotone thresholds scheme per numeric measure, then suggested weights on
    the reshaped scores (see the module docstring for ``X``). ``learner`` says how the shapes
    are learned (see :func:`learn_shapes`); ``C`` fixes the weights' penalty (else chosen on
    later dates than those fitted)."""

    def __init__(self, good_outcome: bool = False, gap_days: int = 0, max_steps: int = 5,
                 learner: str = ISOTONIC, C: float | None = None, random_state: int = 0) -> None:
        self.good_outcome = good_outcome
        self.gap_days = gap_days
        self.max_steps = max_steps
        self.learner = learner
        self.C = C
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, dates: np.ndarray | None = None,
            groups: np.ndarray | None = None) -> SuggestedSchemes:
        X = np.asarray(X, dtype=float)
        p = X.shape[1] // 2
        self.shapes_ = learn_shapes(X[:, :p], y, self.good_outcome, self.max_steps, self.learner,
                                    self.random_state)
        self.weights_model_ = SuggestedWeights(
            good_outcome=self.good_outcome, gap_days=self.gap_days, C=self.C,
            random_state=self.random_state,
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
