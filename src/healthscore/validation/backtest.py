"""The backtest: observations -> metrics, signal discovery and suggested weights.

:func:`validate` returns one JSON-ready dict holding every number; the report and the CLI
render it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from healthscore.config.model import INSUFFICIENT, ProjectConfig, Scorecard
from healthscore.errors import HealthScoreError
from healthscore.validation import choose, metrics, observations, question, signals
from healthscore.validation.options import Options
from healthscore.validation.shapes import SuggestedSchemes
from healthscore.validation.suggest import scorecard_yaml
from healthscore.validation.weights import (
    TIME_ORDERED,
    BestSingleMeasure,
    ConfiguredScore,
    GradientBoosting,
    L1Logistic,
    SuggestedWeights,
    bootstrap_weights,
    out_of_sample,
    repeated_fits_shared,
    splits,
)

Progress = Callable[[str], None]
MIN_SEGMENT = 30  # observations a segment needs for its own metrics
WEIGHT_RESAMPLES = 50  # account-bootstrap refits of the suggested weights (at most bootstrap)
GBM = "gradient-boosted trees (measure values)"
SCHEMES = "suggested schemes and weights"
SUGGESTED = "suggested scorecard (chosen on later dates)"
L1 = "L1 logistic regression (measure values)"
TOO_GOOD = 0.95  # an out-of-sample AUC above this is rarely real for churn or renewal
TOO_FAR = 0.12  # nor one this far above the configured scorecard's
SUSPECT = 0.85  # a measure separating the outcome this well on its own is the first suspect


def validate(config: ProjectConfig, options: Options, progress: Progress) -> dict[str, Any]:
    target = _target(config, options.scorecard)
    obs = observations.build(config, options.dates, options.outcome, options.horizon_days,
                             options.lead_days, options.observed_until, progress,
                             options.extra.get("every", "month"))
    progress("measuring|0|3")
    primary = obs.primary()
    result: dict[str, Any] = {
        "project": config.name,
        "generated_at": options.now.isoformat(timespec="seconds"),
        "outcome": options.outcome, "horizon_days": options.horizon_days,
        "lead_days": options.lead_days, "observed_until": obs.observed_until.isoformat(),
        "dates": [d.isoformat() for d in obs.dates],
        "dropped_dates": [d.isoformat() for d in obs.dropped_dates],
        "scorecard": target.name,
        "versions": {sc.name: sc.version(config.measures) for sc in config.all_scorecards},
        "overall": score_metrics(primary, _bands(config.scorecards[-1]), options),
        "question": None if options.good_outcome else
        question.answer(primary, _bands(config.scorecards[-1])),
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
                                         obs.after_churn, obs.dated, options.bootstrap,
                                         options.seed, obs.after_churn_by_measure)
    result["rows_after_churn"] = obs.after_churn
    result["clusters"] = signals.correlated_clusters(frame, list(result["signals"]))
    progress("fitting suggested weights|2|3")
    result["weights"] = suggest(frame, target, options)
    flag_reversals(result["signals"], result["weights"])
    result["alarm"] = too_good(result["weights"]["comparison"], result["signals"])
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
    """AUC (with interval, and a note when too few outcomes back it), lift, band rates,
    calibration, false greens, lead time. ``lite`` leaves out the last three."""
    y_all = rows["label"].to_numpy()
    scored = rows[rows["score"].notna()]
    y = scored["label"].to_numpy()
    score = scored["score"].to_numpy(dtype=float)
    risk = score if options.good_outcome else 100 - score
    band = scored["band"].to_numpy()
    lo, hi = metrics.bootstrap_auc(y, risk, scored["account_id"].to_numpy(), options.bootstrap,
                                   options.seed)
    rates = metrics.band_rates(y_all, rows["band"].to_numpy(), bands)
    out: dict[str, Any] = {
        "observations": int(len(rows)), "accounts": int(rows["account_id"].nunique()),
        "outcomes": int(y_all.sum()), "base_rate": float(y_all.mean()) if len(y_all) else None,
        "insufficient": int((rows["band"] == INSUFFICIENT).sum()),
        "auc": metrics.auc(y, risk), "auc_ci": [lo, hi] if lo is not None else None,
        "auc_note": metrics.too_few_outcomes(y, options.outcome),
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
    """Out-of-sample comparison of seven rankings, the suggested weights and the suggested
    scorecard itself (fitted on every observation, its choices made on the later ones). A fit
    the nested folds ask for again is done once."""
    with repeated_fits_shared():
        out = {**rankings(frame, sc, options), **suggest_weights(frame, sc, options)}
        names, scores, _, _ = _inputs(frame, sc)
        out["schemes"].update(choose.fit_final(
            _chooser_input(frame, names, scores), frame["label"].to_numpy(), names,
            signals._effective_weights(sc), options.good_outcome,
            options.lead_days + options.horizon_days, options.seed, frame["as_of"].to_numpy(),
            frame["account_id"].to_numpy()))
    return out


def _chooser_input(frame: pd.DataFrame, names: list[str], scores: np.ndarray) -> np.ndarray:
    """What :class:`choose.SuggestedScorecard` reads: values, measure scores, the score."""
    return np.hstack([_values(frame, names), scores, frame[["score"]].to_numpy(float)])


def _inputs(frame: pd.DataFrame, sc: Scorecard) -> tuple[list[str], np.ndarray, np.ndarray,
                                                          list[tuple[str, str | None]]]:
    names = [e.measure for e in sc.all_entries() if f"s__{e.measure}" in frame.columns]
    scores = frame[[f"s__{n}" for n in names]].to_numpy(dtype=float)
    raw, columns = design(frame, names)
    return names, scores, raw, columns


def _values(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Each measure's numeric value (NaN throughout for a category measure)."""
    cols = [np.full(len(frame), np.nan) if signals.is_text(frame[f"m__{n}"])
            else pd.to_numeric(frame[f"m__{n}"], errors="coerce").to_numpy(dtype=float)
            for n in names]
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def rankings(frame: pd.DataFrame, sc: Scorecard, options: Options) -> dict[str, Any]:
    """The seven rankings out of sample on the same folds, and whether the suggestion is
    offered."""
    names, scores, raw, _ = _inputs(frame, sc)
    y = frame["label"].to_numpy()
    dates, accounts = frame["as_of"].to_numpy(), frame["account_id"].to_numpy()
    gap = options.lead_days + options.horizon_days
    good, seed = options.good_outcome, options.seed
    folds, kind = splits(dates, accounts, y, options.folds, gap, seed)
    contenders = {
        "configured scorecard": (ConfiguredScore(good_outcome=good), frame[["score"]].to_numpy(float)),
        SUGGESTED: (choose.SuggestedScorecard(good_outcome=good, gap_days=gap, random_state=seed),
                    _chooser_input(frame, names, scores)),
        "suggested weights": (SuggestedWeights(good_outcome=good, gap_days=gap, random_state=seed),
                              scores),
        SCHEMES: (SuggestedSchemes(good_outcome=good, gap_days=gap, random_state=seed),
                  np.hstack([_values(frame, names), scores])),
        "best single measure": (BestSingleMeasure(good_outcome=good), scores),
        L1: (L1Logistic(gap_days=gap, random_state=seed), raw),
        GBM: (GradientBoosting(random_state=seed), raw),
    }
    comparison = [_ranking(label, est, X, y, dates, accounts, folds, options)
                  for label, (est, X) in contenders.items()]
    rows = {c["model"]: c for c in comparison}
    bands = [(b.name, float(b.min)) for b in sorted(sc.bands, key=lambda b: b.min)]
    offered = choose.offer(rows[SUGGESTED], rows["configured scorecard"], rows.get(L1),
                           rows.get(GBM), y, accounts, bands, options.outcome, good,
                           options.bootstrap, seed)
    return {"comparison": comparison, "splits": kind,
            "note": _splits_note(kind, len(folds), options.folds, gap),
            "black_box_gap": black_box_gap(comparison, SUGGESTED),
            "schemes": offered}


