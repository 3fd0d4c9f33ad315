"""The validation report: one self-contained HTML file (inline CSS and SVG charts, no
script, no external asset) rendered from the validation JSON."""

from __future__ import annotations

from html import escape
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;
color:#1f2933;padding:0 1rem}h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d9e2ec}
.sub{color:#52606d}.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.card{border:1px solid #d9e2ec;border-radius:8px;padding:.8rem 1rem;min-width:10rem}
.card b{display:block;font-size:1.6rem}.card span{color:#52606d;font-size:.85rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{padding:.3rem .6rem;
border-bottom:1px solid #e4e7eb;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f5f7fa}.flag{color:#b42318;font-weight:600}.ok{color:#2f9e44;font-weight:600}
.note{color:#52606d;font-size:.85rem;max-width:60rem}svg text{font-size:11px;fill:#334e68}
"""
COLORS = {"red": "#d64545", "yellow": "#e0a800", "green": "#2f9e44"}


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return escape(str(x))


def _pct(x: Any, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _bars(rows: list[dict[str, Any]], label: str, width: int = 520, height: int = 220) -> str:
    """Vertical bars of rates with 95% whiskers."""
    rows = [r for r in rows if r.get("rate") is not None]
    if not rows:
        return ""
    top = max((r.get("ci_high") or r["rate"]) for r in rows) or 1.0
    pad, n = 40, len(rows)
    step = (width - 2 * pad) / n
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(label)}">']
    base = height - 30
    scale = (base - 10) / top
    for i, r in enumerate(rows):
        x = pad + i * step + step * 0.15
        w = step * 0.7
        h = r["rate"] * scale
        color = COLORS.get(str(r.get(label, "")), "#3e7cb1")
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                     f'fill="{color}" opacity="0.85"/>')
        if r.get("ci_low") is not None:
            cx = x + w / 2
            y1, y2 = base - r["ci_low"] * scale, base - r["ci_high"] * scale
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" '
                         f'stroke="#102a43" stroke-width="1.5"/>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle">'
                     f'{_pct(r["rate"])}</text>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{height - 12}" text-anchor="middle">'
                     f'{escape(str(r.get(label, "")))}</text>')
    parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{base}" y2="{base}" stroke="#9fb3c8"/>')
    return "".join(parts) + "</svg>"


def _spark(deciles: list[dict[str, Any]], width: int = 160, height: int = 36) -> str:
    """Outcome rate by decile of a measure, lowest values on the left."""
    if not deciles:
        return ""
    top = max(d["rate"] for d in deciles) or 1.0
    step = width / len(deciles)
    bars = "".join(
        f'<rect x="{i * step + 1:.1f}" y="{height - d["rate"] / top * (height - 2):.1f}" '
        f'width="{step - 2:.1f}" height="{d["rate"] / top * (height - 2):.1f}" fill="#3e7cb1"/>'
        for i, d in enumerate(deciles)
    )
    return f'<svg width="{width}" height="{height}">{bars}</svg>'


def _calibration(cal: dict[str, Any], size: int = 260) -> str:
    bins = cal.get("bins") or []
    if not bins:
        return ""
    top = max(max(b["observed"], b["predicted"] or 0) for b in bins) or 1.0
    pad = 34

    def x(v: float) -> float:
        return pad + v / 100 * (size - 2 * pad)

    def y(v: float) -> float:
        return size - pad - v / top * (size - 2 * pad)

    parts = [f'<svg width="{size}" height="{size}" role="img" aria-label="calibration">',
             f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{size - pad}" stroke="#9fb3c8"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{size - pad}" stroke="#9fb3c8"/>']
    pts = " ".join(f"{x((b['from'] + b['to']) / 2):.1f},{y(b['predicted'] or 0):.1f}" for b in bins)
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#9aa5b1" stroke-dasharray="4 3"/>')
    for b in bins:
        cx = x((b["from"] + b["to"]) / 2)
        parts.append(f'<circle cx="{cx:.1f}" cy="{y(b["observed"]):.1f}" r="4" fill="#3e7cb1"/>')
    parts.append(f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">score</text>')
    parts.append(f'<text x="4" y="{pad - 10}">rate (max {_pct(top)})</text>')
    return "".join(parts) + "</svg>"


def _summary(o: dict[str, Any], outcome: str) -> str:
    ci = o.get("auc_ci") or [None, None]
    lead = o.get("lead_time") or {}
    fg = o.get("false_green") or o.get("false_red") or {}
    mono = '<span class="ok">yes</span>' if o.get("monotonic") else '<span class="flag">no</span>'
    auc = ((escape(o["auc_note"]), "AUC") if o.get("auc_note")
           else (_f(o.get("auc")), f"AUC (95% CI {_f(ci[0], 2)}-{_f(ci[1], 2)})"))
    cards = [
        auc,
        (_f(o.get("top_decile_lift"), 2) + "x", "top-decile lift"),
        (mono, f"{outcome} rate monotonic across bands"),
        (_pct(fg.get("rate")), f"{outcome} while {fg.get('band', 'green')}"
         f" ({'false green' if 'false_green' in o else 'false red'})"),
        *([(_f(lead.get("median_days"), 0) + " d",
            f"median lead time ({_pct(lead.get('warned_share'), 0)} warned)")] if lead else []),
        (f"{o.get('observations', 0):,}", f"observations, {o.get('outcomes', 0):,} {outcome}"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{v}</b><span>{escape(k)}</span></div>' for v, k in cards) + "</div>"


_METRIC_HEAD = ["name", "observations", "outcomes", "AUC (95% CI)", "lift", "rate per band",
                "monotonic"]


def _metrics_rows(items: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, m in items.items():
        rates = " / ".join(_pct(b["rate"]) for b in m.get("bands", []))
        rows.append([escape(name), f"{m['observations']:,}", f"{m['outcomes']:,}", _auc(m),
                     _f(m.get("top_decile_lift"), 2), rates, "yes" if m.get("monotonic") else "no"])
    return rows


def _auc(m: dict[str, Any]) -> str:
    """An AUC with its interval, or the note that there are too few outcomes to judge it."""
    if m.get("auc_note"):
        return f'<span class="flag">{escape(m["auc_note"])}</span>'
    ci = m.get("auc_ci") or [None, None]
    return f"{_f(m.get('auc'))} ({_f(ci[0], 2)}-{_f(ci[1], 2)})"


def _signals(signals: dict[str, Any]) -> str:
    rows = []
    for name, s in signals.items():
        flags = "<br>".join(f'<span class="flag">{escape(f["flag"])}</span>: {escape(f["why"])}'
                            for f in s.get("flags", []))
        rows.append([escape(name), escape(str(s.get("group") or "")), _f(s.get("weight"), 1) + "%",
                     _pct(s.get("coverage"), 0), _f(s.get("auc")), escape(s.get("direction", "")),
                     _f(s.get("score_auc")), _spark(s.get("deciles") or s.get("categories") or []),
                     flags or "-"])
    return _table(["measure", "group", "weight", "coverage", "AUC of value", "direction",
                   "AUC of score", "outcome rate by decile (low to high; or by category, most "
                   "frequent first)", "flags"], rows)


def _weights(w: dict[str, Any]) -> str:
    comp = [[escape(c["model"]), f"{c['observations']:,}", _auc(c),
             _f(c.get("top_decile_lift"), 2),
             ", ".join(_f(f.get("auc")) for f in c.get("folds", []))] for c in w["comparison"]]
    meas = [[escape(m["measure"]), _f(m["configured_weight"], 1) + "%", _f(m["suggested_weight"], 1) + "%",
             _spread(m), "reversed" if m["flipped"] else "", escape(m["effect_of_higher_value"]),
             _f(m["l1_coefficient"], 3)] for m in w["measures"]]
    note = f'<p class="flag">{escape(w["note"])}</p>' if w.get("note") else ""
    return (
        f"<h3>Out of sample, same splits ({escape(w.get('splits') or 'time-ordered')} folds)</h3>"
        + note
        + _table(["ranking", "test observations", "AUC (95% CI)", "top-decile lift", "AUC per fold"],
                 comp)
        + (f"<p>{escape(w['black_box_gap'])}</p>" if w.get("black_box_gap") else "")
        + _schemes(w.get("schemes"))
        + "<h3>Suggested weights</h3>"
        + _table(["measure", "configured", "suggested", "95% over resampled accounts", "scheme",
                  "effect of a higher value on health",
                  "L1 coefficient (churn, standardised value)"], meas)
        + f'<p class="note">Penalty C = {_f(w.get("C"), 3)} (baseline {_f(w.get("baseline_C"), 3)}), '
        f"chosen on later observations than those fitted. The interval of each weight comes from "
        f"{w.get('resamples', 0)} refits on resampled accounts (same penalty, same seed). Write "
        "the suggestion with "
        "<code>--write-suggestion PATH</code>; it is never applied automatically.</p>"
    )


def _schemes(s: dict[str, Any] | None) -> str:
    if not s:
        return ""
    rows = [[escape(n), _f(m["weight"], 1) + "%", escape(_cuts(m["scheme"]) if m["scheme"] else
                                                        "configured scheme kept"),
             escape(m.get("direction") or "")]
            for n, m in (s.get("measures") or {}).items()]
    chosen = (f"<p>Chosen on later dates than fitted: {escape(s['chosen'])} (AUC "
              f"{_f(s.get('inner_auc'))} there).</p>" if s.get("chosen") else "")
    return (f"<h3>Suggested scorecard</h3><p class=\"{'ok' if s.get('offered') else 'note'}\">"
            f"{escape(s['why'])}</p>" + chosen
            + (_table(["measure", "weight", "learned thresholds (value: score)", "direction"], rows)
               if rows else ""))


def _cuts(scheme: dict[str, Any]) -> str:
    cuts, scores = scheme["cuts"], scheme["scores"]
    parts = [f"< {cuts[0]:g}: {scores[0]:g}"] if cuts else [f"all: {scores[0]:g}"]
    parts += [f">= {c:g}: {v:g}" for c, v in zip(cuts, scores[1:], strict=True)]
    return "; ".join(parts)


def _spread(m: dict[str, Any]) -> str:
    ci = m.get("weight_ci")
    if ci is None:
        return "n/a"
    rev = m.get("reversed_share") or 0.0
    return f"{ci[0]:.1f}-{ci[1]:.1f}%" + (f" (reversed in {_pct(rev, 0)})" if rev else "")


def _method_folds(w: dict[str, Any]) -> str:
    if w.get("splits") == "grouped by account":
        return ("Out-of-sample figures come from folds grouped by account (there were too few "
                "as-of dates for time-ordered folds): every model is tested on accounts it was "
                "not fitted on.")
    return ("Out-of-sample figures come from time-ordered folds: every model is fitted on as-of "
            "dates whose outcome windows had closed before the dates it is tested on.")


def _compare(c: dict[str, Any]) -> str:
    rows = _metrics_rows({"this project": c["this"], escape(c["other"]): c["that"]})
    head = ["version", "observations", "outcomes", "AUC (95% CI)", "lift", "rate per band", "monotonic"]
    return (f"<h2>Compared with {escape(c['other'])}</h2>"
            f"<p>{c['observations']:,} shared observations.</p>" + _table(head, rows))


def _question(q: dict[str, Any] | None) -> str:
    """Seed 000's question in plain words, then the share of each group in each band."""
    if not q:
        return ""
    years = "two years" if q["years"] == 2 else "a year"
    return (f"<h2>{escape(q['question'])}</h2><p class='answer'>{escape(q['answer'])}</p>"
            + _table(["band", f"stayed {years} or more ({q['stayed']:,})",
                      f"left ({q['left']:,})"],
                     [[escape(b["band"]), _pct(b["stayed"]["share"], 0), _pct(b["left"]["share"], 0)]
                      for b in q["bands"]]))


def render(data: dict[str, Any]) -> str:
    o = data["overall"]
    outcome = data["outcome"]
    head = (f"<h1>Validation of {escape(data['project'])}</h1>"
            f"<p class='sub'>Outcome <b>{escape(outcome)}</b> within {data['horizon_days']} days "
            f"(lead {data['lead_days']} days) after each as-of date from {data['dates'][0]} to "
            f"{data['dates'][-1]} ({len(data['dates'])} dates); outcomes known up to "
            f"{data['observed_until']}. Generated {escape(data['generated_at'])}.</p>")
    alarm = data.get("alarm")
    parts = [head, _question(data.get("question")),
             *([f'<p class="flag">{escape(alarm["why"])}</p>'] if alarm else []),
             _summary(o, outcome),
             f"<h2>{escape(outcome.capitalize())} rate by band</h2>", _bars(o["bands"], "band"),
             _table(["band", "observations", outcome, "rate", "95% CI"],
                    [[escape(b["band"]), f"{b['observations']:,}", f"{b['outcomes']:,}", _pct(b["rate"]),
                      f"{_pct(b['ci_low'])} - {_pct(b['ci_high'])}"] for b in o["bands"]]),
             "<h2>Calibration</h2>", _calibration(o.get("calibration", {})),
             f"<p class='note'>Dots: observed rate per 10-point score bin; dashed: a logistic fit "
             f"of the score. Brier score {_f((o.get('calibration') or {}).get('brier'), 4)}.</p>",
             "<h2>By segment</h2>",
             _table(["segment", "observations", outcome, *_METRIC_HEAD[3:]],
                    _metrics_rows(data.get("segments", {}))),
             "<h2>By scorecard</h2>",
             _table(["scorecard", "observations", outcome, *_METRIC_HEAD[3:]],
                    _metrics_rows(data.get("scorecards", {}))),
             f"<h2>Weights for {escape(data['scorecard'])}</h2>", _weights(data["weights"]),
             "<h2>Signal discovery</h2>", _signals(data["signals"])]
    clusters = data.get("clusters") or []
    if clusters:
        parts.append("<h3>Correlated measures</h3><ul>" + "".join(
            f"<li>{escape(', '.join(c['measures']))} (|Spearman| >= {c['min_abs_rho']:.2f})</li>"
            for c in clusters) + "</ul>")
    if data.get("compare"):
        parts.append(_compare(data["compare"]))
    for key, title, what, change, scale in (("overrides", "Overrides", "overrides", "the band", "band"),
                                            ("marks", "Module marks", "module marks",
                                             "a module's colour", "colour")):
        rec = data.get(key)
        if rec and rec.get("judged"):
            parts.append(_track_record(rec, title, what, change, scale, outcome))
    parts.append(
        "<h2>Method</h2><p class='note'>Each observation is an account active on an as-of date, "
        "scored with data up to that date only; its label says whether the outcome happened in "
        "the horizon after the lead. AUC intervals resample whole accounts. "
        + _method_folds(data["weights"]) + "</p>")
    body = "".join(parts)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Validation - "
            f"{escape(data['project'])}</title><style>{CSS}</style></head><body>{body}</body></html>")


def _track_record(rec: dict[str, Any], title: str, what: str, change: str, scale: str,
                  outcome: str) -> str:
    """How often the CSMs' calls (overrides, module marks) were right, per reason code."""
    one = what.removesuffix("s")
    return (f"<h2>{title}</h2><p>{rec['right']} of {rec['judged']} {what} that changed {change} "
            f"were right ({_pct(rec['share_right'])}): {'an' if one[0] in 'aeiou' else 'a'} {one} "
            f"to a worse {scale} was followed by {escape(outcome)} within {rec['horizon_days']} "
            f"days, one to a better {scale} was not.</p>"
            + _table(["reason code", "judged", "right"],
                     [[escape(k), str(v["judged"]), str(v["right"])] for k, v in rec["by_reason"].items()]))
