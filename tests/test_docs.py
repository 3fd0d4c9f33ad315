"""Docs checked by tests: every command, measure type, scheme and setting is documented."""

from __future__ import annotations

import typing
from pathlib import Path

from healthscore.cli.main import app
from healthscore.config import specs
from healthscore.entities import ENTITIES

DOC_DIR = Path(__file__).parents[1] / "docs"
DOC = (DOC_DIR / "configuration.md").read_text(encoding="utf-8")


def _literal_types(union: object) -> set[str]:
    out: set[str] = set()
    for member in typing.get_args(typing.get_args(union)[0]):
        out.update(typing.get_args(member.model_fields["type"].annotation))
    return out


def test_every_command_is_documented() -> None:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert names and all(f"`healthscore {n}" in DOC for n in names), names


def test_every_measure_type_and_scheme_is_documented() -> None:
    for kind in _literal_types(specs.MeasureSpec) | _literal_types(specs.SchemeSpec):
        assert f"`{kind}`" in DOC, kind


def test_every_setting_source_key_and_entity_is_documented() -> None:
    keys = [*specs.SettingsSpec.model_fields, *specs.SourceSpec.model_fields,
            *specs.ProjectSpec.model_fields, *ENTITIES]
    missing = [k for k in keys if k not in DOC]
    assert not missing, missing


def test_every_api_route_and_page_is_documented() -> None:
    import re

    from healthscore.web import api, pages

    web = re.sub(r"\{[a-z_]+\}", "{}", (DOC_DIR / "web.md").read_text(encoding="utf-8"))
    documented = set(re.findall(r"`(?:GET |POST |PATCH |DELETE )?(/[^` ]*)", web))
    routes = [*api.router.routes, *(r for r in pages.router.routes if "GET" in r.methods)]  # type: ignore[attr-defined]
    paths = {re.sub(r"\{[a-z_]+\}", "{}", r.path) for r in routes} - {"/", "/login"}
    missing = sorted(paths - documented)
    assert not missing, missing
