"""Signal discovery: what each measure says about the outcome, and what looks wrong.

For every measure of the scorecard: the outcome rate by decile of its value (the cohort
curve), its univariate AUC and direction, and flags:

* ``contradicts`` - its configured score works backwards: accounts it scores higher have the
  outcome *more* often (for churn), significantly across resamples of accounts (Bonferroni
  over the scorecard's weighted measures, see ``metrics.significance_z``);
* ``leaky`` - near-perfect separation, or it reads a column that holds today's state (which
  can reflect the outcome itself) or the outcomes; or partial leaks: rows it reads are dated
  after their account churned, or its value tells the outcome apart only in the last days
  before it (a value that moves once the outcome is under way: a back-dated feed);
* ``correlated`` - it moves with measures in other groups (|Spearman| >= 0.8): one group
  should hold them, or one should go;
* ``low_coverage`` - too few observations have a value for it to matter.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pandas as pd

from healthscore.config.model import Measure, Scorecard
from healthscore.entities import ENTITIES
from healthscore.validation.metrics import auc, bootstrap_aucs, bootstrap_z, significance_z, wilson

LEAKY_AUC = 0.95
CORRELATED = 0.8
MIN_COVERAGE = 0.25
# a partial leak: separation this strong within NEAR_DAYS of the outcome and this weak before
NEAR_DAYS = 30
LATE_NEAR, LATE_FAR = 0.8, 0.6
MIN_LATE = 10  # outcome observations each side needs
# account columns that hold the state of today, not of the as-of date
CURRENT_STATE = {"accounts": ("arr", "mrr", "licensed_seats", "lifecycle_stage", "renewal_date",
                              "churn_date", "modules_purchased", "plan")}


def discover(
    frame: pd.DataFrame, scorecard: Scorecard, measures: dict[str, Measure], good_outcome: bool,
    after_churn: dict[str, int] | None = None, dated: frozenset[str] = frozenset(),
    bootstrap: int = 200, seed: int = 0, after_by_measure: dict[str, int] | None = None,
) -> dict[str, Any]:
    """``dated`` names columns read point-in-time although the entity's are today's state
    (``accounts.licensed_seats`` from an account_history source): no leak flag for them.
    ``bootstrap`` resamples of accounts (seeded) give each score AUC its interval and its
    significance."""
    y = frame["label"].to_numpy()
    clusters = frame["account_id"].to_numpy()
    groups = {e.measure: g.path for g in scorecard.all_groups() for e in g.entries}
    weights = _effective_weights(scorecard)
    out = {}
    for name in scorecard.measures:
        if f"m__{name}" not in frame.columns:
            continue
        out[name] = _measure(frame, name, y, clusters, good_outcome, measures[name], dated,
                             bootstrap, seed)
        out[name]["group"] = groups.get(name)
        out[name]["weight"] = weights.get(name, 0.0)
        _flag_rows_after_churn(out[name], measures[name], after_churn or {}, after_by_measure)
        _flag_late_mover(out[name], frame, name, y)
    tested = [n for n, info in out.items() if info["weight"] > 0 and info.get("score_auc") is not None]
    for name in tested:
        _flag_contradiction(out[name], len(tested))
    for cluster in correlated_clusters(frame, list(out)):
        spread = sorted({groups.get(m) or "" for m in cluster["measures"]})
        cluster["groups"] = spread
        if len(spread) > 1:
            for m in cluster["measures"]:
                others = ", ".join(x for x in cluster["measures"] if x != m)
                out[m]["flags"].append({"flag": "correlated", "why": (
                    f"moves with {others} (|Spearman| >= {cluster['min_abs_rho']:.2f}) but they sit "
                    f"in different groups ({', '.join(spread)}): group them, or keep one.")})
    return out


def _flag_rows_after_churn(info: dict[str, Any], m: Measure, after_churn: dict[str, int],
                           after_by_measure: dict[str, int] | None) -> None:
    """Rows recorded after the outcome among those the measure reads (through its filter,
    when counted per measure; else any of its entity's)."""
    entity = m.entity or ("manual_values" if m.type == "manual" else None)
    if after_by_measure is not None and m.name in after_by_measure:
        n = after_by_measure[m.name]
    else:
        n = after_churn.get(entity or "", 0)
    if not n:
        return
    which = " matching its filter" if getattr(m, "filter", None) else ""
    info["flags"].append({"flag": "leaky", "why": (
        f"{n} rows of {entity}{which} are dated after their account churned: data recorded "
        f"after the outcome. Check how the source stamps its rows.")})


def _flag_late_mover(info: dict[str, Any], frame: pd.DataFrame, name: str, y: np.ndarray) -> None:
    """A partial leak: the value tells the outcome apart only in the last ``NEAR_DAYS`` before
    it (a value that moves once the outcome is under way, typically rows written after it and
    stamped earlier), not further ahead. ``info['by_distance']`` keeps both AUCs."""
    values = pd.to_numeric(frame[f"m__{name}"], errors="coerce").to_numpy(dtype=float)
    if info.get("kind") == "category" or info.get("auc") is None or "event_date" not in frame:
        return
    ahead = (pd.to_datetime(frame["event_date"]) - pd.to_datetime(frame["as_of"])).dt.days.to_numpy()
    sign = 1.0 if info["auc"] >= 0.5 else -1.0
    ok = ~np.isnan(values)
    rest = ok & (y == 0)
    near = ok & (y == 1) & (ahead <= NEAR_DAYS)
    far = ok & (y == 1) & (ahead > NEAR_DAYS)
    if min(near.sum(), far.sum()) < MIN_LATE or not rest.any():
        return

    def separation(part: np.ndarray) -> float | None:
        keep = part | rest
        return auc(part[keep].astype(int), sign * values[keep])

    a_near, a_far = separation(near), separation(far)
    info["by_distance"] = {"near_days": NEAR_DAYS, "auc_near": a_near, "auc_far": a_far,
                           "outcomes_near": int(near.sum()), "outcomes_far": int(far.sum())}
    if a_near is None or a_far is None or a_near < LATE_NEAR or a_far >= LATE_FAR:
        return
    info["flags"].append({"flag": "leaky", "why": (
        f"tells the outcome apart only in the last {NEAR_DAYS} days before it (AUC {a_near:.2f}, "
        f"against {a_far:.2f} further ahead): its value moves only once the outcome is under "
        f"way, as rows written after it and stamped earlier (a back-dated feed) do. Check when "
        f"its rows are really recorded.")})


def _effective_weights(scorecard: Scorecard) -> dict[str, float]:
    """Each measure's share of the total score in percent, nesting included."""
    out: dict[str, float] = {}

    def walk(group: Any, share: float) -> None:
        for e in group.entries:
            out[e.measure] = out.get(e.measure, 0.0) + share * e.weight / 100
        for g in group.groups:
            walk(g, share * g.weight / 100)

    for root in scorecard.groups:
        walk(root, root.weight)
    return out


def is_text(values: pd.Series) -> bool:
    """Whether a measure's values are categories (text, dates...) rather than numbers."""
    present = values.dropna()
    if not len(present) or values.dtype.kind in "biuf":
        return False
    return bool(pd.to_numeric(present, errors="coerce").isna().any())


def _measure(frame: pd.DataFrame, name: str, y: np.ndarray, clusters: np.ndarray,
             good_outcome: bool, measure: Measure, dated: frozenset[str] = frozenset(),
             bootstrap: int = 200, seed: int = 0) -> dict[str, Any]:
    column = frame[f"m__{name}"]
    if is_text(column):
        info = _category_signal(column, y, clusters)
    else:
        info = _numeric_signal(pd.to_numeric(column, errors="coerce").to_numpy(dtype=float), y)
    coverage = info["coverage"]
    score_col = f"s__{name}"
    if score_col in frame.columns:
        score = frame[score_col].to_numpy(dtype=float)
        ok = ~np.isnan(score)
        risk = score[ok] if good_outcome else 100 - score[ok]
        a = info["score_auc"] = auc(y[ok], risk)
        boot = (bootstrap_aucs(y[ok], risk, clusters[ok], bootstrap, seed) if a is not None
                else np.array([]))
        info["score_auc_ci"] = None
        info["score_auc_z"] = None
        if a is not None and len(boot):
            info["score_auc_ci"] = [float(v) for v in np.percentile(boot, [2.5, 97.5])]
            # standard errors the AUC lies below 0.5 (positive: the score works backwards)
            info["score_auc_z"] = bootstrap_z(0.5, boot, a)
        info["resamples"] = len(boot)
    if coverage < MIN_COVERAGE:
        info["flags"].append({"flag": "low_coverage", "why": (
            f"only {coverage:.0%} of observations have a value (under {MIN_COVERAGE:.0%}): it "
            f"rarely counts. Check its source and window, or drop it.")})
    _flag_leak(info, measure, dated)
    return info


def _numeric_signal(values: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    has = ~np.isnan(values)
    info: dict[str, Any] = {"coverage": float(has.mean()) if len(has) else 0.0, "flags": []}
    a = auc(y[has], values[has]) if has.sum() else None
    info["auc"] = a
    if a is not None:
        info["direction"] = "higher: more outcomes" if a > 0.5 else "higher: fewer outcomes"
        info["separation"] = max(a, 1 - a)
    info["deciles"] = deciles(values[has], y[has])
    return info


def _category_signal(column: pd.Series, y: np.ndarray, clusters: np.ndarray) -> dict[str, Any]:
    """Coverage, the outcome rate per category and the AUC of the categories: each
    observation ranked by its category's outcome rate among *other* accounts (out-of-fold,
    folds grouped by account), so a category held by one account cannot look predictive."""
    has = column.notna().to_numpy()
    text = column[has].astype(str).to_numpy()
    info: dict[str, Any] = {"coverage": float(has.mean()) if len(has) else 0.0, "flags": [],
                            "kind": "category", "deciles": [], "categories": categories(text, y[has])}
    a = auc(y[has], out_of_fold_rates(text, y[has], clusters[has])) if has.sum() else None
    info["auc"] = a
    if a is not None:
        info["direction"] = "by category"
        info["separation"] = a
    return info


def categories(text: np.ndarray, y: np.ndarray, top: int = 20) -> list[dict[str, Any]]:
    """Outcome rate per category (the most frequent ``top``, then the rest as '(other)')."""
    counts = pd.Series(text).value_counts(sort=False)
    keep = sorted(counts.index, key=lambda c: (-counts[c], c))[:top]
    label = np.where(np.isin(text, keep), text, "(other)")
    rows = []
    for cat in [*keep, *(["(other)"] if len(counts) > top else [])]:
        mask = label == cat
        n, k = int(mask.sum()), int(y[mask].sum())
        lo, hi = wilson(k, n)
        rows.append({"category": str(cat), "observations": n, "outcomes": k, "rate": k / n,
                     "ci_low": lo, "ci_high": hi})
    return rows


def out_of_fold_rates(text: np.ndarray, y: np.ndarray, clusters: np.ndarray, folds: int = 5,
                      prior: float = 10.0) -> np.ndarray:
    """Each observation's category outcome rate learnt on the other folds (grouped by
    account), shrunk towards the overall rate by ``prior`` pseudo-observations."""
    out = np.full(len(y), float(np.mean(y)) if len(y) else 0.0)
    ids = np.unique(clusters)
    if len(ids) < 2:
        return out
    fold_of = dict(zip(ids, np.random.default_rng(0).permutation(len(ids)) % folds, strict=True))
    fold = np.array([fold_of[c] for c in clusters])
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any() or not train.any():
            continue
        base = float(np.mean(y[train]))
        stats = pd.DataFrame({"c": text[train], "y": y[train]}).groupby("c")["y"].agg(["sum", "count"])
        rate = (stats["sum"] + prior * base) / (stats["count"] + prior)
        out[test] = pd.Series(text[test]).map(rate).fillna(base).to_numpy(dtype=float)
    return out


def _flag_contradiction(info: dict[str, Any], tested: int) -> None:
    """Its score ranks backwards beyond chance: the AUC of the score lies below 0.5 by more
    bootstrap standard errors than any of the ``tested`` measures would by chance."""
    a, ci, z = info.get("score_auc"), info.get("score_auc_ci"), info.get("score_auc_z")
    if a is None or ci is None or z is None or z < significance_z(tested):
        return
    info["flags"].append({"flag": "contradicts", "why": (
        f"its score works backwards: accounts it scores higher have the outcome more often "
        f"(AUC of its score {a:.2f}, 95% CI {ci[0]:.2f}-{ci[1]:.2f} over {info['resamples']} "
        f"resamples of accounts: below 0.5 beyond chance for any of the {tested} weighted "
        f"measures) yet it carries {info['weight']:.1f}% of the score. Reverse its scheme or "
        f"drop it.")})


def _flag_leak(info: dict[str, Any], measure: Measure, dated: frozenset[str]) -> None:
    sep = info.get("separation")
    if sep is not None and sep >= LEAKY_AUC:
        info["flags"].append({"flag": "leaky", "why": (
            f"separates the outcome almost perfectly (AUC {sep:.2f} >= {LEAKY_AUC}): real signals "
            f"rarely do. Check that it is not recorded after the outcome or copied from it.")})
    reads = [c for c in _current_state_columns(measure) if c not in dated]
    if reads:
        info["flags"].append({"flag": "leaky", "why": (
            f"reads {', '.join(reads)}, which hold today's state, not the state on the as-of "
            f"date: in a backtest they can reflect the outcome. Use a dated source instead.")})


def _current_state_columns(measure: Measure) -> list[str]:
    """Columns holding today's state that the measure reads (its own entity's bare columns, or
    ``entity.column`` anywhere in its definition)."""
    entity = measure.entity or ("accounts" if measure.type == "attribute" else None)
    if entity == "outcomes":
        return ["the outcomes"]
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", " ".join(_strings(_definition(measure)))))
    found = set()
    for name, cols in _state_columns().items():
        found |= {f"{name}.{c}" for c in cols if f"{name}.{c}" in words}
        if name == entity:
            found |= {f"{name}.{c}" for c in cols if c in words}
    return sorted(found)


def _definition(measure: Measure) -> dict[str, Any]:
    """What the measure reads and computes, from its typed fields (not where or how it was written)."""
    skip = {"spec", "file", "description", "scheme", "window", "category", "missing", "depends_on"}
    return {f.name: getattr(measure, f.name) for f in dataclasses.fields(measure) if f.name not in skip}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in ("description", "scheme") for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _state_columns() -> dict[str, set[str]]:
    out = {name: set(e.current_state) for name, e in ENTITIES.items()}
    for name, cols in CURRENT_STATE.items():
        out[name] = out.get(name, set()) | set(cols)
    return out


def deciles(values: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Outcome rate per decile of a measure's value (ties stay in one bin)."""
    if len(values) < 10:
        return []
    bins = pd.qcut(values, 10, duplicates="drop")
    frame = pd.DataFrame({"bin": bins, "v": values, "y": y})
    rows = []
    for _, part in frame.groupby("bin", observed=True):
        n, k = len(part), int(part["y"].sum())
        lo, hi = wilson(k, n)
        rows.append({"from": float(part["v"].min()), "to": float(part["v"].max()),
                     "observations": n, "outcomes": k, "rate": k / n, "ci_low": lo, "ci_high": hi})
    return rows


def correlated_clusters(frame: pd.DataFrame, names: list[str], sample: int = 20000) -> list[dict[str, Any]]:
    """Groups of measures linked by |Spearman| >= CORRELATED (connected components)."""
    cols = [f"m__{n}" for n in names]
    if len(cols) < 2:
        return []
    data = frame[cols].apply(pd.to_numeric, errors="coerce")
    if len(data) > sample:
        data = data.sample(sample, random_state=0)
    rho = data.rank().corr(min_periods=30).to_numpy()
    parent = list(range(len(names)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if not np.isnan(rho[i, j]) and abs(rho[i, j]) >= CORRELATED:
                parent[find(i)] = find(j)
                links.append(abs(rho[i, j]))
    comps: dict[int, list[int]] = {}
    for i in range(len(names)):
        comps.setdefault(find(i), []).append(i)
    out = []
    for members in comps.values():
        if len(members) < 2:
            continue
        sub = rho[np.ix_(members, members)]
        strongest = [abs(sub[a, b]) for a in range(len(members)) for b in range(len(members))
                     if a != b and not np.isnan(sub[a, b]) and abs(sub[a, b]) >= CORRELATED]
        out.append({"measures": [names[i] for i in members],
                    "min_abs_rho": float(min(strongest)) if strongest else CORRELATED})
    return out
