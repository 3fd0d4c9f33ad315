"""Baseline: the benchmark measures as one hand-written DuckDB query over a date spine.

What an SQL expert writes without healthscore: a spine of (account, as-of date) rows for the
accounts that are customers on each date, one join per entity that repeats every row for
each as-of date whose window holds it (``e.day <= as_of AND e.day > as_of - window``), a
GROUP BY with FILTER clauses per measure, and left joins back onto the spine. Plain ``duckdb``
with its default settings, reading the demo files directly.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

QUERY = """
WITH
churned AS (
    SELECT account_id, min(occurred_at)::DATE AS churn_date
    FROM read_parquet('{outcomes}') WHERE kind = 'churn' GROUP BY account_id
),
accounts AS (
    SELECT a.account_id, a.start_date::DATE AS start_date, a.licensed_seats,
           coalesce(a.churn_date::DATE, c.churn_date) AS churn_date
    FROM read_csv('{accounts}', header = true) a LEFT JOIN churned c USING (account_id)
),
spine AS (
    SELECT a.account_id, a.start_date, a.licensed_seats, d.as_of
    FROM accounts a CROSS JOIN as_of_dates d
    WHERE a.start_date <= d.as_of AND (a.churn_date IS NULL OR a.churn_date > d.as_of)
),
usage AS (
    SELECT account_id, user_id, event, module, value, "timestamp"::DATE AS day
    FROM read_parquet('{usage}')
),
usage_90d AS (
    SELECT s.account_id, s.as_of,
           count(*) FILTER (WHERE u.event = 'login' AND u.day > s.as_of - 30) AS logins_30d,
           count(*) AS events_90d,
           count(DISTINCT u.user_id) FILTER (WHERE u.day > s.as_of - 30) AS active_users_30d,
           count(DISTINCT u.module) AS modules_used_90d,
           sum(u.value) FILTER (WHERE u.day > s.as_of - 30) AS usage_value_30d,
           avg(u.value) AS avg_event_value_90d
    FROM spine s JOIN usage u
      ON u.account_id = s.account_id AND u.day <= s.as_of AND u.day > s.as_of - 90
    GROUP BY s.account_id, s.as_of
),
usage_ever AS (
    SELECT s.account_id, s.as_of, max(u.day) AS last_use
    FROM spine s JOIN usage u ON u.account_id = s.account_id AND u.day <= s.as_of
    GROUP BY s.account_id, s.as_of
),
act AS (
    SELECT s.account_id, s.as_of,
           count(*) FILTER (WHERE a.day > s.as_of - 90) AS touches_90d,
           count(*) FILTER (WHERE a.with_key_stakeholder AND a.day > s.as_of - 90)
               AS key_stakeholder_touches_90d,
           count(*) FILTER (WHERE a.type IN ('ebr', 'qbr') AND a.day > s.as_of - 365) AS ebr_365d,
           max(a.day) AS last_touch
    FROM spine s JOIN (
        SELECT account_id, type, with_key_stakeholder, "timestamp"::DATE AS day
        FROM read_parquet('{activities}')
    ) a ON a.account_id = s.account_id AND a.day <= s.as_of
    GROUP BY s.account_id, s.as_of
),
tck AS (
    SELECT s.account_id, s.as_of,
           count(*) FILTER (WHERE t.closed IS NULL OR t.closed > s.as_of) AS open_tickets,
           count(*) FILTER (WHERE t.priority = 'P1' AND (t.closed IS NULL OR t.closed > s.as_of))
               AS open_p1_tickets,
           count(*) FILTER (WHERE t.day > s.as_of - 90) AS tickets_90d,
           count(*) AS tickets_all_time
    FROM spine s JOIN (
        SELECT account_id, priority, opened_at::DATE AS day, closed_at::DATE AS closed
        FROM read_parquet('{tickets}')
    ) t ON t.account_id = s.account_id AND t.day <= s.as_of
    GROUP BY s.account_id, s.as_of
),
inv AS (
    SELECT s.account_id, s.as_of,
           count(*) FILTER (WHERE i.due + 1 <= s.as_of AND (i.paid IS NULL OR i.paid > s.as_of))
               AS overdue_invoices,
           sum(i.amount) FILTER (WHERE i.issued <= s.as_of AND (i.paid IS NULL OR i.paid > s.as_of))
               AS outstanding_balance
    FROM spine s JOIN (
        SELECT account_id, amount, issued_at::DATE AS issued, due_at::DATE AS due,
               paid_at::DATE AS paid
        FROM read_parquet('{invoices}')
    ) i ON i.account_id = s.account_id
    GROUP BY s.account_id, s.as_of
),
srv AS (
    SELECT s.account_id, s.as_of,
           arg_max(v.score, v.responded_at) FILTER (WHERE v.kind = 'nps') AS nps_latest,
           avg(v.score) FILTER (WHERE v.kind = 'csat' AND v.day > s.as_of - 90) AS csat_avg_90d
    FROM spine s JOIN (
        SELECT account_id, kind, score, responded_at, responded_at::DATE AS day
        FROM read_parquet('{surveys}')
    ) v ON v.account_id = s.account_id AND v.day <= s.as_of AND v.day > s.as_of - 365
    GROUP BY s.account_id, s.as_of
),
con AS (
    SELECT s.account_id, s.as_of,
           count(*) FILTER (WHERE c.created <= s.as_of
                            AND (c.departed IS NULL OR c.departed > s.as_of)) AS active_contacts,
           count(*) FILTER (WHERE (c.is_sponsor OR c.is_champion OR c.is_key_stakeholder)
                            AND c.departed <= s.as_of AND c.departed > s.as_of - 180)
               AS sponsor_departures_180d
    FROM spine s JOIN (
        SELECT account_id, is_sponsor, is_champion, is_key_stakeholder,
               created_at::DATE AS created, departed_at::DATE AS departed
        FROM read_parquet('{contacts}')
    ) c ON c.account_id = s.account_id
    GROUP BY s.account_id, s.as_of
)
SELECT
    s.account_id, s.as_of,
    coalesce(u.logins_30d, 0)::DOUBLE AS logins_30d,
    coalesce(u.events_90d, 0)::DOUBLE AS events_90d,
    coalesce(u.active_users_30d, 0)::DOUBLE AS active_users_30d,
    coalesce(u.modules_used_90d, 0)::DOUBLE AS modules_used_90d,
    coalesce(u.usage_value_30d, 0)::DOUBLE AS usage_value_30d,
    u.avg_event_value_90d::DOUBLE AS avg_event_value_90d,
    (s.as_of - e.last_use)::DOUBLE AS days_since_last_use,
    CASE WHEN s.licensed_seats = 0 THEN NULL
         ELSE coalesce(u.active_users_30d, 0) / s.licensed_seats END::DOUBLE AS seat_utilization,
    coalesce(a.touches_90d, 0)::DOUBLE AS touches_90d,
    coalesce(a.key_stakeholder_touches_90d, 0)::DOUBLE AS key_stakeholder_touches_90d,
    coalesce(a.ebr_365d, 0)::DOUBLE AS ebr_365d,
    (s.as_of - a.last_touch)::DOUBLE AS days_since_touch,
    coalesce(t.open_tickets, 0)::DOUBLE AS open_tickets,
    coalesce(t.open_p1_tickets, 0)::DOUBLE AS open_p1_tickets,
    coalesce(t.tickets_90d, 0)::DOUBLE AS tickets_90d,
    coalesce(t.tickets_all_time, 0)::DOUBLE AS tickets_all_time,
    coalesce(i.overdue_invoices, 0)::DOUBLE AS overdue_invoices,
    coalesce(i.outstanding_balance, 0)::DOUBLE AS outstanding_balance,
    v.nps_latest::DOUBLE AS nps_latest,
    v.csat_avg_90d::DOUBLE AS csat_avg_90d,
    coalesce(c.active_contacts, 0)::DOUBLE AS active_contacts,
    coalesce(c.sponsor_departures_180d, 0)::DOUBLE AS sponsor_departures_180d,
    (s.as_of - s.start_date)::DOUBLE AS tenure_days
