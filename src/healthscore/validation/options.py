"""What a backtest is asked to do: a light module, so that checking a project's
``validation:`` section does not import the estimators (scikit-learn) behind the backtest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Options:
    dates: list[date]
    outcome: str = "churn"
    horizon_days: int = 90
    lead_days: int = 0
    observed_until: date | None = None
    scorecard: str | None = None
    segment_by: str = "segment"
    folds: int = 4
    bootstrap: int = 200
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    now: datetime = field(default_factory=datetime.now)  # when it runs (injected by session)

    @property
    def good_outcome(self) -> bool:
        return self.outcome != "churn"
