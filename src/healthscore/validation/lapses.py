"""Churn without contracts (``validation.churn``): an account churns once it has gone
``inactive_for`` days without activity - a row of an entity, or of those matching a filter
("no purchase in 90 days").

An account is a customer on D when its start or one of its activity days lies in
(D - N, D]: that is known on D from the data up to D, so choosing the observations never
looks ahead. It lapses on t + N for an activity day t that no other follows within N days;
that day is its churn, known once it is on or before ``observed_until``. An account that comes
back is a customer again and may lapse again. Only the labels read activity after D.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import ibis
import numpy as np
import pandas as pd

from healthscore.config.expressions import compile_filter
from healthscore.config.model import ProjectConfig
from healthscore.config.specs import ChurnSpec
from healthscore.config.windows import parse_days


def inactive_days(spec: ChurnSpec) -> int:
    return parse_days(spec.inactive_for)


def activity_days(config: ProjectConfig, tables: dict[str, Any], engine: Any,
                  spec: ChurnSpec) -> pd.DataFrame:
    """account_id, day: every day an account was active, its start day included."""
    t = tables[spec.entity]
    if spec.filter:
        t = t.filter(compile_filter(spec.filter, t, fold_case=True).fill_null(False))
    at = t[config.entity(spec.entity).time]
    day = at if at.type().is_date() else at.date()
    acts = t.filter(t.account_id.notnull() & at.notnull()).select("account_id", day=day)
    a = tables["accounts"]
    starts = a.filter(a.start_date.notnull()).select("account_id", day=a.start_date)
    frame = engine.to_arrow(ibis.union(acts, starts, distinct=True)).to_pandas()
    frame["day"] = pd.to_datetime(frame["day"]).astype("datetime64[us]")
    return frame.sort_values(["account_id", "day"], ignore_index=True)


def newest_activity(config: ProjectConfig, tables: dict[str, Any], engine: Any,
                    spec: ChurnSpec) -> date | None:
    """Up to when activity is known: the newest day of the activity entity."""
    t = tables[spec.entity]
    newest = engine.to_arrow(t.aggregate(n=t[config.entity(spec.entity).time].max())).to_pylist()
    value = newest[0]["n"]
    return value.date() if isinstance(value, datetime) else value


def events(days: pd.DataFrame, n: int, until: date) -> pd.DataFrame:
    """account_id, event_date: each lapse (N days after an activity day with none within N
    days after it), up to ``until``."""
    nxt = days.groupby("account_id")["day"].shift(-1)
    end = days["day"] + pd.Timedelta(days=n)
    lapsed = (nxt.isna() | (nxt > end)) & (end <= pd.Timestamp(until))
    out = pd.DataFrame({"account_id": days["account_id"][lapsed].values,
                        "event_date": end[lapsed].dt.date.values})
    return out.sort_values(["account_id", "event_date"], ignore_index=True)


def active(frame: pd.DataFrame, days: pd.DataFrame, n: int) -> pd.DataFrame:
    """The observations whose account was a customer on their date: active within the last
    N days (its start counted), from data up to that date only."""
    left = pd.DataFrame({"__i": np.arange(len(frame)), "account_id": frame["account_id"].values,
                         "__at": pd.to_datetime(frame["as_of"]).values.astype("datetime64[us]")})
    right = days.rename(columns={"day": "__last"})
    matched = pd.merge_asof(left.sort_values("__at"), right.sort_values("__last"),
                            left_on="__at", right_on="__last", by="account_id",
                            direction="backward").sort_values("__i")
    keep = (matched["__at"] - matched["__last"]) < pd.Timedelta(days=n)
    return frame[keep.fillna(False).to_numpy()].reset_index(drop=True)