def suggest_weights(frame: pd.DataFrame, sc: Scorecard, options: Options) -> dict[str, Any]:
    """The suggested weights fitted on every observation, with their spread over refits on
    resampled accounts, beside the L1 coefficients of the raw values."""
    names, scores, raw, columns = _inputs(frame, sc)
    y = frame["label"].to_numpy()
    dates, accounts = frame["as_of"].to_numpy(), frame["account_id"].to_numpy()
    gap = options.lead_days + options.horizon_days
    good, seed = options.good_outcome, options.seed
    final = SuggestedWeights(good_outcome=good, gap_days=gap, random_state=seed).fit(
        scores, y, dates=dates, groups=accounts)
    baseline = L1Logistic(gap_days=gap, random_state=seed).fit(raw, y, dates=dates, groups=accounts)
    resampled, reversed_ = bootstrap_weights(final, scores, y, accounts,
                                             min(WEIGHT_RESAMPLES, options.bootstrap), seed)
    configured_w = signals._effective_weights(sc)
    measures = []
    for j, n in enumerate(names):
        w = float(final.weights_[j])
        flipped = bool(final.flipped_[j])
        mine = [k for k, (m, _) in enumerate(columns) if m == n]
        coef = {columns[k][1]: float(baseline.coef_[k]) for k in mine}
        direction = _direction(raw[:, mine[0]], scores[:, j]) if None in coef else 0.0
        measures.append({
            "measure": n, "configured_weight": round(configured_w.get(n, 0.0), 2),
            "suggested_weight": w, "flipped": flipped and w > 0,
            **_spread(resampled[:, j], reversed_[:, j]),
            "effect_of_higher_value": ("by category" if w > 0 and None not in coef
                                       else _effect(w, flipped, direction)),
            "l1_coefficient": coef[None] if None in coef else max(coef.values(), key=abs, default=0.0),
            **({"l1_coefficients": coef} if None not in coef else {}),
        })
    weights = {n: float(final.weights_[j]) for j, n in enumerate(names)}
    flips = {n: bool(final.flipped_[j]) for j, n in enumerate(names)}
    return {"measures": measures, "C": final.C_, "baseline_C": baseline.C_, "weights": weights,
            "flipped": flips, "scorecard": sc.name, "resamples": int(len(resampled))}


