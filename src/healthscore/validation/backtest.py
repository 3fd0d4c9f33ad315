"""The backtest: observations -> metrics, signal discovery and suggested weights.

:func:`validate` returns one JSON-ready dict holding every number; the report and the CLI
render it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from healthscore.config.model import INSUFFICIENT, ProjectConfig, Scorecard
from healthscore.errors import HealthScoreError
from healthscore.validation import metrics, observations, signals
from healthscore.validation.suggest import scorecard_yaml
from healthscore.validation.weights import (
    BestSingleMeasure,
    ConfiguredScore,
    L1Logistic,
    SuggestedWeights,
    out_of_sample,
)

Progress = Callable[[str], None]
MIN_SEGMENT = 30  # observations a segment needs for its own metrics


@dataclass(frozen=True)
class Options:
    dates: list[date]
    outcome: str = "churn"
    horizon_days: int = 90
    lead_days: int = 0
    observed_until: date | None = None
    scorecard: str | None = None
    segment_by: str = "segment"
    folds: int = 4
    bootstrap: int = 200
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def good_outcome(self) -> bool:
        return self.outcome != "churn"


def validate(config: ProjectConfig, options: Options, progress: Progress) -> dict[str, Any]:
    target = _target(config, options.scorecard)
    obs = observations.build(config, options.dates, options.outcome, options.horizon_days,
                             options.lead_days, options.observed_until, progress,
                             options.extra.get("every", "month"))
    progress("measuring|0|3")
    primary = obs.primary()
    result: dict[str, Any] = {
        "project": config.name,
        "generated_at": datetime.now().isoformat(timespec="seconds"),
        "outcome": options.outcome, "horizon_days": options.horizon_days,
        "lead_days": options.lead_days, "observed_until": obs.observed_until.isoformat(),
        "dates": [d.isoformat() for d in obs.dates],
        "dropped_dates": [d.isoformat() for d in obs.dropped_dates],
        "scorecard": target.name,
        "versions": {sc.name: sc.version(config.measures) for sc in config.all_scorecards},
        "overall": score_metrics(primary, _bands(config.scorecards[-1]), options),
        "segments": _by_segment(primary, config, options),
        "scorecards": {},
        "_primary": primary,
        "_events": obs.events,
    }
    for sc in config.all_scorecards:
        rows = obs.for_scorecard(sc.name)
        rows = rows[rows["is_primary"]] if sc in config.scorecards else rows
        if len(rows):
            result["scorecards"][sc.name] = score_metrics(rows, _bands(sc), options)
    frame = _target_rows(obs, config, target)
    progress("discovering signals|1|3")
    result["signals"] = signals.discover(frame, target, config.measures, options.good_outcome,
                                         obs.after_churn, obs.dated)
    result["rows_after_churn"] = obs.after_churn
    result["clusters"] = signals.correlated_clusters(frame, list(result["signals"]))
    progress("fitting suggested weights|2|3")
    result["weights"] = suggest(frame, target, options)
    flag_reversals(result["signals"], result["weights"])
    return result


def _target(config: ProjectConfig, name: str | None) -> Scorecard:
    if name is None:
        return config.scorecards[-1]
    for sc in config.all_scorecards:
        if sc.name == name:
            return sc
    names = ", ".join(sc.name for sc in config.all_scorecards)
    raise HealthScoreError(f"--scorecard: no scorecard named {name!r}. Scorecards: {names}.")


def _target_rows(obs: observations.Observations, config: ProjectConfig, sc: Scorecard) -> pd.DataFrame:
    rows = obs.for_scorecard(sc.name)
    if sc in config.scorecards:
        rows = rows[rows["is_primary"]]
    if rows["label"].nunique() < 2:
        raise HealthScoreError(
            f"validate: the {len(rows)} observations of scorecard {sc.name!r} have "
            f"{'no' if rows['label'].sum() == 0 else 'only'} {obs.outcome} outcomes: nothing to "
            f"learn from. Widen the date range or the --horizon."
        )
    return rows.reset_index(drop=True)


def _bands(sc: Scorecard) -> list[str]:
    return [b.name for b in sorted(sc.bands, key=lambda b: b.min)]


def _by_segment(primary: pd.DataFrame, config: ProjectConfig, options: Options) -> dict[str, Any]:
    col = options.segment_by
    if col not in primary.columns:
        return {}
    out = {}
    for value, part in primary.groupby(primary[col].fillna("(none)"), sort=True):
        if len(part) >= MIN_SEGMENT:
            out[str(value)] = score_metrics(part, _bands(config.scorecards[-1]), options, lite=True)
    return out


def score_metrics(rows: pd.DataFrame, bands: list[str], options: Options,
                  lite: bool = False) -> dict[str, Any]:
    """AUC (with interval), lift, band rates, calibration, false greens, lead time."""
    y_all = rows["label"].to_numpy()
    scored = rows[rows["score"].notna()]
    y = scored["label"].to_numpy()
    score = scored["score"].to_numpy(dtype=float)
    risk = score if options.good_outcome else 100 - score
    band = scored["band"].to_numpy()
    lo, hi = metrics.bootstrap_auc(y, risk, scored["account_id"].to_numpy(),
                                   0 if lite else options.bootstrap, options.seed)
    rates = metrics.band_rates(y_all, rows["band"].to_numpy(), bands)
    out: dict[str, Any] = {
        "observations": int(len(rows)), "accounts": int(rows["account_id"].nunique()),
        "outcomes": int(y_all.sum()), "base_rate": float(y_all.mean()) if len(y_all) else None,
        "insufficient": int((rows["band"] == INSUFFICIENT).sum()),
        "auc": metrics.auc(y, risk), "auc_ci": [lo, hi] if lo is not None else None,
        "top_decile_lift": metrics.top_decile_lift(y, risk),
        "bands": rates,
        "monotonic": metrics.monotonic(rates, falling=not options.good_outcome),
    }
    if lite:
        return out
    out["calibration"] = metrics.calibration(y, score)
    best, worst = bands[-1], bands[0]
    if options.good_outcome:
        # mirrored: a good outcome for an account the score had in its worst band
        out["false_red"] = metrics.false_green(y, band, worst)
        return out
    out["false_green"] = metrics.false_green(y, band, best)
    events = {a: d for a, d, lab in zip(rows["account_id"], rows["event_date"], rows["label"],
                                         strict=True) if lab == 1}
    history = list(zip(rows["account_id"], rows["as_of"], rows["band"], strict=True))
    out["lead_time"] = metrics.lead_times(history, events, worst)
    return out


def suggest(frame: pd.DataFrame, sc: Scorecard, options: Options) -> dict[str, Any]:
    """Out-of-sample comparison of four rankings and the suggested weights themselves."""
    names = [e.measure for e in sc.all_entries() if f"s__{e.measure}" in frame.columns]
    scores = frame[[f"s__{n}" for n in names]].to_numpy(dtype=float)
    raw = frame[[f"m__{n}" for n in names]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    configured = frame[["score"]].to_numpy(dtype=float)
    y = frame["label"].to_numpy()
    dates = frame["as_of"].to_numpy()
    gap = options.lead_days + options.horizon_days
    good = options.good_outcome
    contenders = {
        "configured scorecard": (ConfiguredScore(good_outcome=good), configured),
        "suggested weights": (SuggestedWeights(good_outcome=good, gap_days=gap), scores),
        "best single measure": (BestSingleMeasure(good_outcome=good), scores),
        "L1 logistic regression (measure values)": (L1Logistic(gap_days=gap), raw),
    }
    comparison = []
    for label, (est, X) in contenders.items():
        idx, risk, folds = out_of_sample(est, X, y, dates, options.folds, gap)
        comparison.append({
            "model": label, "observations": int(len(idx)),
            "auc": metrics.auc(y[idx], risk) if len(idx) else None,
            "top_decile_lift": metrics.top_decile_lift(y[idx], risk) if len(idx) else None,
            "folds": folds,
        })
    note = None
    if not any(c["observations"] for c in comparison):
        note = (f"too few as-of dates for {options.folds} time-ordered folds with a {gap}-day "
                f"outcome window between training and testing, so nothing was measured out of "
                f"sample. Use more dates (--every week, a wider --from/--to) or fewer folds "
                f"(validation.folds).")
    final = SuggestedWeights(good_outcome=good, gap_days=gap).fit(scores, y, dates=dates)
    baseline = L1Logistic(gap_days=gap).fit(raw, y, dates=dates)
    configured_w = signals._effective_weights(sc)
    measures = []
    for j, n in enumerate(names):
        w = float(final.weights_[j])
        flipped = bool(final.flipped_[j])
        measures.append({
            "measure": n, "configured_weight": round(configured_w.get(n, 0.0), 2),
            "suggested_weight": w, "flipped": flipped and w > 0,
            "effect_of_higher_value": _effect(w, flipped, _direction(raw[:, j], scores[:, j])),
            "l1_coefficient": float(baseline.coef_[j]),
        })
    weights = {n: float(final.weights_[j]) for j, n in enumerate(names)}
    flips = {n: bool(final.flipped_[j]) for j, n in enumerate(names)}
    return {"comparison": comparison, "measures": measures, "C": final.C_, "note": note,
            "baseline_C": baseline.C_, "weights": weights, "flipped": flips,
            "scorecard": sc.name}


def _direction(values: np.ndarray, scores: np.ndarray) -> float:
    """+1 when the configured scheme scores higher values higher, -1 when lower, 0 if unclear."""
    ok = ~np.isnan(values) & ~np.isnan(scores)
    if ok.sum() < 3 or np.std(values[ok]) == 0 or np.std(scores[ok]) == 0:
        return 0.0
    rho = pd.Series(values[ok]).corr(pd.Series(scores[ok]), method="spearman")
    return float(np.sign(rho)) if not np.isnan(rho) else 0.0


def _effect(weight: float, flipped: bool, direction: float) -> str:
    if weight <= 0 or direction == 0:
        return "none" if weight <= 0 else "unclear"
    sign = direction * (-1 if flipped else 1)
    return "raises health" if sign > 0 else "lowers health"


def flag_reversals(signals: dict[str, Any], weights: dict[str, Any]) -> None:
    """A measure with configured weight that the fitted weights score the other way round."""
    for m in weights["measures"]:
        info = signals.get(m["measure"])
        if info is None or not m["flipped"] or m["configured_weight"] <= 0:
            continue
        if any(f["flag"] == "contradicts" for f in info["flags"]):
            continue
        info["flags"].append({"flag": "contradicts", "why": (
            f"with the other measures taken into account, its score works backwards: the fitted "
            f"weights reverse its scheme ({m['suggested_weight']:.1f}% on the reversed score). "
            f"Reverse its scheme, or check what it really measures.")})


def suggestion_yaml(result: dict[str, Any], sc: Scorecard) -> str:
    w = result["weights"]
    comp = {c["model"]: c for c in w["comparison"]}
    header = (
        f"Suggested by 'healthscore validate' on {result['generated_at'][:10]} for scorecard "
        f"{sc.name}\nfrom {result['overall']['observations']} observations (as-of dates "
        f"{result['dates'][0]} .. {result['dates'][-1]}, outcome {result['outcome']} within "
        f"{result['horizon_days']} days).\nOut-of-sample AUC: configured "
        f"{_fmt(comp['configured scorecard']['auc'])}, suggested "
        f"{_fmt(comp['suggested weights']['auc'])}.\nReview it before use: copy it into "
        f"scorecards/ and list it in healthscore.yml. Nothing is applied automatically."
    )
    return scorecard_yaml(sc, w["weights"], w["flipped"], header)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result without private entries, with numpy values made plain."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items() if not str(k).startswith("_")}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, float) and (np.isnan(v) or np.isinf(v)):
            return None
        if isinstance(v, date):
            return v.isoformat()
        return v
    return clean(result)  # type: ignore[no-any-return]
