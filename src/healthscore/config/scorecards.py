"""Resolve a scorecard spec: groups, weights, schemes, bands, grades, `when`."""

from __future__ import annotations

from typing import Any

from healthscore.config import expressions, model, specs
from healthscore.config.labels import resolve_label
from healthscore.entities import ENTITIES
from healthscore.errors import ConfigError

WEIGHT_TOLERANCE = 0.01


class MissingSourceError(ConfigError):
    """A measure reads an entity the project has no source for."""

    def __init__(self, message: str, *, entity: str) -> None:
        super().__init__(message)
        self.entity = entity
DEFAULT_SCHEME = specs.LinearScheme(type="linear", low=0, high=100)


def resolve_scorecard(
    name: str,
    spec: specs.ScorecardSpec,
    file: str,
    measures: dict[str, model.Measure],
    settings: specs.SettingsSpec,
    accounts: list[str] | None = None,
) -> model.Scorecard:
    """``accounts`` names the account columns (with the project's own attributes) that
    ``when:`` and a percentile's ``by:`` may read."""
    accounts = accounts or ENTITIES["accounts"].column_names
    _check_weights(spec.groups, "groups", file)
    bands = _bands(spec.bands, file)
    groups = tuple(
        _group(g, gs, g, file, measures, bands, accounts) for g, gs in spec.groups.items()
    )
    used = tuple(dict.fromkeys(e.measure for g in groups for e in g.all_entries()))
    if spec.when is not None:
        _check_when(spec.when, f"{file}: when", accounts)
    return model.Scorecard(
        name=name,
        file=file,
        description=spec.description,
        when=spec.when,
        min_coverage=spec.min_coverage if spec.min_coverage is not None else settings.min_coverage,
        bands=bands,
        grades=_grades(spec.grades, file),
        groups=groups,
        measures=used,
        overall=spec.overall.policy,
        count_red=spec.overall.red,
        count_yellow=spec.overall.yellow,
    )


def _check_weights(items: dict[str, Any], key: str, file: str) -> None:
    total = sum(_weight(v) for v in items.values())
    if items and abs(total - 100) > WEIGHT_TOLERANCE:
        parts = ", ".join(f"{k} {_weight(v):g}" for k, v in items.items())
        raise ConfigError(
            f"{file}: {key}: weights must add up to 100. Got {total:g} ({parts})."
        )


def _weight(v: Any) -> float:
    return float(v) if isinstance(v, int | float) else float(v.weight)


def _group(
    name: str, spec: specs.GroupSpec, path: str, file: str, measures: dict[str, model.Measure],
    sc_bands: tuple[model.Band, ...], accounts: list[str],
) -> model.Group:
    children: dict[str, Any] = {**spec.measures, **spec.groups}
    if not children:
        raise ConfigError(f"{file}: groups.{path}: is empty. Give it measures or groups.")
    clash = set(spec.measures) & set(spec.groups)
    if clash:
        raise ConfigError(
            f"{file}: groups.{path}: {sorted(clash)[0]!r} is both a measure and a group. "
            f"Rename the group."
        )
    _check_weights(children, f"groups.{path}", file)
    entries = tuple(
        _entry(m, e, f"groups.{path}.measures.{m}", file, measures, accounts)
        for m, e in spec.measures.items()
    )
    subgroups = tuple(
        _group(g, gs, f"{path}.groups.{g}", file, measures, sc_bands, accounts)
        for g, gs in spec.groups.items()
    )
    if spec.red_at_ctas is not None and spec.colour == "score":
        raise ConfigError(
            f"{file}: groups.{path}.red_at_ctas: counts the module's open CTAs, which only "
            f"'colour: ctas' or 'colour: worst' reads. Add one of them, or remove red_at_ctas."
        )
    label, labels = resolve_label(spec.label, f"{file}: groups.{path}.label")
    return model.Group(
        name=name,
        path=path.replace(".groups.", "."),
        weight=float(spec.weight),
        label=label or name.replace("_", " ").capitalize(),
        labels=labels,
        entries=entries,
        groups=subgroups,
        colour=spec.colour,
        bands=_group_bands(spec.bands, sc_bands, f"groups.{path}.bands", file),
        red_at_ctas=spec.red_at_ctas,
    )