TOP_CATEGORIES = 20  # one-hot columns per category measure; the rarer ones share none


def design(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list[tuple[str, str | None]]]:
    """The raw measure values as the black boxes see them: numbers as they are, a category
    measure one-hot (its most frequent categories, a column each; missing: all zeros).
    Returns the matrix and, per column, (measure, category or None)."""
    parts: list[np.ndarray] = []
    columns: list[tuple[str, str | None]] = []
    for n in names:
        col = frame[f"m__{n}"]
        if not signals.is_text(col):  # (an empty measure is not text: a column of NaN)
            parts.append(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)[:, None])
            columns.append((n, None))
            continue
        text = col.map(lambda v: None if pd.isna(v) else str(v))
        counts = text.value_counts()
        keep = sorted(counts.index, key=lambda c: (-counts[c], c))[:TOP_CATEGORIES]
        parts.append(np.column_stack([(text == c).to_numpy(dtype=float) for c in keep]))
        columns += [(n, str(c)) for c in keep]
    matrix = np.hstack(parts) if parts else np.empty((len(frame), 0))
    return matrix, columns


def _ranking(label: str, est: Any, X: np.ndarray, y: np.ndarray, dates: np.ndarray,
             accounts: np.ndarray, folds: list[Any], options: Options) -> dict[str, Any]:
    idx, risk, facts = out_of_sample(est, X, y, dates, accounts, folds)
    lo, hi = metrics.bootstrap_auc(y[idx], risk, accounts[idx], options.bootstrap, options.seed)
    return {
        "model": label, "observations": int(len(idx)), "_index": idx, "_risk": risk,
        "auc": metrics.auc(y[idx], risk) if len(idx) else None,
        "auc_ci": [lo, hi] if lo is not None else None,
        "auc_note": metrics.too_few_outcomes(y[idx], options.outcome) if len(idx) else None,
        "top_decile_lift": metrics.top_decile_lift(y[idx], risk) if len(idx) else None,
        "folds": facts,
    }


