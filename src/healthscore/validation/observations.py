"""Observations for a backtest: every active account at every as-of date, scored with the
data as it stood on that date, and labelled with what happened afterwards.

The scores come from the same point-in-time pipeline as ``healthscore run`` (one set-based
pass per batch of dates), so an observation at date D sees no row after D. The label is 1
when the outcome happened in (D + lead, D + lead + horizon]. Dates whose outcome window is
not over by ``observed_until`` are left out: their labels are not known yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd

from healthscore import pipeline
from healthscore.config.model import ProjectConfig
from healthscore.dates import date_grid, minus_months
from healthscore.errors import DataError, HealthScoreError
from healthscore.validation import lapses

Progress = Callable[[str], None]


@dataclass
class Observations:
    """One row per (account, as-of date, scorecard) with ``label`` and ``event_date``."""

    frame: pd.DataFrame
    outcome: str
    horizon_days: int
    lead_days: int
    observed_until: date
    dates: list[date]
    dropped_dates: list[date]
    events: pd.DataFrame  # account_id, event_date: every outcome event known
    after_churn: dict[str, int] = field(default_factory=dict)  # entity -> rows dated after churn
    dated: frozenset[str] = frozenset()  # accounts.<column> read point-in-time from a history
    after_churn_by_measure: dict[str, int] = field(default_factory=dict)  # of the rows it reads

    def primary(self) -> pd.DataFrame:
        return self.frame[self.frame["is_primary"]]

    def for_scorecard(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["scorecard"] == name]


def build(
    config: ProjectConfig,
    dates: list[date],
    outcome: str,
    horizon_days: int,
    lead_days: int,
    observed_until: date | None,
    progress: Progress,
    every: str = "month",
) -> Observations:
    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, progress)
        lapse = config.validation.churn if outcome == "churn" else None
        if lapse is not None:  # churn as inactivity: the events follow from the activity
            days, events, until = _lapses(config, loaded, lapse, observed_until)
        else:
            events = outcome_events(loaded, outcome)
            until = observed_until or _default_until(loaded, events)
        churns = outcome_events(loaded, "churn") if outcome == "renewal" else None
        if not dates:  # the last twelve months whose outcome windows are over
            last = until - timedelta(days=lead_days + horizon_days)
            dates = date_grid(None, minus_months(last, 11, False), last, every)
        keep = [d for d in dates if d + timedelta(days=lead_days + horizon_days) <= until]
        if not keep:
            raise HealthScoreError(_no_dates(dates, until, horizon_days, lead_days))
        if events.empty:  # before scoring anything: no date range would help
            raise DataError(_no_lapses(lapse, until) if lapse else _no_events(config, loaded, outcome))
        frame = pipeline.score_frame(config, loaded, keep, progress)
        frame = _with_start_dates(frame, loaded)
        if lapse is not None:  # only the accounts that were customers (active) on each date
            frame = lapses.active(frame, days, lapses.inactive_days(lapse))
        after = rows_after_churn(loaded)
        after_by_measure = measure_rows_after_churn(loaded, config.measures)
        dated = frozenset(f"accounts.{c}" for c in pipeline.history_columns(loaded))
    finally:
        engine.close()
    frame = label(frame, events, horizon_days, lead_days)
    if churns is not None:
        frame = came_up_for_renewal(frame, churns, horizon_days, lead_days)
    # one order whatever order the engine returned rows in: fits and tie-breaks depend on it
    frame = frame.sort_values(["scorecard", "as_of", "account_id"], ignore_index=True)
    dropped = [d for d in dates if d not in keep]
    return Observations(frame, outcome, horizon_days, lead_days, until, keep, dropped, events, after,
                        dated, after_by_measure)


def _lapses(config: ProjectConfig, loaded: pipeline.Loaded, spec: Any,
            observed_until: date | None) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """Activity days, lapses (the churns) and up to when they are known (validation.churn)."""
    days = lapses.activity_days(config, loaded.tables, loaded.engine, spec)
    newest = lapses.newest_activity(config, loaded.tables, loaded.engine, spec)
    until = observed_until or newest or date.min
    return days, lapses.events(days, lapses.inactive_days(spec), until), until


def _with_start_dates(frame: pd.DataFrame, loaded: pipeline.Loaded) -> pd.DataFrame:
    """Each observation's account start date (for how long it has been a customer)."""
    a = loaded.tables["accounts"]
    starts = loaded.engine.to_arrow(a.select("account_id", "start_date")).to_pandas()
    starts["start_date"] = pd.to_datetime(starts["start_date"]).dt.date
    return frame.merge(starts, on="account_id", how="left")


