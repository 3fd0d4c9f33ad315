"""Read a project folder's YAML files into specs (step one of two)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from healthscore.config import specs
from healthscore.config.errors import raise_config_error
from healthscore.errors import ConfigError

PROJECT_FILE = "healthscore.yml"
LIBRARY = Path(__file__).with_name("library.yml")

_measure_adapter: TypeAdapter[Any] = TypeAdapter(specs.MeasureSpec)


@dataclass(frozen=True)
class MeasureSource:
    spec: Any
    file: str


@dataclass(frozen=True)
class ProjectSpecs:
    root: Path
    project: specs.ProjectSpec
    measures: dict[str, MeasureSource]
    scorecards: dict[str, tuple[specs.ScorecardSpec, str]]


class _UniqueKeys:
    """Refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the first one would be ignored)",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """The pure-Python loader: its error messages are the ones users see."""


# libyaml's parser, about ten times faster; a file it refuses is read again by the loader
# above, so the error names the same problem and line either way
_FastLoader: type = type("_FastLoader", (_UniqueKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)), {})


def read_yaml(path: Path, rel: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{rel}: cannot be read ({err.strerror}).") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{rel}: is not UTF-8 text. Save it with UTF-8 encoding (most editors: 'Save with "
            f"encoding' > UTF-8)."
        ) from None
    try:
        return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(unknown line)"
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(
            f"{rel}: {where}: invalid YAML: {problem}. Check indentation and quoting."
        ) from None


def _mapping(data: Any, rel: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{rel}: (top level): must be a mapping of keys to values.")
    return data


def load_project_spec(root: Path) -> specs.ProjectSpec:
    path = root / PROJECT_FILE
    if not path.is_file():
        raise ConfigError(
            f"{root}: no {PROJECT_FILE} here. "
            f"Create a project with 'healthscore init {root}' or pass the project folder."
        )
    data = _mapping(read_yaml(path, PROJECT_FILE), PROJECT_FILE)
    try:
        return specs.ProjectSpec.model_validate(data)
    except ValidationError as err:
        raise_config_error(PROJECT_FILE, err)
        raise  # unreachable


def load_measure_file(path: Path, rel: str) -> dict[str, MeasureSource]:
    data = _mapping(read_yaml(path, rel), rel)
    out: dict[str, MeasureSource] = {}
    for name, body in data.items():
        try:
            out[str(name)] = MeasureSource(_measure_adapter.validate_python(body), rel)
        except ValidationError as err:
            raise_config_error(rel, err, prefix=str(name))
    return out


def load_measures(root: Path) -> dict[str, MeasureSource]:
    measures = load_measure_file(LIBRARY, "(built-in library)")
    folder = root / "measures"
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        rel = f"measures/{path.name}"
        for name, source in load_measure_file(path, rel).items():
            if name in seen:
                raise ConfigError(
                    f"{rel}: {name}: is also defined in {seen[name]}. Give one of them "
                    f"another name."
                )
            seen[name] = rel
            measures[name] = source
    return measures


def load_scorecards(root: Path) -> dict[str, tuple[specs.ScorecardSpec, str]]:
    out: dict[str, tuple[specs.ScorecardSpec, str]] = {}
    folder = root / "scorecards"
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        rel = f"scorecards/{path.name}"
        data = _mapping(read_yaml(path, rel), rel)
        try:
            out[path.stem] = (specs.ScorecardSpec.model_validate(data), rel)
        except ValidationError as err:
            raise_config_error(rel, err)
    return out


def load_specs(root: Path) -> ProjectSpecs:
    root = Path(root).resolve()
    return ProjectSpecs(
        root=root,
        project=load_project_spec(root),
        measures=load_measures(root),
        scorecards=load_scorecards(root),
    )