def _splits_note(kind: str, made: int, folds: int, gap: int) -> str | None:
    why = (f"too few as-of dates for {folds} time-ordered folds with a {gap}-day outcome window "
           f"between training and testing")
    more = "use more dates (--every week, a wider --from/--to) or fewer folds (validation.folds)"
    if not made:
        return f"{why}, and too few accounts with both outcomes to fold them instead, so nothing " \
               f"was measured out of sample. To measure it, {more}."
    if kind == TIME_ORDERED:
        return None
    return (f"{why}: the out-of-sample figures come from {made} folds grouped by account instead "
            f"(an account is never in both the training and the test part of a fold). They show "
            f"how the scores rank accounts they were not fitted on, not how they hold up on later "
            f"dates; for that, {more}.")


def too_good(comparison: list[dict[str, Any]], found: dict[str, Any]) -> dict[str, Any] | None:
    """The alarm when a ranking does better out of sample than real signals do (an AUC above
    TOO_GOOD, or an additive one TOO_FAR above the configured scorecard's), naming the measures
    most likely to leak the outcome (flagged leaky, or separating it best alone)."""
    auc = {c["model"]: c["auc"] for c in comparison if c["auc"] is not None}
    conf = auc.get("configured scorecard")
    high = [(m, a) for m, a in auc.items() if a > TOO_GOOD]
    # a black box far above a badly shaped configured score is no surprise; an additive one is
    far = [(m, a) for m, a in auc.items() if conf is not None and a - conf > TOO_FAR
           and a <= TOO_GOOD and m not in BLACK_BOXES]
    if not high and not far:
        return None
    parts = [f"{m} {a:.3f} (above {TOO_GOOD})" for m, a in high]
    parts += [f"{m} {a:.3f} ({a - conf:.2f} above the configured scorecard's {conf:.3f})"
              for m, a in far if conf is not None]
    suspects = _suspects(found)
    named = ", ".join(f"{n} ({_why_suspect(found[n])})" for n in suspects)
    why = (f"Too good to be true? Out of sample: {'; '.join(parts)}. Real signals rarely rank "
           f"this well, or this far above the configured score: check first {named} for data "
           f"recorded after the outcome or copied from it (if none is, the configured schemes "
           f"may be badly shaped).")
    return {"rankings": [m for m, _ in high + far], "measures": suspects, "why": why}


def _suspects(found: dict[str, Any], most: int = 3) -> list[str]:
    def key(n: str) -> tuple[bool, float, str]:
        leaky = any(f["flag"] == "leaky" for f in found[n]["flags"])
        return (not leaky, -(found[n].get("separation") or 0.0), n)

    ranked = sorted(found, key=key)
    strong = [n for n in ranked if key(n)[0] is False or -key(n)[1] >= SUSPECT]
    return strong or ranked[:most]


def _why_suspect(info: dict[str, Any]) -> str:
    leaky = any(f["flag"] == "leaky" for f in info["flags"])
    sep = info.get("separation")
    alone = f"AUC {sep:.2f} on its own" if sep is not None else "no AUC of its own"
    return f"{alone}, flagged leaky" if leaky else alone


BLACK_BOXES = (L1, GBM)


def black_box_gap(comparison: list[dict[str, Any]], additive: str = "suggested weights"
                  ) -> str | None:
    """One sentence: how far the suggested additive score (``additive``: the suggested weights,
    or the schemes when they are offered) and the configured one are from the best black box
    out of sample."""
    auc = {c["model"]: c["auc"] for c in comparison if c["auc"] is not None}
    boxes = [m for m in BLACK_BOXES if m in auc]
    if additive not in auc or not boxes:
        return None
    best = max(boxes, key=lambda m: auc[m])
    gap = auc[additive] - auc[best]
    text = (f"The suggested additive score (AUC {auc[additive]:.3f}) is "
            f"{abs(gap):.3f} {'below' if gap < 0 else 'above'} the best black box, the {best} "
            f"({auc[best]:.3f})")
    if "configured scorecard" in auc:
        conf = auc["configured scorecard"] - auc[best]
        text += (f"; the configured scorecard ({auc['configured scorecard']:.3f}) is "
                 f"{abs(conf):.3f} {'below' if conf < 0 else 'above'} it")
    return text + "."