def came_up_for_renewal(frame: pd.DataFrame, churns: pd.DataFrame, horizon_days: int,
                        lead_days: int) -> pd.DataFrame:
    """Only the observations whose account renewed or churned in the window: a renewal rate is
    renewals among the accounts that came up for a decision, not among all accounts (else an
    account far from its renewal date would count as a failed renewal)."""
    churned = label(frame, churns, horizon_days, lead_days)["label"]
    return frame[(frame["label"] == 1) | (churned == 1)].reset_index(drop=True)


def rows_after_churn(loaded: pipeline.Loaded) -> dict[str, int]:
    """Rows of each dated entity stamped after their account's churn date: data recorded after
    the outcome, which a measure can leak into a backtest."""
    from healthscore.entities import ENTITIES

    gone = _churn_dates(loaded)
    out = {}
    for name, table in loaded.tables.items():
        e = ENTITIES[name]
        if name in ("accounts", "outcomes") or e.time is None or "account_id" not in table.columns:
            continue
        n = _count_after(table, e.time, gone)
        if n:
            out[name] = n
    return out


def measure_rows_after_churn(loaded: pipeline.Loaded, measures: dict[str, Any]) -> dict[str, int]:
    """For each measure that reads dated rows: how many of the rows it reads (its entity's,
    through its filter) are stamped after their account churned. Rows of the entity that the
    measure does not read do not make it suspect."""
    from healthscore.measures.parts import measure_filter, time_column

    gone = _churn_dates(loaded)
    out = {}
    for name, m in measures.items():
        if m.type == "manual" and "manual_values" in loaded.tables:
            t = loaded.tables["manual_values"]
            out[name] = _count_after(t.filter(t.measure == m.stored_as), "entered_at", gone)
        elif m.entity and m.entity in loaded.tables and m.entity not in ("accounts", "outcomes"):
            t = loaded.tables[m.entity]
            if getattr(m, "filter", None):
                t = t.filter(measure_filter(m, t).fill_null(False))
            out[name] = _count_after(t, time_column(m), gone)
    return out


def _churn_dates(loaded: pipeline.Loaded) -> Any:
    """account_id, __churn: each churned account's churn day (its churn_date, or its first
    churn in the outcomes)."""
    a = loaded.tables["accounts"]
    parts = [a.filter(a.churn_date.notnull()).select("account_id", __churn=a.churn_date)]
    if "outcomes" in loaded.tables:
        o = loaded.tables["outcomes"]
        parts.append(o.filter(o.kind == "churn").select("account_id", __churn=o.occurred_at.date()))
    u = ibis.union(*parts)
    return u.group_by("account_id").aggregate(__churn=u["__churn"].min())


def _count_after(table: Any, time: str, gone: Any) -> int:
    j = table.join(gone, "account_id")
    at = j[time]
    day = at if at.type().is_date() else at.date()
    return int(j.filter(day > j["__churn"]).count().to_pyarrow().as_py())


def _no_dates(dates: list[date], until: date, horizon: int, lead: int) -> str:
    latest = until - timedelta(days=horizon + lead)
    return (
        f"no as-of date from {min(dates)} to {max(dates)} has a complete outcome window: "
        f"outcomes are known up to {until} and each date needs {lead + horizon} days after it "
        f"(lead {lead}d + horizon {horizon}d). Choose --to {latest} or earlier, a shorter "
        f"--horizon, or set validation.observed_until."
    )


def _no_lapses(spec: Any, until: date) -> str:
    rows = f"{spec.entity} rows" + (f" matching {spec.filter!r}" if spec.filter else "")
    return (f"validate: no account went {spec.inactive_for} without {rows} by {until}, so "
            f"there is no churn (validation.churn) to check the score against. Shorten "
            f"validation.churn.inactive_for, or check the entity and filter.")


