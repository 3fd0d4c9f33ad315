"""One validation from options to files: the report, the JSON, the suggestion and the record
that ``healthscore run`` reads to remind the team to review the scorecard."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from healthscore.config.model import ProjectConfig
from healthscore.config.windows import parse_days
from healthscore.dates import date_grid, minus_months
from healthscore.errors import HealthScoreError
from healthscore.validation.options import Options

RECORD = "validations.jsonl"


def duration_days(text: str | int, key: str) -> int:
    """'90d', '12 weeks', '3 months' or '0d' as days; errors name the option."""
    if isinstance(text, int) or str(text).strip().isdigit():
        return int(text)
    if str(text).strip().lower() in ("0d", "0 days", "0w"):
        return 0
    try:
        return parse_days(str(text))
    except ValueError as err:
        raise HealthScoreError(f"{key}: {err}") from None


def options(
    config: ProjectConfig, *, start: date | str | None = None, end: date | str | None = None,
    every: str | None = None, horizon: str | None = None, lead: str | None = None,
    outcome: str | None = None, scorecard: str | None = None, now: datetime | None = None,
) -> Options:
    """``now`` is when the validation runs (stamped on its JSON and record); default the clock."""
    v = config.validation
    outcome = outcome or v.outcome
    if outcome not in ("churn", "renewal", "expansion"):
        raise HealthScoreError(f"--outcome: must be churn, renewal or expansion. Got {outcome!r}.")
    horizon_days = duration_days(horizon or v.horizon, "--horizon")
    lead_days = duration_days(lead or v.lead, "--lead")
    if horizon_days <= 0:
        raise HealthScoreError(f"--horizon: must be at least one day. Got {horizon!r}.")
    start = start or v.start
    end = end or v.end
    if start is None and end is None:
        # the twelve months whose outcome windows are over by the observed date (set later)
        dates: list[date] = []
    else:
        if end is None:
            raise HealthScoreError("--from needs --to: the last as-of date of the backtest.")
        if start is None:
            start = minus_months(_as_date(end), 11, False)
        dates = date_grid(None, start, end, every or v.every)
    return Options(
        dates=dates, outcome=outcome, horizon_days=horizon_days, lead_days=lead_days,
        observed_until=v.observed_until, scorecard=scorecard, segment_by=v.segment_by,
        folds=v.folds, bootstrap=v.bootstrap, seed=v.seed, extra={"every": every or v.every},
        now=now or datetime.now(),
    )


def _as_date(d: date | str) -> date:
    return d if isinstance(d, date) else date.fromisoformat(str(d))


@dataclass
class Validation:
    """What ``validate`` computed; ``write`` puts it on disk."""

    result: dict[str, Any]
    config: ProjectConfig

    @property
    def summary(self) -> dict[str, Any]:
        from healthscore.validation import backtest

        return backtest.to_json(self.result["overall"])

    def to_json(self) -> dict[str, Any]:
        from healthscore.validation import backtest

        return backtest.to_json(self.result)

    def suggestion_yaml(self) -> str:
        from healthscore.validation import backtest

        target = next(sc for sc in self.config.all_scorecards if sc.name == self.result["scorecard"])
        return backtest.suggestion_yaml(self.result, target)

    def write(self, folder: Path) -> tuple[Path, Path]:
        """report.html and validation.json in ``folder``, written whole or not at all."""
        from healthscore.validation import report

        folder.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        html = report.render(data)
        out_json, out_html = folder / "validation.json", folder / "report.html"
        for path, text in ((out_json, json.dumps(data, indent=2)), (out_html, html)):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return out_html, out_json

    def record(self, report_path: Path | None) -> None:
        o = self.result["overall"]
        entry = {
            "at": self.result["generated_at"],
            "versions": self.result["versions"], "outcome": self.result["outcome"],
            "horizon_days": self.result["horizon_days"],
            "dates": [self.result["dates"][0], self.result["dates"][-1]],
            "observations": o["observations"], "auc": o["auc"],
            "report": str(report_path) if report_path else None,
        }
        path = self.config.state_dir / RECORD
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def run(
    config: ProjectConfig, opts: Options, compare_with: str | None,
    progress: Callable[[str], None],
) -> Validation:
    """The backtest, and the comparison with ``compare_with`` (a scorecard file or a git
    revision), which is read first: a version that cannot be read fails before the backtest."""
    # imported here: scikit-learn is loaded only by the commands that backtest
    from healthscore.validation import backtest, compare

    other = compare.load_other(config, compare_with) if compare_with else None
    result = backtest.validate(config, opts, progress)
    if compare_with and other is not None:
        progress(f"comparing with {compare_with}")
        result["compare"] = compare.compare(config, other, compare_with, result, opts, progress)
    return Validation(result, config)


def last_validations(config: ProjectConfig) -> list[dict[str, Any]]:
    path = config.state_dir / RECORD
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def review_warnings(config: ProjectConfig, today: date | None = None) -> list[str]:
    """A reminder per primary scorecard not validated within ``validation.review_every``."""
    today = today or date.today()
    period = duration_days(config.validation.review_every, "validation.review_every")
    records = last_validations(config)
    out = []
    for sc in config.scorecards:
        version = sc.version(config.measures)
        seen = [r for r in records if sc.name in r.get("versions", {})]
        if not seen:
            out.append(f"scorecard {sc.name} has never been validated against outcomes: run "
                       f"'healthscore validate' (review every {period} days).")
            continue
        last = seen[-1]
        when = datetime.fromisoformat(last["at"]).date()
        if last["versions"][sc.name] != version:
            out.append(f"scorecard {sc.name} changed since it was validated on {when}: run "
                       f"'healthscore validate' to check the new version.")
        elif today - when > timedelta(days=period):
            out.append(f"scorecard {sc.name} was last validated on {when}, "
                       f"{(today - when).days} days ago (review every {period} days): run "
                       f"'healthscore validate'.")
    return out
