"""Metrics of a score against outcomes: AUC with a bootstrap interval, lift, band rates with
Wilson intervals, calibration, false greens and lead time.

Every function takes plain arrays. ``risk`` is "higher means the outcome is more likely"
(for churn that is ``100 - score``); ``y`` is 1 where the outcome happened.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

Z95 = 1.959963984540054
MIN_OUTCOMES = 20  # of each kind (outcome, no outcome) before an AUC is worth judging
FAMILY_ALPHA = 0.001  # chance of flagging any measure of a scorecard that is pure noise


def significance_z(tests: int) -> float:
    """The z a bootstrap estimate must clear (one-sided) for one of ``tests`` measures tested
    together to be flagged: Bonferroni at FAMILY_ALPHA for the whole scorecard."""
    return NormalDist().inv_cdf(1 - FAMILY_ALPHA / max(1, tests))


def bootstrap_z(estimate: float, resampled: np.ndarray, null: float = 0.0) -> float:
    """How many bootstrap standard errors ``estimate`` lies above ``null`` (inf when every
    resample agrees exactly and it is above, 0 when it equals the null)."""
    sd = float(np.std(resampled)) if len(resampled) > 1 else 0.0
    gap = estimate - null
    if sd > 0:
        return gap / sd
    return 0.0 if gap == 0 or not len(resampled) else math.copysign(math.inf, gap)


def too_few_outcomes(y: np.ndarray, outcome: str) -> str | None:
    """The note that replaces an AUC computed from fewer than MIN_OUTCOMES outcomes (or
    observations without one); None when there are enough."""
    k = int(np.sum(y))
    if k < MIN_OUTCOMES:
        return f"too few outcomes to judge ({k} {outcome}, at least {MIN_OUTCOMES} needed)"
    if len(y) - k < MIN_OUTCOMES:
        return (f"too few outcomes to judge ({len(y) - k} without {outcome}, at least "
                f"{MIN_OUTCOMES} needed)")
    return None


def auc(y: np.ndarray, risk: np.ndarray, weight: np.ndarray | None = None) -> float | None:
    """Area under the ROC curve; None when only one class is present."""
    y = np.asarray(y)
    if y.min(initial=0) == y.max(initial=0) or len(np.unique(y)) < 2:
        return None
    risk = np.asarray(risk)
    if weight is not None or not np.isfinite(risk).all():  # (scikit-learn says what is wrong)
        return float(roc_auc_score(y, risk, sample_weight=weight))
    return _roc_area(y == 1, risk)


def _roc_area(positive: np.ndarray, risk: np.ndarray) -> float:
    """``roc_auc_score`` of 0/1 labels, bit for bit: the same curve (a point per distinct risk,
    collinear points dropped) and the same trapezoids, without its input checks, which cost
    several times the sums on a backtest's thousand AUCs of a few thousand rows each."""
    order = np.argsort(risk, kind="stable")[::-1]  # ties: their order does not change the sums
    ranked = risk[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(positive[order], dtype=np.float64)[ends]
    fps = 1 + ends - tps
    if len(fps) > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[keep], tps[keep]
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def bootstrap_auc(
    y: np.ndarray, risk: np.ndarray, clusters: np.ndarray, n: int, seed: int
) -> tuple[float | None, float | None]:
    """95% interval of the AUC, resampling whole accounts (an account's observations at
    different dates are not independent)."""
    if n <= 0 or auc(y, risk) is None:
        return None, None
    values = bootstrap_aucs(y, risk, clusters, n, seed)
    if not len(values):
        return None, None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_aucs(y: np.ndarray, risk: np.ndarray, clusters: np.ndarray, n: int, seed: int,
                   chunk: int = 50) -> np.ndarray:
    """The AUC on each of ``n`` resamples of whole accounts (those with one class left out).

    A resample weighs each observation by how often its account was drawn; the weighted AUC
    is computed for all resamples at once over the observations sorted by risk (ties count
    one half), which equals ``roc_auc_score`` with those weights."""
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    ids, inverse = np.unique(clusters, return_inverse=True)
    order = np.argsort(risk, kind="stable")
    sorted_risk = np.asarray(risk, dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, sorted_risk[1:] != sorted_risk[:-1]])
    ys, inv = y[order], inverse[order]
    out = []
    for first in range(0, n, chunk):
        draws = rng.integers(0, len(ids), (min(chunk, n - first), len(ids)))
        counts = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]).astype(float)
        w = counts[:, inv]
        pos = np.add.reduceat(w * ys, starts, axis=1)
        neg = np.add.reduceat(w * (1 - ys), starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        den = pos.sum(axis=1) * neg.sum(axis=1)
        num = (pos * (below + 0.5 * neg)).sum(axis=1)
        out.append(num[den > 0] / den[den > 0])
    return np.concatenate(out) if out else np.array([])


def top_decile_lift(y: np.ndarray, risk: np.ndarray) -> float | None:
    """Outcome rate among the riskiest 10% divided by the overall rate."""
    base = float(np.mean(y)) if len(y) else 0.0
    if base == 0:
        return None
    k = max(1, int(math.ceil(len(y) * 0.1)))
    order = np.argsort(-risk, kind="stable")
    return float(np.mean(y[order[:k]])) / base


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """Wilson 95% interval of a proportion k/n."""
    if n == 0:
        return None, None
    p = k / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def band_rates(y: np.ndarray, bands: np.ndarray, order: list[str]) -> list[dict[str, Any]]:
    """Outcome rate per band (in ``order``, worst first) with Wilson intervals."""
    rows = []
    for band in order:
        mask = bands == band
        n, k = int(mask.sum()), int(y[mask].sum())
        lo, hi = wilson(k, n)
        rows.append({"band": band, "observations": n, "outcomes": k,
                     "rate": k / n if n else None, "ci_low": lo, "ci_high": hi})
    return rows


def monotonic(rates: list[dict[str, Any]], falling: bool) -> bool:
    """Whether the rates fall (or rise) from the first band to the last, ignoring empty bands."""
    values = [r["rate"] for r in rates if r["rate"] is not None]
    pairs = list(zip(values, values[1:], strict=False))
    return all(a > b for a, b in pairs) if falling else all(a < b for a, b in pairs)


def calibration(y: np.ndarray, score: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Observed rate per score bin beside the rate a logistic fit of the score predicts."""
    edges = np.linspace(0, 100, bins + 1)
    which = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    fitted = _platt(y, score)
    rows = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if not n:
            continue
        k = int(y[mask].sum())
        lo, hi = wilson(k, n)
        rows.append({
            "from": float(edges[b]), "to": float(edges[b + 1]), "observations": n, "outcomes": k,
            "observed": k / n, "ci_low": lo, "ci_high": hi,
            "predicted": float(np.mean(fitted[mask])) if fitted is not None else None,
        })
    brier = float(np.mean((fitted - y) ** 2)) if fitted is not None else None
    return {"bins": rows, "brier": brier}


def _platt(y: np.ndarray, score: np.ndarray) -> np.ndarray | None:
    if len(np.unique(y)) < 2:
        return None
    model = LogisticRegression().fit(score.reshape(-1, 1) / 100.0, y)
    return np.asarray(model.predict_proba(score.reshape(-1, 1) / 100.0)[:, 1])


def false_green(y: np.ndarray, bands: np.ndarray, good_band: str) -> dict[str, Any]:
    """Of the observations whose outcome happened, the share that were in the best band."""
    hit = y == 1
    n = int(hit.sum())
    k = int((bands[hit] == good_band).sum())
    lo, hi = wilson(k, n)
    return {"band": good_band, "outcomes": n, "in_band": k,
            "rate": k / n if n else None, "ci_low": lo, "ci_high": hi}


def lead_times(
    history: list[tuple[str, Any, str]], events: dict[str, Any], bad_band: str
) -> dict[str, Any]:
    """Days from an account first turning ``bad_band`` (the start of its last unbroken run in
    that band before the event) to the event.

    ``history`` is (account, as_of, band) rows; ``events`` maps account -> event date."""
    by_account: dict[str, list[tuple[Any, str]]] = {}
    for account, day, band in history:
        if account in events and day < events[account]:
            by_account.setdefault(account, []).append((day, band))
    days = []
    for account, rows in by_account.items():
        rows.sort()
        first = None
        for day, band in rows:
            first = (first or day) if band == bad_band else None
        if first is not None:
            days.append((events[account] - first).days)
    warned = len(days)
    total = len(by_account)
    return {
        "accounts": total, "warned": warned,
        "warned_share": warned / total if total else None,
        "median_days": float(np.median(days)) if days else None,
        "quartiles_days": [float(q) for q in np.percentile(days, [25, 75])] if days else None,
    }
