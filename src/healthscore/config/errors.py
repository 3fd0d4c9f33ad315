"""Turn pydantic validation errors into messages a CS analyst can act on."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from healthscore.errors import ConfigError


def location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not _is_union_tag(p)]
    return ".".join(parts) if parts else "(top level)"


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the discriminator value or the member type name to the location
    text = str(part)
    return text in _UNION_MEMBERS or "[" in text or text.startswith("function-")


_UNION_MEMBERS = {
    "thresholds", "linear", "percentile", "boolean", "category", "count", "count_distinct",
    "sum", "avg", "min", "max", "latest", "days_since", "ratio", "change", "tenure",
    "attribute", "manual", "expression", "EntrySpec", "float", "str", "constrained-float",
    "literal['skip']",
}


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def describe(err: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    """One pydantic error -> 'what is wrong. Got X.'"""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "is required but missing. Add it."
    if kind == "extra_forbidden":
        return f"unknown key. Check the spelling; see the docs for the valid keys. Got {_got(value)}."
    if kind == "union_tag_invalid":
        tags = ctx.get("expected_tags", "")
        return f"unknown type {ctx.get('tag')!r}. Valid types: {tags}."
    if kind == "union_tag_not_found":
        return f"needs a 'type:' key. Valid types: {_tags_of(err)}."
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}. Got {_got(value)}."
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"must be a number between 0 and 100. Got {_got(value)}."
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "finite_number"):
        return f"must be a number. Got {_got(value)}."
    if kind in ("string_type",):
        return f"must be text. Got {_got(value)}."
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping of keys to values. Got {_got(value)}."
    if kind == "list_type":
        return f"must be a list. Got {_got(value)}."
    if kind == "bool_parsing" or kind == "bool_type":
        return f"must be true or false. Got {_got(value)}."
    msg = err.get("msg", "is invalid").removeprefix("Value error, ")
    return f"{msg}. Got {_got(value)}."


def _tags_of(err: dict[str, Any]) -> str:
    return str((err.get("ctx") or {}).get("expected_tags", ""))


def raise_config_error(file: str, exc: ValidationError, prefix: str = "") -> None:
    """Raise one ConfigError listing every problem of a file, most specific first."""
    seen: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = location(tuple(err["loc"]))
        if prefix:
            loc = f"{prefix}.{loc}" if loc != "(top level)" else prefix
        # a union of EntrySpec | number reports both branches; keep the first per location
        seen.setdefault(loc, describe(dict(err)))
    lines = [f"{file}: {loc}: {msg}" for loc, msg in seen.items()]
    message = lines[0]
    raise ConfigError(message, details=lines[1:])