def _group_bands(bands: list[specs.BandSpec] | None, sc_bands: tuple[model.Band, ...],
                 key: str, file: str) -> tuple[model.Band, ...]:
    """A group's own cuts for its colour; the names are the scorecard's, so that a module's
    colour and the account's band speak of the same bands."""
    if bands is None:
        return ()
    names = [b.name for b in sc_bands]
    if [b.name for b in bands] != names:
        raise ConfigError(
            f"{file}: {key}: must name the scorecard's bands in the same order "
            f"({', '.join(names)}); only the mins may differ. Got "
            f"{', '.join(b.name for b in bands) or 'none'}."
        )
    own = _bands(bands, f"{file}: {key[:-len('.bands')]}")
    return tuple(model.Band(b.name, b.min, s.color) for b, s in zip(own, sc_bands, strict=True))


def _entry(
    name: str, spec: Any, key: str, file: str, measures: dict[str, model.Measure],
    accounts: list[str],
) -> model.Entry:
    if name not in measures:
        raise ConfigError(
            f"{file}: {key}: unknown measure {name!r}. Define it in measures/*.yml or pick a "
            f"built-in one ('healthscore measures' lists them)."
        )
    try:
        measure = measures[name]
    except MissingSourceError as err:
        if not err.message.startswith("(built-in library)"):
            raise
        raise ConfigError(
            f"{file}: {key}: the built-in measure {name!r} reads {err.entity}, and the project "
            f"has no source for it. Add '{err.entity}:' under sources in healthscore.yml, or "
            f"remove {name!r} from the scorecard."
        ) from None
    if isinstance(spec, int | float):
        spec = specs.EntrySpec(weight=spec)
    scheme = spec.scheme or measure.scheme
    if scheme is None:
        raise ConfigError(
            f"{file}: {key}: measure {name!r} has no scoring scheme. Add 'scheme:' here or "
            f"in {measure.file}, e.g. 'scheme: {{type: linear, low: 0, high: 10}}'."
        )
    if spec.scheme is not None:
        check_scheme(scheme, f"{file}: {key}.scheme")
        if isinstance(scheme, specs.PercentileScheme):
            check_account_column(scheme.by, f"{file}: {key}.scheme.by", accounts)
    missing = spec.missing if spec.missing is not None else measure.missing
    return model.Entry(name, float(spec.weight), scheme, missing)


def check_account_column(col: str, where: str, valid: list[str]) -> None:
    if col not in valid:
        raise ConfigError(f"{where}: accounts has no column {col!r}. Valid: {', '.join(valid)}.")


def _check_when(text: str, where: str, accounts: list[str]) -> None:
    try:
        tree = expressions.parse(text)
        expressions.check_columns(text, tree, accounts, "account column")
    except expressions.ExpressionError as err:
        raise ConfigError(f"{where}: {err}") from None


def _bands(bands: list[specs.BandSpec] | None, file: str) -> tuple[model.Band, ...]:
    if bands is None:
        return model.DEFAULT_BANDS
    mins = [b.min for b in bands]
    if not bands or mins[0] != 0 or mins != sorted(mins) or len(set(mins)) != len(mins):
        raise ConfigError(
            f"{file}: bands: must start at min 0 and go up, lowest band first. Got mins {mins}."
        )
    palette = ["#d64545", "#e0a800", "#2f9e44", "#1c7ed6", "#7048e8"]
    return tuple(
        model.Band(b.name, b.min, b.color or palette[i % len(palette)])
        for i, b in enumerate(bands)
    )


def _grades(grades: list[specs.GradeSpec] | None, file: str) -> tuple[model.Grade, ...]:
    if not grades:
        return ()
    ordered = sorted(grades, key=lambda g: g.min)
    if ordered[0].min != 0:
        raise ConfigError(
            f"{file}: grades: the lowest grade must have min 0 so every score gets a grade."
        )
    return tuple(model.Grade(g.grade, g.min) for g in ordered)


def check_scheme(scheme: specs.Scheme | None, where: str) -> None:
    found = scheme.problem() if scheme is not None else None
    if found is not None:
        key, what = found
        raise ConfigError(f"{where}{key}: {what}")
