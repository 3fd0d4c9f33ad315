"""`Project`: the one object behind the CLI, the API, the web app and the tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from healthscore import pipeline
from healthscore.config.load import load_specs
from healthscore.config.model import ProjectConfig
from healthscore.config.resolve import resolve
from healthscore.dates import date_grid
from healthscore.errors import HealthScoreError
from healthscore.measures.carry import Carry
from healthscore.pipeline import incremental
from healthscore.sources.clean import DataHealth
from healthscore.store.snapshots import SnapshotStore
from healthscore.validation.session import Validation, review_warnings
from healthscore.validation.session import options as validation_options
from healthscore.validation.session import run as run_validation
from healthscore.workflow.config import load_workflow

if TYPE_CHECKING:  # the workflow store (SQLAlchemy, Alembic, argon2): imported when opened
    import pandas as pd  # (and pandas, by what reads or reports scores: not by a run)

    from healthscore.workflow.service import Workflow


def _quiet(_: str) -> None:
    return None


@dataclass
class RunResult:
    """What a run computed and wrote; the scores themselves are read back on demand."""

    dates: list[date]
    rows: int
    seconds: float
    health: dict[str, DataHealth]
    store: SnapshotStore
    warnings: list[str] = field(default_factory=list)
    reminders: list[str] = field(default_factory=list)  # e.g. the scorecard is due for review
    workflow: dict[str, Any] | None = None  # what applying the rules did
    cached: list[str] = field(default_factory=list)  # sources unchanged: from the source cache
    incremental: str = ""  # how the dates were computed: from the kept state, or why not
    recomputed: list[date] = field(default_factory=list)  # stored dates late rows touched

    def to_arrow(self, primary_only: bool = False) -> pa.Table:
        tables = [self.store.read(d, primary_only=primary_only) for d in self.dates]
        return pa.concat_tables(tables, promote_options="default")

    def to_pandas(self, primary_only: bool = False) -> Any:
        return self.to_arrow(primary_only).to_pandas()


@dataclass
class CheckResult:
    config: ProjectConfig
    health: dict[str, DataHealth]
    cached: list[str] = field(default_factory=list)  # sources unchanged: from the source cache

    @property
    def warnings(self) -> list[str]:
        return data_warnings(self.health, date.today())


def data_warnings(health: dict[str, DataHealth], as_of: date) -> list[str]:
    out = []
    for h in health.values():
        if h.rows_rejected:
            first = "; ".join(h.examples[:3])
            out.append(f"{h.entity}: {h.rows_rejected} of {h.rows_read} rows "
                       f"rejected ({', '.join(f'{k}: {v}' for k, v in h.reasons.items())}). "
                       f"First: {first}.")
        out += [f"{h.entity}: {n}" for n in h.notes]
        if h.stale_on(as_of):
            out.append(f"{h.entity}: newest row is from {h.newest}, older than "
                       f"{h.stale_after_days} days before {as_of}; its measures count as missing.")
    return out


class Project:
    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self.store = SnapshotStore(config.state_dir)
        self.store.recover()  # a run killed in its swap is finished before anything reads

    @classmethod
    def load(cls, path: str | Path = ".") -> Project:
        return cls(resolve(load_specs(Path(path))))

    @property
    def root(self) -> Path:
        return self.config.root

    # ------------------------------------------------------------------ computing

    def check(self, progress: Callable[[str], None] = _quiet, *, cache: bool = True) -> CheckResult:
        """Validate the project and read every source, without scoring or writing: every file
        and key any command reads (rules, playbooks, success-plan templates, the validation:
        and workflow: sections too), so what passes check does not fail later on config.
        ``cache=False`` reads and checks every source again, not taking unchanged ones from
        the source cache."""
        self.check_config()
        engine = pipeline.open_engine(self.config)
        try:
            loaded = pipeline.load_sources(self.config, engine, progress, cache)
        finally:
            engine.close()
        return CheckResult(self.config, loaded.health, sorted(loaded.cached))

    def check_config(self) -> None:
        """The parts of the configuration read only by some commands, checked now."""
        from healthscore.errors import ConfigError
        from healthscore.validation.session import duration_days

        scored = sorted({m for sc in self.config.all_scorecards for m in sc.measures})
        load_workflow(self.root, self.config.rule_names(), self.config.workflow)
        v = self.config.validation
        if v.start and v.end and v.start > v.end:
            raise ConfigError(f"healthscore.yml: validation.from: {v.start} is after "
                              f"validation.to ({v.end}). Swap them.")
        try:
            validation_options(self.config)
            duration_days(self.config.validation.review_every, "review_every")
        except HealthScoreError as err:
            text = err.message.lstrip("-")
            raise ConfigError(f"healthscore.yml: validation.{text}") from None
        temperature = self.config.workflow.temperature
        if temperature and temperature not in scored:
            raise ConfigError(
                f"healthscore.yml: workflow.temperature: {temperature!r} is not a measure of the "
                f"scorecards. Add it to a scorecard (an 'also' scorecard will do) or pick another.")

    def run(
        self,
        as_of: date | str | None = None,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        every: str = "month",
        dates: list[date] | None = None,
        progress: Callable[[str], None] = _quiet,
        apply_rules: bool = True,
        today: date | None = None,
        cache: bool = True,
        full: bool = False,
    ) -> RunResult:
        """Score every account for one or many as-of dates and store one snapshot per date;
        then, when the project has rules, apply their plan to the workflow store.
        ``cache=False`` reads and checks every source again (see :meth:`check`). One date
        after the newest stored one is computed from the state the last run kept, when
        nothing it depends on changed (see :mod:`healthscore.pipeline.incremental`);
        ``full=True`` computes it from the sources."""
        grid = dates or date_grid(as_of, start, end, every)
        if apply_rules and self.has_rules():  # a mistake in the rules stops the run before it scores
            load_workflow(self.root, self.config.rule_names(), self.config.workflow)
            if self._has_workflow_store():  # and so does work that would go to nobody
                wf = self.workflow(today=today)
                try:
                    wf.check_owners()
                finally:
                    wf.close()
        began = time.perf_counter()
        engine = pipeline.open_engine(self.config)
        try:
            loaded = pipeline.load_sources(self.config, engine, progress, cache)
            plan, written = self._score(loaded, sorted(set(grid)), full, progress)
        finally:
            engine.close()
        seconds = time.perf_counter() - began
        result = RunResult(plan.dates, written, seconds, loaded.health, self.store,
                           data_warnings(loaded.health, max(grid)), review_warnings(self.config),
                           cached=sorted(loaded.cached), incremental=plan.note,
                           recomputed=plan.recomputed)
        self._log_run(result)
        if apply_rules and self.has_rules():
            progress("applying rules")
            wf = self.workflow(today=today)
            try:
                result.workflow = wf.plan_and_apply()
            finally:
                wf.close()
        return result

    def _score(self, loaded: pipeline.Loaded, dates: list[date], full: bool,
               progress: Callable[[str], None]) -> tuple[incremental.Plan, int]:
        """Score ``dates`` into the store, from the kept state when it allows (and keep the
        new state when the last date is the newest stored one); the plan and rows written."""
        stored = self.store.dates()
        plan = incremental.plan(self.config, loaded, stored, dates, full)
        keep = self.config.engine == "duckdb" and max(plan.dates) >= max(stored, default=min(plan.dates))
        pending = None
        try:
            with self.store.staging() as stage:
                carries = self._score_plan(loaded, plan, stage, progress)
                if carries is None:  # the kept state did not hold what the run needs
                    plan = incremental.Plan(plan.dates[-1:], None, "computed from the sources: "
                                            "the kept state does not match this configuration")
                    carries = self._score_plan(loaded, plan, stage, progress)
                written = _count_rows(stage)
                loaded.check_unchanged()  # what was scored is what was checked
                pipeline.save_definitions(self.config, self.store)
                if keep and carries:
                    pending = incremental.write_pending(
                        self.config, loaded, carries, max(plan.dates), plan.prints,
                        plan.ahead if plan.prev is not None else None)
                    incremental.forget(self.config.state_dir)  # before the dates it describes go
        except BaseException:
            incremental.discard(pending)
            raise
        if pending is not None:
            incremental.commit(pending, self.config.state_dir)
        return plan, written

    def _score_plan(self, loaded: pipeline.Loaded, plan: incremental.Plan, stage: Path,
                    progress: Callable[[str], None]) -> list[Carry] | None:
        if plan.prev is None:
            # one date: its contributions are few, so they are computed once and the kept
            # values read that copy (a longer range would hold every date's in memory)
            one = len(plan.dates) == 1
            carry = Carry(materialize=loaded.engine.materialize if one else None)
            pipeline.score_in_passes(self.config, loaded, plan.dates, stage, progress, carry)
            return [carry]
        try:
            expr, carries = incremental.score_day(self.config, loaded, plan)
        except incremental.StateMismatch:
            return None
        progress("scoring 1 as-of date from the kept state|0|1")
        pipeline.write_snapshots(self.config, loaded.engine, expr, stage, one_date=True)
        progress("scoring 1 as-of date from the kept state|1|1")
        return carries

    def _log_run(self, result: RunResult) -> None:
        entry = {
            "at": datetime.now().isoformat(timespec="seconds"),
            "dates": [result.dates[0].isoformat(), result.dates[-1].isoformat()],
            "n_dates": len(result.dates), "rows": result.rows, "computed": result.incremental,
            "seconds": round(result.seconds, 3),
            "health": {k: v.as_dict() for k, v in result.health.items()},
        }
        log = self.config.state_dir / "runs.jsonl"
        with log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    def last_run(self) -> dict[str, Any] | None:
        log = self.config.state_dir / "runs.jsonl"
        if not log.exists():
            return None
        lines = log.read_text(encoding="utf-8").strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def workflow(self, url: str | None = None, today: date | None = None) -> Workflow:
        """The workflow store of the project (CTAs, overrides, success plans...). Close it after."""
        from healthscore.workflow.service import Workflow

        return Workflow(self.config, self.store, url=url, today=today)

    def has_rules(self) -> bool:
        return any((self.root / "rules").glob("*.y*ml"))

    def validate(
        self,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        every: str | None = None,
        horizon: str | None = None,
        lead: str | None = None,
        outcome: str | None = None,
        scorecard: str | None = None,
        compare: str | None = None,
        progress: Callable[[str], None] = _quiet,
        now: datetime | None = None,
    ) -> Validation:
        """Backtest the scorecards against the outcomes that followed each as-of date.

        Arguments left out come from the project's ``validation:`` section; ``now`` (default
        the clock) is the time stamped on the result."""
        opts = validation_options(self.config, start=start, end=end, every=every, horizon=horizon,
                                  lead=lead, outcome=outcome, scorecard=scorecard, now=now)
        result = run_validation(self.config, opts, compare, progress)
        if opts.outcome == "churn" and self._has_workflow_store():
            self._judge_overrides(result)
        return result

    def preview(self, as_of: date | str | None = None, progress: Callable[[str], None] = _quiet,
                workflow: Workflow | None = None) -> dict[str, Any]:
        """A dry run of the scorecards as they are now against the latest (or given) snapshot,
        writing nothing: version changes, a band matrix, the biggest score moves with their
        reasons, and the CTAs the rules would open and close once 'run' stores the new scores
        (planned on ``workflow``, default the project's store)."""
        from healthscore.store import report

        day = self._day(as_of)
        new = self._dry_run_scores(day, progress)
        old = self.store.read(day, primary_only=True).to_pandas()
        definitions = {sc.version(self.config.measures): sc.definition(self.config.measures)
                       for sc in self.config.all_scorecards}

        def definition(version: str) -> Any:
            return definitions.get(version) or self.store.definition(version)

        out = {"as_of": day.isoformat(), **report.compare_scores(old, new, definition)}
        out["rules"] = self._preview_rules(day, new, workflow) if self.has_rules() else None
        return out

    def _dry_run_scores(self, day: date, progress: Callable[[str], None]) -> pd.DataFrame:
        """The primary scores of ``day`` from the sources as they are now (kept by
        :func:`preview.dry_run_scores` while they would come out the same)."""
        from healthscore.project.preview import dry_run_scores


        def score() -> pd.DataFrame:
            engine = pipeline.open_engine(self.config)
            try:
                loaded = pipeline.load_sources(self.config, engine, progress)
                new = pipeline.score_frame(self.config, loaded, [day], progress)
            finally:
                engine.close()
            return new[new["is_primary"]].reset_index(drop=True)

        return dry_run_scores(self.config, day, score)

    def scorecards_changed(self) -> list[str]:
        """Scorecards whose definition differs from the one in the latest snapshot."""
        if not self.store.dates():
            return []
        stored = self.store.read(self.store.latest(), columns=["scorecard", "version"])
        have = set(zip(stored["scorecard"].to_pylist(), stored["version"].to_pylist(), strict=True))
        names = {n for n, _ in have}
        return [sc.name for sc in self.config.all_scorecards
                if sc.name not in names or (sc.name, sc.version(self.config.measures)) not in have]

    def _preview_rules(self, day: date, new: pd.DataFrame, given: Workflow | None) -> dict[str, Any]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # no store yet: an empty one, not in the project
            url = None if self._has_workflow_store() else f"sqlite:///{Path(tmp) / 'workflow.db'}"
            wf = given or self.workflow(url=url)
            try:
                now, then = wf.plan(day), wf.plan(day, scores=new)
            finally:
                if given is None:
                    wf.close()
        was_open = {(o["account_id"], o["rule"]) for o in now.open}
        was_closed = {c["cta_id"] for c in now.close}
        return {"open": then.open, "close": then.close,
                "open_because_of_change": [o for o in then.open
                                           if (o["account_id"], o["rule"]) not in was_open],
                "close_because_of_change": [c for c in then.close if c["cta_id"] not in was_closed]}

    def _has_workflow_store(self) -> bool:
        return bool(self.config.workflow.url) or (self.config.state_dir / "workflow.db").exists()

    def _judge_overrides(self, validation: Validation) -> None:
        """How often CSMs' overrides and module marks were right, beside the score's own record."""
        from healthscore.validation.overrides import mark_record, track_record

        r = validation.result
        wf = self.workflow()
        try:
            overrides = wf.overrides(active_only=False)
            bands = [b.name for b in sorted(self.config.scorecards[-1].bands, key=lambda b: b.min)]
            until = date.fromisoformat(r["observed_until"])
            r["overrides"] = track_record(overrides, r["_events"], until, r["horizon_days"], bands,
                                          wf.band_of)
            r["marks"] = mark_record(wf.marks(active_only=False), r["_events"], until, r["horizon_days"])
        finally:
            wf.close()

    # ------------------------------------------------------------------ reading

    def scores(self, as_of: date | str | None = None, primary_only: bool = True) -> pa.Table:
        day = self._day(as_of)
        return self.store.read(day, primary_only=primary_only)

    def measure_rows(self, account_id: str, measure: str, as_of: date | str | None = None,
                     limit: int = 200) -> dict[str, Any]:
        """The source rows behind one account's measure as of a date, each saying whether it
        counted (see :func:`healthscore.measures.rows.measure_rows`)."""
        from healthscore.measures.rows import measure_rows
        from healthscore.sources.read import read_source

        day = self._day(as_of)
        m = self.config.measures.get(measure)
        entity = (m.entity or "accounts") if m is not None else None
        engine = pipeline.open_engine(self.config)
        try:
            raw = {entity: read_source(engine, self.config.sources[entity])} if entity else {}
            data = measure_rows(self.config, raw, measure, account_id, day, limit)
        finally:
            engine.close()
        row = self.store.account_rows(day, account_id, primary_only=True).to_pylist()
        data["value"] = row[0].get(f"m__{measure}") if row else None
        return data

    def final_scores(self, as_of: date | str | None = None) -> pd.DataFrame:
        """The primary scores with the final score and band (an active override, else the
        system's) and the system's beside them: what every surface shows."""
        day = self._day(as_of)
        return self._finalize(self.store.read(day, primary_only=True).to_pandas(), day)

    def _finalize(self, frame: pd.DataFrame, day: date) -> pd.DataFrame:
        from healthscore.store import report

        if not self._has_workflow_store():
            return report.final_scores(frame, [], self.config)
        wf = self.workflow()
        try:
            return wf.with_overrides(frame, day)
        finally:
            wf.close()

    def portfolio(self, as_of: date | str | None = None) -> dict[str, Any]:
        from healthscore.store import report

        day = self._day(as_of)
        return report.portfolio(self.store, day, self.final_scores(day))

    def explain(self, account_id: str, as_of: date | str | None = None) -> dict[str, Any]:
        """The breakdown of the system score, with the final score and band beside it."""
        from healthscore.store import report

        day = self._day(as_of)
        data = report.explain(self.store, self.config, account_id, day)
        row = self._finalize(self.store.account_rows(day, account_id, primary_only=True).to_pandas(), day)
        r = row.iloc[0]
        data["final"] = {"score": report.round1(r["score"]), "band": r["band"],
                         "system_score": report.round1(r["system_score"]),
                         "system_band": r["system_band"], "override": r["override"]}
        return data

    def export(self, path: str | Path, fmt: str = "csv", as_of: date | str | None = None) -> Path:
        from healthscore.store import report

        day = self._day(as_of)
        return report.export(self.store, day, Path(path), fmt, self.final_scores(day))

    def export_to(self, url: str, table: str = "healthscores", as_of: date | str | None = None) -> int:
        """Upsert one snapshot's CRM feed into a database table (by account and as-of date)."""
        from healthscore.store import feed, report

        day = self._day(as_of)
        return feed.upsert(report.export_frame(self.store, day, self.final_scores(day)), url, table)

    def _day(self, as_of: date | str | None) -> date:
        if as_of is None:
            return self.store.latest()
        return as_of if isinstance(as_of, date) else _parse_date(as_of)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HealthScoreError(
            f"--as-of: {text!r} is not a date. Write it as YYYY-MM-DD, e.g. 2026-10-31."
        ) from None


def _count_rows(stage: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in stage.rglob("*.parquet"))
