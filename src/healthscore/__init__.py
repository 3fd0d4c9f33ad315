"""healthscore: explained customer health scores that prove they predict churn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from healthscore.errors import ConfigError, DataError, HealthScoreError, NotFoundError

if TYPE_CHECKING:
    from healthscore.project import Project

__all__ = ["ConfigError", "DataError", "HealthScoreError", "NotFoundError", "Project"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Project pulls in the engine (ibis, duckdb, pandas, sklearn): imported on first use, so
    # that `healthscore --help` and every other surface that does not score start quickly
    if name == "Project":
        from healthscore.project import Project

        return Project
    raise AttributeError(f"module 'healthscore' has no attribute {name!r}")