def _no_events(config: ProjectConfig, loaded: pipeline.Loaded, outcome: str) -> str:
    from healthscore.sources.clean import where

    looked = []
    if "outcomes" in loaded.tables:
        looked.append(f"the outcomes source ({where(config.sources['outcomes'])}) has no row of "
                      f"kind {outcome}")
    if outcome == "churn":
        looked.append(f"no account in the accounts source ({where(config.sources['accounts'])}) "
                      f"has a churn_date")
        how = ("add a churn_date column to the accounts source (the day each lost account "
               "churned, blank for the others), or an 'outcomes' source with rows of kind churn "
               "(account_id, kind, occurred_at), or a 'subscriptions' source (churn is derived "
               "from its periods)")
    else:
        if "subscriptions" in loaded.tables:
            looked.append(f"no {outcome} follows from the subscriptions source "
                          f"({where(config.sources['subscriptions'])})")
        how = (f"add an 'outcomes' source with rows of kind {outcome} (account_id, kind, "
               f"occurred_at), or a 'subscriptions' source")
    return (f"validate: the data records no {outcome}, so there is nothing to check the score "
            f"against: {'; '.join(looked)}. To validate against {outcome}, {how}. "
            f"See docs/validation.md.")


# ----------------------------------------------------------------------------- outcomes


def outcome_events(loaded: pipeline.Loaded, outcome: str) -> pd.DataFrame:
    """(account_id, event_date) of every known event of the outcome, from the outcomes entity,
    the accounts' churn dates and the subscriptions."""
    tables = loaded.tables
    parts: list[Any] = []
    if "outcomes" in tables:
        o = tables["outcomes"]
        parts.append(o.filter(o.kind == outcome).select("account_id", event_date=o.occurred_at.date()))
    if outcome == "churn":
        a = tables["accounts"]
        parts.append(a.filter(a.churn_date.notnull()).select("account_id", event_date=a.churn_date))
    elif "subscriptions" in tables:
        parts.append(_subscription_events(tables["subscriptions"], outcome))
    if not parts:
        raise DataError(
            f"validate: no source records the outcome {outcome!r}. Add an 'outcomes' source "
            f"(kind: churn, renewal, expansion) or a 'subscriptions' source."
        )
    union = ibis.union(*parts, distinct=True)
    frame = loaded.engine.to_arrow(union).to_pandas()
    frame["event_date"] = pd.to_datetime(frame["event_date"]).dt.date
    return frame.sort_values(["account_id", "event_date"], ignore_index=True)


def _subscription_events(subs: Any, outcome: str) -> Any:
    """A renewal is a period that follows an earlier one; an expansion, one whose MRR is higher
    than the period before it."""
    w = ibis.window(group_by="account_id", order_by=[subs.start_date, subs.end_date])
    t = subs.mutate(__prev_mrr=subs.mrr.lag().over(w), __n=ibis.row_number().over(w))
    cond = t["__n"] > 0
    if outcome == "expansion":
        cond = cond & (t.mrr > t["__prev_mrr"])
    return t.filter(cond).select("account_id", event_date=t.start_date.date())


def _default_until(loaded: pipeline.Loaded, events: pd.DataFrame) -> date:
    if loaded.observed_until is not None:
        return loaded.observed_until
    newest = [h.newest for h in loaded.health.values() if h.newest is not None]
    if "outcomes" in loaded.health and loaded.health["outcomes"].newest is not None:
        return loaded.health["outcomes"].newest
    if newest:
        return max(newest)
    if len(events):
        return max(events["event_date"])
    raise DataError("validate: cannot tell up to when outcomes are known. "
                    "Set validation.observed_until in healthscore.yml.")


def label(frame: pd.DataFrame, events: pd.DataFrame, horizon_days: int, lead_days: int) -> pd.DataFrame:
    """Add ``label`` (1 if an event falls in (D + lead, D + lead + horizon]) and ``event_date``
    (the first such event)."""
    frame = frame.copy()
    start = pd.to_datetime(frame["as_of"]) + pd.Timedelta(days=lead_days)
    left = pd.DataFrame({"__i": np.arange(len(frame)), "account_id": frame["account_id"].values,
                         "__from": start.values.astype("datetime64[us]")})
    at = pd.to_datetime(events["event_date"]).values.astype("datetime64[us]")
    right = pd.DataFrame({"account_id": events["account_id"].values, "__at": at})
    left = left.sort_values("__from")
    right = right.sort_values("__at")
    # the first event strictly after D + lead
    matched = pd.merge_asof(left, right, left_on="__from", right_on="__at", by="account_id",
                            direction="forward", allow_exact_matches=False)
    matched = matched.sort_values("__i")
    within = matched["__at"] <= matched["__from"] + pd.Timedelta(days=horizon_days)
    frame["label"] = within.fillna(False).astype(int).values
    frame["event_date"] = matched["__at"].where(within).dt.date.values
    return frame
