"""Turn pydantic validation errors into messages a CS analyst can act on."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import ValidationError

from healthscore.config import specs
from healthscore.errors import ConfigError

# integer settings whose bounds are counts, not a 0-100 score or a 0-1 share
COUNTS = {"threads", "offset_days", "max_rows_per_pass", "max_rejected_rows", "renewal_grace_days",
          "escalate_after_days", "cooldown_days", "folds", "bootstrap", "cores", "instances"}
# what a Spark setting of the project file must look like
SPARK_FORMS = {
    "master": "must be a Spark master: local[N], spark://HOST:7077, yarn or k8s://https://HOST:443.",
    "remote": "must be a Spark Connect URL: sc://HOST:15002.",
    "memory": "must be a whole size Spark reads, such as 512m, 4g or 1500MB.",
}


def _tags(union: Any) -> list[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return [t for m in members for t in typing.get_args(m.model_fields["type"].annotation)]


MEASURE_TYPES = _tags(specs.MeasureSpec)
SCHEME_TYPES = _tags(specs.SchemeSpec)
# names pydantic adds to a location for the members of a plain union
_MEMBER_NAMES = {"EntrySpec", "float", "str", "constrained-float", "literal['skip']"}
_NUMBER_KINDS = {"float_parsing", "float_type", "int_parsing", "int_type", "finite_number"}
_MAPPING_KINDS = {"dict_type", "model_type", "model_attributes_type"}


def location(loc: tuple[Any, ...], tagged_root: bool = False) -> str:
    """Dotted key path, without the union tags pydantic inserts."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        text = str(part)
        if text in _MEMBER_NAMES or "[" in text or text.startswith("function-"):
            continue
        if i == 0 and tagged_root and text in MEASURE_TYPES:
            continue
        if parts and parts[-1] == "scheme" and text in SCHEME_TYPES and _is_tag(loc, i):
            continue
        parts.append(text)
    return ".".join(parts) if parts else "(top level)"


def _is_tag(loc: tuple[Any, ...], i: int) -> bool:
    # after 'scheme' pydantic always inserts the tag before the field name
    return i + 1 < len(loc) or str(loc[i]) in SCHEME_TYPES


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and value.is_integer():
        return repr(int(value))
    return repr(value)


def describe(err: dict[str, Any], where: str) -> str:
    """One pydantic error -> 'what is wrong. Got X.'"""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    key = where.rsplit(".", 1)[-1]
    if kind == "missing":
        return "is required but missing. Add it."
    if kind == "extra_forbidden":
        return f"unknown key. Check the spelling; see the docs for the valid keys. Got {_got(value)}."
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r}. Valid types: {ctx.get('expected_tags', '')}."
    if kind == "union_tag_not_found":
        valid = SCHEME_TYPES if key == "scheme" else MEASURE_TYPES
        return f"needs a 'type:' key. Valid types: {', '.join(repr(t) for t in valid)}."
    if key == "missing":
        return f"must be 'skip' or a score between 0 and 100. Got {_got(value)}."
    if key == "memory_limit" and kind == "string_pattern_mismatch":
        return f"must be a size such as 1500MB or 2GB. Got {_got(value)}."
    if kind == "string_pattern_mismatch" and where.startswith("spark."):
        return f"{SPARK_FORMS.get(key, SPARK_FORMS['memory'])} Got {_got(value)}."
    if key == "state_dir" and kind in ("string_pattern_mismatch", "string_too_short"):
        return f"must name a folder, e.g. .healthscore. Got {_got(value)}."
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}. Got {_got(value)}."
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("le", ctx.get("ge"))
        if key in COUNTS and bound is not None:  # a count of days, rows, threads... not a percent
            side = "at most" if kind == "less_than_equal" else "at least"
            return f"must be {side} {bound}. Got {_got(value)}."
        top = 1 if key == "max_rejected_share" else 100
        return f"must be a number between 0 and {top}. Got {_got(value)}."
    if kind in _NUMBER_KINDS:
        return f"must be a number. Got {_got(value)}."
    if kind == "string_type":
        return f"must be text. Got {_got(value)}."
    if kind in _MAPPING_KINDS:
        return f"must be a mapping of keys to values. Got {_got(value)}."
    if kind == "list_type":
        return f"must be a list. Got {_got(value)}."
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false. Got {_got(value)}."
    msg = err.get("msg", "is invalid").removeprefix("Value error, ")
    if kind == "value_error" and " Got " in msg:  # a check across keys says what it got
        return f"{msg}."
    return f"{msg}. Got {_got(value)}."


def _useful(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the branch of a 'mapping or number' union that does not fit the value given."""
    if len(errors) < 2:
        return errors
    out = []
    for err in errors:
        scalar = not isinstance(err.get("input"), dict | list)
        if err["type"] in _MAPPING_KINDS and scalar:
            continue
        if err["type"] in _NUMBER_KINDS and not scalar:
            continue
        out.append(err)
    return out or errors


def _entry_weight(err: dict[str, Any], loc: str) -> dict[str, Any]:
    """A bare entry weight ('logins: 130') gets the weight's range message."""
    parts = loc.split(".")
    if len(parts) > 1 and parts[-2] == "measures" and err["type"] in _NUMBER_KINDS | {"greater_than_equal",
                                                                "less_than_equal"}:
        err = {**err, "type": "greater_than_equal"}
    return err


def raise_config_error(file: str, exc: ValidationError, prefix: str = "") -> None:
    """Raise one ConfigError listing every problem of a file, most specific first."""
    seen: dict[str, str] = {}
    for err in _useful([dict(e) for e in exc.errors(include_url=False)]):
        loc = location(tuple(err["loc"]), tagged_root=bool(prefix))
        if prefix:
            loc = f"{prefix}.{loc}" if loc != "(top level)" else prefix
        seen.setdefault(loc, describe(_entry_weight(err, loc), loc))
    lines = [f"{file}: {loc}: {msg}" for loc, msg in seen.items()]
    raise ConfigError(lines[0], details=lines[1:])
