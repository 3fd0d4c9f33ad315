"""Seed 000's question, answered in plain words per band: "do customers who stayed for years
score high, and did those who left score low?"

Those who stayed: the accounts still customers on the last as-of date, with no outcome in
the horizon after any of their dates, and customers for two years or more then (one year,
when fewer than ``MIN_ACCOUNTS`` are); their band on that date. Those who left: the accounts
with a churn in the horizon after one of their dates; their band at their last score before
it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from healthscore.config.model import INSUFFICIENT

QUESTION = "Do customers who stayed for years score high, and did those who left score low?"
YEARS = (2, 1)
MIN_ACCOUNTS = 20


def answer(rows: pd.DataFrame, bands: list[str]) -> dict[str, Any] | None:
    """``rows``: the primary observations (account_id, as_of, start_date, band, label);
    ``bands`` from worst to best."""
    if rows.empty or "start_date" not in rows.columns:
        return None
    last = max(rows["as_of"])
    stayed, years = _stayed(rows, last)
    left = rows[rows["label"] == 1].sort_values("as_of").groupby("account_id").tail(1)
    names = [*bands, *([INSUFFICIENT] if (rows["band"] == INSUFFICIENT).any() else [])]
    table = [{"band": b, "stayed": _share(stayed, b), "left": _share(left, b)} for b in names]
    out = {"question": QUESTION, "as_of": last, "years": years,
           "stayed": int(len(stayed)), "left": int(len(left)), "bands": table}
    out["verdict"], out["answer"] = _words(out, bands)
    return out


def _stayed(rows: pd.DataFrame, last: Any) -> tuple[pd.DataFrame, int]:
    lost = set(rows.loc[rows["label"] == 1, "account_id"])
    end = rows[(rows["as_of"] == last) & ~rows["account_id"].isin(lost)]
    tenure = (pd.to_datetime(end["as_of"]) - pd.to_datetime(end["start_date"])).dt.days
    for years in YEARS:
        stayed = end[(tenure >= 365 * years).to_numpy()]
        if len(stayed) >= MIN_ACCOUNTS or years == YEARS[-1]:
            return stayed, years
    raise AssertionError("unreachable")


def _share(group: pd.DataFrame, band: str) -> dict[str, Any]:
    n = int((group["band"] == band).sum())
    return {"accounts": n, "share": n / len(group) if len(group) else None}


def _words(a: dict[str, Any], bands: list[str]) -> tuple[str, str]:
    worst, best = bands[0], bands[-1]
    row = {r["band"]: r for r in a["bands"]}
    years = "two years" if a["years"] == 2 else "a year"
    if not a["stayed"] or not a["left"]:
        missing = (f"no account has stayed {years} or more without leaving yet"
                   if not a["stayed"] else "no account left within the horizon")
        return "unknown", f"Cannot tell yet: {missing}."
    s_best, s_worst = row[best]["stayed"]["share"], row[worst]["stayed"]["share"]
    l_best, l_worst = row[best]["left"]["share"], row[worst]["left"]["share"]
    high, low = s_best > l_best, l_worst > s_worst
    verdict = "yes" if high and low else "partly" if high or low else "no"
    text = (f"{verdict.capitalize()}: of the {a['stayed']:,} customers who stayed {years} or "
            f"more, {_p(s_best)} were {best} and {_p(s_worst)} {worst} on {a['as_of']}; of the "
            f"{a['left']:,} who left, {_p(l_worst)} were {worst} at their last score before "
            f"leaving and {_p(l_best)} {best}.")
    if not high:
        text += f" Those who stayed were not {best} more often than those who left."
    if not low:
        text += f" Those who left were not {worst} more often than those who stayed."
    return verdict, text


def _p(x: float) -> str:
    return f"{x:.0%}"
