"""Turn suggested per-measure weights into a scorecard YAML with the same groups.

Each group's weight is the sum of its measures' suggested weights, expressed as percent of
its parent; a measure or group that gets no weight is left out (and listed in a comment).
A flipped measure is written with its scheme reversed, so the scorecard stays additive with
non-negative weights. Suggested schemes (learned thresholds) replace the configured ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from healthscore.config.model import Entry, Group, Scorecard
from healthscore.validation.weights import _round_percent


def flip_scheme(scheme: Any) -> dict[str, Any]:
    """The scheme that scores a value ``100 - s`` where ``scheme`` scores it ``s``."""
    body = scheme.model_dump(mode="json", exclude_defaults=False)
    kind = body["type"]
    if kind == "percentile":
        body["higher_is_better"] = not body["higher_is_better"]
    elif kind == "linear":
        body["low"], body["high"] = body["high"], body["low"]
    elif kind == "thresholds":
        body["scores"] = [100 - s for s in body["scores"]]
    elif kind == "boolean":
        body["if_true"], body["if_false"] = body["if_false"], body["if_true"]
    elif kind == "category":
        body["map"] = {k: 100 - v for k, v in body["map"].items()}
        if body.get("default") is not None:
            body["default"] = 100 - body["default"]
    return body


def _subtree(group: Group, weights: dict[str, float]) -> float:
    return sum(weights.get(e.measure, 0.0) for e in group.all_entries())


def _shares(items: list[tuple[str, float]]) -> dict[str, float]:
    total = sum(v for _, v in items)
    kept = [(k, v) for k, v in items if v > 0]
    if not kept or total <= 0:
        return {}
    rounded = _round_percent(np.array([v / total * 100 for _, v in kept]))
    return {k: float(r) for (k, _), r in zip(kept, rounded, strict=True) if r > 0}


def _entry(entry: Entry, weight: float, flipped: bool, scheme: dict[str, Any] | None = None) -> Any:
    if not flipped and scheme is None and entry.missing == "skip":
        return weight
    body: dict[str, Any] = {"weight": weight}
    if scheme is not None:
        body["scheme"] = ({**scheme, "scores": [round(100 - v, 1) for v in scheme["scores"]]}
                          if flipped else scheme)
    elif flipped:
        body["scheme"] = flip_scheme(entry.scheme)
    if entry.missing != "skip":
        body["missing"] = entry.missing
    return body


def _group(group: Group, weights: dict[str, float], flipped: dict[str, bool], weight: float,
           schemes: dict[str, dict[str, Any]]) -> dict:
    items = [(f"m:{e.measure}", weights.get(e.measure, 0.0)) for e in group.entries]
    items += [(f"g:{g.name}", _subtree(g, weights)) for g in group.groups]
    shares = _shares(items)
    body: dict[str, Any] = {"weight": weight}
    if group.label and group.label != group.name:
        body["label"] = group.label
    measures = {e.measure: _entry(e, shares[f"m:{e.measure}"], flipped.get(e.measure, False),
                                  schemes.get(e.measure))
                for e in group.entries if f"m:{e.measure}" in shares}
    if measures:
        body["measures"] = measures
    subs = {g.name: _group(g, weights, flipped, shares[f"g:{g.name}"], schemes)
            for g in group.groups if f"g:{g.name}" in shares}
    if subs:
        body["groups"] = subs
    return body


def scorecard_yaml(
    scorecard: Scorecard, weights: dict[str, float], flipped: dict[str, bool], header: str,
    schemes: dict[str, dict[str, Any]] | None = None,
) -> str:
    """YAML text of ``scorecard`` with ``weights`` (percent of the total per measure) and,
    for the measures in ``schemes``, their learned schemes instead of the configured ones."""
    roots = _shares([(g.name, _subtree(g, weights)) for g in scorecard.groups])
    what = "schemes and weights" if schemes else "weights"
    body: dict[str, Any] = {
        "description": f"Suggested {what} for {scorecard.name}. {scorecard.description}".strip(),
        "groups": {g.name: _group(g, weights, flipped, roots[g.name], schemes or {})
                   for g in scorecard.groups if g.name in roots},
    }
    if scorecard.when:
        body["when"] = scorecard.when
    body["min_coverage"] = scorecard.min_coverage
    body["bands"] = [{"name": b.name, "min": b.min, "color": b.color} for b in scorecard.bands]
    if scorecard.grades:
        body["grades"] = [{"grade": g.grade, "min": g.min} for g in scorecard.grades]
    dropped = [e.measure for e in scorecard.all_entries() if weights.get(e.measure, 0.0) <= 0]
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    if dropped:
        lines.append(f"# No weight (left out): {', '.join(dropped)}")
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
