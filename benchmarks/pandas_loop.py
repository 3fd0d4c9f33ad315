"""Baseline: the benchmark measures in straightforward pandas, one as-of date at a time.

What an analyst writes: read every file into a DataFrame, then for each as-of date keep the
accounts that are customers on it, filter each entity's rows to the date's window, group by
account and map the results onto the accounts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

DAY = pd.Timedelta(days=1)


def _day(ts: pd.Series) -> pd.Series:
    return ts.dt.normalize()


def _read(data: Path, entity: str, columns: list[str]) -> pd.DataFrame:
    path = data / entity if entity == "usage_events" else data / f"{entity}.parquet"
    return pd.read_parquet(path, columns=columns)


def load(data: Path) -> dict[str, pd.DataFrame]:
    acc = pd.read_csv(data / "accounts.csv", parse_dates=["start_date", "churn_date"],
                      usecols=["account_id", "start_date", "churn_date", "licensed_seats"])
    out = _read(data, "outcomes", ["account_id", "kind", "occurred_at"])
    churned = _day(out[out.kind == "churn"].groupby("account_id").occurred_at.min())
    acc["churn"] = acc.churn_date.fillna(acc.account_id.map(churned))

    usage = _read(data, "usage_events", ["account_id", "user_id", "event", "module",
                                         "value", "timestamp"])
    usage["day"] = _day(usage.pop("timestamp"))
    act = _read(data, "activities", ["account_id", "type", "with_key_stakeholder", "timestamp"])
    act["day"] = _day(act.pop("timestamp"))
    act["key"] = act.with_key_stakeholder.fillna(False).astype(bool)
    tck = _read(data, "tickets", ["account_id", "priority", "opened_at", "closed_at"])
    tck["day"], tck["closed"] = _day(tck.opened_at), _day(tck.closed_at)
    inv = _read(data, "invoices", ["account_id", "amount", "issued_at", "due_at", "paid_at"])
    inv["issued"], inv["due"], inv["paid"] = (_day(inv.issued_at), _day(inv.due_at),
                                              _day(inv.paid_at))
    srv = _read(data, "surveys", ["account_id", "kind", "score", "responded_at"])
    srv["day"] = _day(srv.responded_at)
    con = _read(data, "contacts", ["account_id", "is_sponsor", "is_champion",
                                   "is_key_stakeholder", "created_at", "departed_at"])
    con["created"], con["departed"] = _day(con.created_at), _day(con.departed_at)
    flags = ["is_sponsor", "is_champion", "is_key_stakeholder"]
    con["sponsor"] = con[flags].fillna(False).astype(bool).any(axis=1)
    return {"accounts": acc, "usage": usage, "act": act, "tck": tck, "inv": inv,
            "srv": srv, "con": con}


def measures_on(t: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    """Every measure for the accounts that are customers on ``as_of``."""
    d = pd.Timestamp(as_of)
    acc = t["accounts"]
    f = acc[(acc.start_date <= d) & (acc.churn.isna() | (acc.churn > d))].copy()
    ids = f.account_id

    def count(rows: pd.DataFrame) -> pd.Series:
        return ids.map(rows.groupby("account_id").size()).fillna(0).astype(float)

    u = t["usage"]
    u_all = u[u.day <= d]
    u90 = u_all[u_all.day > d - 90 * DAY]
    u30 = u90[u90.day > d - 30 * DAY]
    f["logins_30d"] = count(u30[u30.event == "login"])
    f["events_90d"] = count(u90)
    f["active_users_30d"] = ids.map(u30.groupby("account_id").user_id.nunique()).fillna(0)
    f["modules_used_90d"] = ids.map(u90.groupby("account_id").module.nunique()).fillna(0)
    f["usage_value_30d"] = ids.map(u30.groupby("account_id").value.sum()).fillna(0)
    f["avg_event_value_90d"] = ids.map(u90.groupby("account_id").value.mean())
    f["days_since_last_use"] = (d - ids.map(u_all.groupby("account_id").day.max())).dt.days
    seats = f.licensed_seats.where(f.licensed_seats != 0)
    f["seat_utilization"] = f.active_users_30d / seats

    a = t["act"]
    a_all = a[a.day <= d]
    a90 = a_all[a_all.day > d - 90 * DAY]
    f["touches_90d"] = count(a90)
    f["key_stakeholder_touches_90d"] = count(a90[a90.key])
    f["ebr_365d"] = count(a_all[a_all.type.isin(["ebr", "qbr"]) & (a_all.day > d - 365 * DAY)])
    f["days_since_touch"] = (d - ids.map(a_all.groupby("account_id").day.max())).dt.days

    k = t["tck"]
    k_all = k[k.day <= d]
    k_open = k_all[k_all.closed.isna() | (k_all.closed > d)]
    f["open_tickets"] = count(k_open)
    f["open_p1_tickets"] = count(k_open[k_open.priority == "P1"])
    f["tickets_90d"] = count(k_all[k_all.day > d - 90 * DAY])
    f["tickets_all_time"] = count(k_all)

    i = t["inv"]
    unpaid = i.paid.isna() | (i.paid > d)
    f["overdue_invoices"] = count(i[(i.due + DAY <= d) & unpaid])
    balance = i[(i.issued <= d) & unpaid].groupby("account_id").amount.sum()
    f["outstanding_balance"] = ids.map(balance).fillna(0)

    s = t["srv"]
    s365 = s[(s.day <= d) & (s.day > d - 365 * DAY)]
    nps = s365[s365.kind == "nps"].sort_values("responded_at")
    f["nps_latest"] = ids.map(nps.groupby("account_id").score.last())
    csat = s365[(s365.kind == "csat") & (s365.day > d - 90 * DAY)]
    f["csat_avg_90d"] = ids.map(csat.groupby("account_id").score.mean())

    c = t["con"]
    f["active_contacts"] = count(c[(c.created <= d) & (c.departed.isna() | (c.departed > d))])
    left = c[c.sponsor & (c.departed <= d) & (c.departed > d - 180 * DAY)]
    f["sponsor_departures_180d"] = count(left)

    f["tenure_days"] = (d - f.start_date).dt.days
    f["as_of"] = as_of
    return f.drop(columns=["start_date", "churn_date", "churn", "licensed_seats"])


def run(data: Path, dates: list[date], out: Path) -> int:
    """Compute every measure for ``dates`` and write them to ``out``; return the row count."""
    tables = load(data)
    frames = [measures_on(tables, d) for d in dates]
    result = pd.concat(frames, ignore_index=True)
    value_cols = [c for c in result.columns if c not in ("account_id", "as_of")]
    result[value_cols] = result[value_cols].astype(float)
    result.to_parquet(out, index=False)
    return len(result)
