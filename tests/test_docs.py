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


ALL_DOCS = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOC_DIR.glob("*.md")))


def test_every_subcommand_is_documented() -> None:
    import re

    spans = re.findall(r"`([^`]*)`", ALL_DOCS)
    subs = [(g.name, c.name or c.callback.__name__) for g in app.registered_groups  # type: ignore[union-attr]
            for c in g.typer_instance.registered_commands]  # type: ignore[union-attr]
    missing = [f"{g} {c}" for g, c in subs
               if not any(re.search(rf"healthscore {g}\b[^`]*\b{re.escape(c)}\b", s) for s in spans)]
    assert len(subs) > 20 and not missing, missing


def test_every_key_of_every_spec_model_is_documented() -> None:
    import re

    import pydantic

    from healthscore.workflow import specs as workflow_specs

    keys = [(m.__name__, info.alias or name)
            for mod in (specs, workflow_specs) for m in vars(mod).values()
            if isinstance(m, type) and issubclass(m, pydantic.BaseModel) and m.__module__ == mod.__name__
            for name, info in m.model_fields.items()]
    missing = [f"{m}.{k}" for m, k in keys if not re.search(rf"\b{re.escape(k)}\b", ALL_DOCS)]
    assert len(keys) > 100 and not missing, missing


def test_every_signal_in_the_docs_names_library_measures_that_the_cli_lists() -> None:
    """The literature's checklist (seed 001) and seed 000's signals: each row of the table in
    configuration.md names measures of the library, and `healthscore measures` lists them."""
    import re

    from typer.testing import CliRunner

    from healthscore.config.load import load_measure_file

    table = DOC.split("The signals the literature lists each have a measure:", 1)[1].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    library = load_measure_file(Path(specs.__file__).parent / "library.yml", "library.yml")
    listed = CliRunner().invoke(app, ["measures"], env={"COLUMNS": "200"}).output
    assert len(rows) == 15
    for row in rows:
        for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[2]):
            assert name in library and f" {name} " in listed, (row, name)
