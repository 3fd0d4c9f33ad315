"""Fuzzing the project files and the data (seeded and bounded): hypothesis mutates a working mini
project - a key of its YAML removed, a value replaced by nonsense (huge, negative, NaN, quotes,
NUL, wrong types), an unknown key added; a cell of its CSVs replaced - and every mutation must
end in a success or a clean error that says where (a HealthScoreError; a config error names
its file), never a traceback, and a run that fails writes no snapshot."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from healthscore.errors import ConfigError, HealthScoreError
from healthscore.project import Project

from .projects import AS_OF, MINI, write_project

RULES = ("low:\n  when: \"score < 50\"\n"
         "  cta: {type: risk, reason: Low, priority: high, due_in: 7d}\n")
FILES = {**MINI, "rules/default.yml": RULES}
YAML_FILES = ["healthscore.yml", "measures/usage.yml", "scorecards/default.yml",
              "rules/default.yml"]
NONSENSE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**15, 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "'", '"', "a'b\"c", "\x00", "-30d", "99999999999d", "1e309", "lots",
                     "${NOPE}", "../../etc/passwd", "score > 5", "; drop table x", "P1",
                     "red", "0", "month", "12 GB"]),
    st.text(max_size=8),
    st.lists(st.integers(-5, 200), max_size=3),
    st.dictionaries(st.sampled_from(["type", "weight", "x", "low", "high"]),
                    st.integers(-5, 200), max_size=2),
)
LOCATED = re.compile(r"^(\(built-in [a-z_ ]+\)|[\w./-]+\.ya?ml)(: |$)")
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(tree: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "replace":
        parent[last] = value
    elif op == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):  # add an unknown key beside the others
        parent[last]["surprise_key"] = value
    else:
        parent[last] = {"surprise_key": value}
    return tree


def _outcome(root: Path) -> None:
    """Load, check and run; a clean error leaves no snapshot behind."""
    try:
        project = Project.load(root)
        project.check()
        project.run(as_of=AS_OF)
    except HealthScoreError as err:
        text = err.message
        assert text.strip() and "Traceback" not in text, text
        if isinstance(err, ConfigError):
            assert LOCATED.match(text), f"config error without its file: {text!r}"
        snapshots = root / ".healthscore" / "snapshots"
        written = sorted(p.name for p in snapshots.iterdir()) if snapshots.exists() else []
        assert written == [], f"a failed run left snapshots {written}: {text}"
        leftovers = [p.name for p in (root / ".healthscore").glob(".staging-*")]
        assert leftovers == [], leftovers


@seed(20261201)
@SETTINGS
@given(data=st.data())
def test_mutated_project_files_end_in_success_or_a_located_error(
        data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    name = data.draw(st.sampled_from(YAML_FILES), label="file")
    tree = yaml.safe_load(str(FILES[name]))
    path = data.draw(st.sampled_from(_paths(tree)), label="path")
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]), label="op")
    value = data.draw(NONSENSE, label="value")
    mutated = _mutate(tree, path, op, value)
    root = tmp_path_factory.mktemp("fuzz-config")
    try:
        text = yaml.safe_dump(mutated, allow_unicode=True)
    except yaml.YAMLError:  # pragma: no cover - safe_dump takes every value drawn here
        return
    write_project(root, {**FILES, name: text})
    _outcome(root)
    shutil.rmtree(root, ignore_errors=True)


CELLS = st.one_of(
    st.sampled_from(["", "NaN", "inf", "-inf", "1e309", "-1", "0", "2025-02-30",
                     "2099-01-01 00:00:00", "1970-01-01", "not a date", "'", '"', "\x00",
                     "A1", "A9", "login", "99999999999999999999", "12:00"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


@seed(20261202)
@SETTINGS
@given(data=st.data())
def test_mutated_data_cells_end_in_success_or_a_located_error(
        data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    name = data.draw(st.sampled_from(["data/accounts.csv", "data/usage_events.csv"]),
                     label="file")
    lines = str(FILES[name]).splitlines()
    row = data.draw(st.integers(1, len(lines) - 1), label="row")
    cells = lines[row].split(",")
    col = data.draw(st.integers(0, len(cells) - 1), label="column")
    cell = data.draw(CELLS, label="cell").replace("\n", " ").replace("\r", " ")
    quoted = '"' + cell.replace('"', '""') + '"' if ("," in cell or '"' in cell) else cell
    cells[col] = quoted
    lines[row] = ",".join(cells)
    root = tmp_path_factory.mktemp("fuzz-data")
    write_project(root, {**FILES, name: "\n".join(lines) + "\n"})
    _outcome(root)
    shutil.rmtree(root, ignore_errors=True)
