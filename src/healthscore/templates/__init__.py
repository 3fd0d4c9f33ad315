"""Project templates: each a working project on the demo data."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from healthscore.errors import HealthScoreError

HERE = Path(__file__).parent
TEMPLATES = ("starter", "eight-categories", "risk-modules", "health-index")


def describe(name: str) -> str:
    meta = yaml.safe_load((HERE / name / "project.yml").read_text(encoding="utf-8"))
    return str(meta.get("description", ""))


def project_yaml(path: Path, name: str, data: Path | None) -> str:
    meta = yaml.safe_load((HERE / name / "project.yml").read_text(encoding="utf-8"))
    sources = (HERE / "sources.yml").read_text(encoding="utf-8")
    if data is not None:
        rel = Path(data).resolve()
        sources = sources.replace("path: data/", f"path: {rel.as_posix()}/")
    head = (
        f"# healthscore project (template: {name})\n"
        f"name: {path.resolve().name}\n"
        f"description: {meta['description']}\n"
        f"engine: duckdb        # or spark\n"
        f"state_dir: .healthscore\n"
        f"scorecards: {yaml.safe_dump(meta['scorecards'], default_flow_style=True).strip()}\n"
        f"settings:\n  min_coverage: 50\n  max_rejected_share: 0.05\n"
    )
    if meta.get("workflow"):  # e.g. the template's large-customer line
        head += yaml.safe_dump({"workflow": meta["workflow"]}, sort_keys=False, width=100)
    return head + "\n" + sources


def write_template(path: Path, name: str, data: Path | None = None) -> list[Path]:
    """Write a project folder; refuses to overwrite an existing project."""
    if name not in TEMPLATES:
        raise HealthScoreError(
            f"--template: unknown template {name!r}. Templates: {', '.join(TEMPLATES)}."
        )
    path = Path(path)
    if (path / "healthscore.yml").exists():
        raise HealthScoreError(
            f"{path}: already holds a project (healthscore.yml). Pick an empty folder."
        )
    path.mkdir(parents=True, exist_ok=True)
    written = [path / "healthscore.yml"]
    written[0].write_text(project_yaml(path, name, data), encoding="utf-8")
    for sub in ("measures", "scorecards", "rules", "playbooks", "success_plans"):
        src = HERE / name / sub
        if src.is_dir():
            shutil.copytree(src, path / sub, dirs_exist_ok=True)
            written += sorted((path / sub).glob("*.yml"))
    (path / "data").mkdir(exist_ok=True) if data is None else None
    return written