FROM spine s
LEFT JOIN usage_90d u USING (account_id, as_of)
LEFT JOIN usage_ever e USING (account_id, as_of)
LEFT JOIN act a USING (account_id, as_of)
LEFT JOIN tck t USING (account_id, as_of)
LEFT JOIN inv i USING (account_id, as_of)
LEFT JOIN srv v USING (account_id, as_of)
LEFT JOIN con c USING (account_id, as_of)
"""


def query(data: Path) -> str:
    """The query text, with the demo files of ``data`` filled in."""
    files = {name: str(data / f"{name}.parquet") for name in
             ("outcomes", "activities", "tickets", "invoices", "surveys", "contacts")}
    files["accounts"] = str(data / "accounts.csv")
    files["usage"] = str(data / "usage_events" / "*.parquet")
    return QUERY.format(**files)


def run(data: Path, dates: list[date], out: Path) -> int:
    """Compute every measure for ``dates`` and write them to ``out``; return the row count."""
    con = duckdb.connect()
    try:
        con.execute("CREATE TEMP TABLE as_of_dates AS SELECT unnest($1::DATE[]) AS as_of",
                    [dates])
        con.execute(f"COPY ({query(data)}) TO '{out}' (FORMAT PARQUET)")
        return int(con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0])
    finally:
        con.close()
