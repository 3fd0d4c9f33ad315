"""Compare the scorecard with another version of it on the same observations.

The other version is a scorecard YAML file, or a git revision of the project (its
``healthscore.yml``, ``measures/`` and ``scorecards/`` at that revision, read with the
data of today, so both versions score the same accounts on the same dates)."""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from healthscore.config.load import PROJECT_FILE, load_specs
from healthscore.config.model import ProjectConfig
from healthscore.config.resolve import resolve
from healthscore.errors import HealthScoreError
from healthscore.validation import backtest, observations


def load_other(config: ProjectConfig, what: str) -> ProjectConfig:
    path = Path(what)
    if not path.is_absolute():
        path = Path.cwd() / path
    if path.suffix in (".yml", ".yaml") and path.is_file():
        return _with_scorecard_file(config, path)
    return _at_revision(config, what)


def _with_scorecard_file(config: ProjectConfig, path: Path) -> ProjectConfig:
    """The project with ``path`` as its only scorecard."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _copy_yaml(config.root, root)
        for old in (root / "scorecards").glob("*.y*ml"):
            old.unlink()
        (root / "scorecards").mkdir(exist_ok=True)
        (root / "scorecards" / path.name).write_text(path.read_text(encoding="utf-8"), "utf-8")
        text = (root / PROJECT_FILE).read_text(encoding="utf-8")
        (root / PROJECT_FILE).write_text(_only_scorecard(text, path.stem), encoding="utf-8")
        return _resolve_at(root, config.root)


def _only_scorecard(text: str, name: str) -> str:
    import yaml

    data = yaml.safe_load(text)
    data["scorecards"] = [name]
    data.pop("also", None)
    return yaml.safe_dump(data, sort_keys=False)


def _copy_yaml(src: Path, dst: Path) -> None:
    (dst / PROJECT_FILE).write_text((src / PROJECT_FILE).read_text(encoding="utf-8"), "utf-8")
    for folder in ("measures", "scorecards"):
        for f in (src / folder).glob("**/*.y*ml") if (src / folder).exists() else []:
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.read_text(encoding="utf-8"), "utf-8")


def _at_revision(config: ProjectConfig, rev: str) -> ProjectConfig:
    root = config.root
    top = _git(root, "rev-parse", "--show-toplevel", what=rev).strip()
    rel = root.resolve().relative_to(Path(top).resolve())
    prefix = "" if str(rel) == "." else f"{rel.as_posix()}/"
    listing = _git(Path(top), "ls-tree", "-r", "--name-only", rev, "--", prefix or ".", what=rev)
    folders = (f"{prefix}measures/", f"{prefix}scorecards/")
    wanted = [f for f in listing.splitlines()
              if f == f"{prefix}{PROJECT_FILE}" or f.startswith(folders)]
    if f"{prefix}{PROJECT_FILE}" not in wanted:
        raise HealthScoreError(f"--compare: revision {rev!r} has no {prefix}{PROJECT_FILE}.")
    with tempfile.TemporaryDirectory() as tmp:
        for f in wanted:
            target = Path(tmp) / f[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_git(root, "show", f"{rev}:{f}", what=rev), encoding="utf-8")
        return _resolve_at(Path(tmp), root)


def _git(root: Path, *args: str, what: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise HealthScoreError("--compare: git is not installed; pass a scorecard file instead.") from None
    if done.returncode != 0:
        raise HealthScoreError(
            f"--compare: {what!r} is neither a scorecard file (.yml) nor a git revision of "
            f"{root}. Pass a path such as scorecards/old.yml, or a revision such as HEAD~1."
        )
    return done.stdout


def _resolve_at(specs_root: Path, data_root: Path) -> ProjectConfig:
    """Resolve YAML read from ``specs_root`` with paths relative to ``data_root``."""
    ps = load_specs(specs_root)
    ps = dataclasses.replace(ps, root=data_root)
    return resolve(ps)


def compare(
    config: ProjectConfig, other: ProjectConfig, label: str, result: dict[str, Any],
    opts: backtest.Options, progress: Any,
) -> dict[str, Any]:
    from datetime import date

    dates = [date.fromisoformat(d) for d in result["dates"]]
    obs = observations.build(other, dates, opts.outcome, opts.horizon_days, opts.lead_days,
                             opts.observed_until, progress)
    mine = _primary_keyed(result["_primary"])
    theirs = _primary_keyed(obs.primary())[["account_id", "as_of", "score", "band"]]
    both = mine.merge(theirs, on=["account_id", "as_of"], how="inner", suffixes=("", "_other"))
    this_rows = both[["account_id", "as_of", "label", "event_date", "score", "band"]]
    other_rows = both[["account_id", "as_of", "label", "event_date"]].assign(
        score=both["score_other"], band=both["band_other"])
    bands_this = backtest._bands(config.scorecards[-1])
    bands_other = backtest._bands(other.scorecards[-1])
    return {
        "other": label, "observations": int(len(both)),
        "this": backtest.score_metrics(this_rows, bands_this, opts),
        "that": backtest.score_metrics(other_rows, bands_other, opts),
        "versions_other": {sc.name: sc.version(other.measures) for sc in other.all_scorecards},
    }


def _primary_keyed(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["account_id", "as_of", "label", "event_date", "score", "band"]
    return frame[cols].reset_index(drop=True)