def _spread(weights: np.ndarray, reversed_: np.ndarray) -> dict[str, Any]:
    """A weight's 95% interval over the account-bootstrap refits, and how often they gave it
    any weight or reversed its scheme."""
    if not len(weights):
        return {"weight_ci": None, "kept_share": None, "reversed_share": None, "reversal_z": None}
    lo, hi = np.percentile(weights, [2.5, 97.5])
    signed = np.where(reversed_, -weights, weights)  # the weight on the configured score
    z = metrics.bootstrap_z(0.0, signed, float(np.mean(signed)))  # SEs it lies below 0
    return {"weight_ci": [round(float(lo), 1), round(float(hi), 1)],
            "kept_share": float(np.mean(weights > 0)), "reversed_share": float(np.mean(reversed_)),
            "reversal_z": round(z, 2) if np.isfinite(z) else z}


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
    """A measure with configured weight that the fitted weights score the other way round,
    consistently across the refits on resampled accounts (beyond chance for any of the
    scorecard's weighted measures)."""
    weighted = [m for m in weights["measures"] if m["configured_weight"] > 0]
    for m in weighted:
        info = signals.get(m["measure"])
        z = m.get("reversal_z")
        if info is None or not m["flipped"] or z is None or z < metrics.significance_z(len(weighted)):
            continue
        if any(f["flag"] == "contradicts" for f in info["flags"]):
            continue
        info["flags"].append({"flag": "contradicts", "why": (
            f"with the other measures taken into account, its score works backwards: the fitted "
            f"weights reverse its scheme ({m['suggested_weight']:.1f}% on the reversed score; "
            f"reversed in {m['reversed_share']:.0%} of {weights['resamples']} refits on resampled "
            f"accounts, beyond chance for any of the {len(weighted)} weighted measures). Reverse "
            f"its scheme, or check what it really measures.")})


def suggestion_yaml(result: dict[str, Any], sc: Scorecard) -> str:
    """The suggested scorecard (fitted on every observation) as YAML, its header saying whether
    it is offered and why (not); withheld, it is written only because it was asked for."""
    w = result["weights"]
    comp = {c["model"]: c for c in w["comparison"]}
    s = w["schemes"]
    header = (
        f"Suggested by 'healthscore validate' on {result['generated_at'][:10]} for scorecard "
        f"{sc.name}\nfrom {result['overall']['observations']} observations (as-of dates "
        f"{result['dates'][0]} .. {result['dates'][-1]}, outcome {result['outcome']} within "
        f"{result['horizon_days']} days).\nChosen on later dates than fitted: {s['chosen']}.\n"
        f"Out-of-sample AUC: configured {_fmt(comp['configured scorecard']['auc'])}, suggested "
        f"{_fmt(comp[SUGGESTED]['auc'])}, L1 logistic {_fmt(comp[L1]['auc'])}, gradient-boosted "
        f"{_fmt(comp[GBM]['auc'])}.\n{s['why']}\n"
        + ("Review it before use: copy it into scorecards/ and list it in healthscore.yml. "
           "Nothing is applied automatically." if s["offered"] else
           "Written because it was asked for: keep the configured scorecard unless the reason "
           "above no longer holds.")
    )
    schemes = {n: m["scheme"] for n, m in s["measures"].items() if m["scheme"] is not None}
    return scorecard_yaml(sc, s["weights"], s["flipped"], header, schemes)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result without private entries, with numpy values made plain and floats given to
    12 significant digits: the last bits of a sum depend on the order the engine's threads
    add in, and they must not change the file (two runs write the same bytes)."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items() if not str(k).startswith("_")}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and (np.isnan(v) or np.isinf(v)):
            return None
        if isinstance(v, float):
            return float(f"{v:.12g}")
        if isinstance(v, date):
            return v.isoformat()
        return v
    return clean(result)  # type: ignore[no-any-return]
