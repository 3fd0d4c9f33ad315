"""Account start and churn dates derived from subscription periods.

An account starts on its first period's start. It churns on the end of its last period when
no period is open-ended and no new one started within ``grace_days`` of that end. A churn is
only declared once the grace period has passed by ``observed_until`` (the newest period
start, unless given): later ends may still be renewed. A gap shorter than the grace period
is a late renewal; an account that comes back after a longer gap counts as a customer
throughout.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir


def observed_until(subscriptions: ir.Table) -> date | None:
    """Renewals are known up to the newest period start."""
    newest = subscriptions.start_date.max().to_pyarrow().as_py()
    return newest.date() if newest is not None else None


def account_dates(subscriptions: ir.Table, grace_days: int, until: date | None) -> ir.Table:
    """account_id, __first_start, __churn (null while still a customer or not yet known)."""
    s = subscriptions
    per = s.group_by("account_id").aggregate(
        __first_start=s.start_date.min().date(),
        __last_end=s.end_date.max().date(),
        __open=s.end_date.isnull().cast("int64").sum(),
    )
    known = ibis.literal(until - timedelta(days=grace_days)) if until else ibis.literal(None, "date")
    churn = ibis.ifelse(
        (per["__open"] == 0) & (per["__last_end"] <= known), per["__last_end"], ibis.null("date")
    )
    return per.select("account_id", "__first_start", __churn=churn)


def with_subscription_dates(
    accounts: ir.Table, subscriptions: ir.Table, grace_days: int, until: date | None
) -> ir.Table:
    """Fill empty ``start_date`` and ``churn_date`` of accounts from their subscriptions."""
    dates = account_dates(subscriptions, grace_days, until)
    joined = accounts.left_join(dates, "account_id")
    cols = {c: joined[c] for c in accounts.columns}
    cols["start_date"] = ibis.coalesce(joined.start_date, joined["__first_start"])
    cols["churn_date"] = ibis.coalesce(joined.churn_date, joined["__churn"])
    return joined.select(**cols)
