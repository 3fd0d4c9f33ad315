"""The physical floor: the least any engine must do for these measures, measured in the same run.

``scan``: one pass over the usage events (the largest source by far) reading every column the
usage measures use, reduced to a handful of numbers. ``daily``: the per-(account, day) aggregate
of those events (events, logins, value), materialised in memory: the grouping the counted and
summed usage measures start from (distinct users and modules need finer rows, so they are not
in it: this is a floor, not a way to compute every measure). Plain ``duckdb`` with its
default settings, reading the demo files directly, like the spine SQL baseline.

Neither computes a measure, so neither is compared with the other variants; they give the
ratio of a healthscore run to the work the data itself demands.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SCAN = """
SELECT count(*) AS events, count(DISTINCT account_id) AS accounts, sum(value) AS value,
       max("timestamp") AS last_event, max(user_id) AS a_user, max(module) AS a_module,
       count(*) FILTER (WHERE event = 'login') AS logins
FROM read_parquet('{usage}')
"""

DAILY = """
CREATE TEMP TABLE daily AS
SELECT account_id, "timestamp"::DATE AS day, count(*) AS events,
       count(*) FILTER (WHERE event = 'login') AS logins, sum(value) AS value
FROM read_parquet('{usage}')
GROUP BY ALL
"""


def run(data: Path, kind: str) -> int:
    """Run the ``scan`` or ``daily`` floor over ``data``; return the rows it produced."""
    usage = str(data / "usage_events" / "*.parquet")
    con = duckdb.connect()
    try:
        if kind == "scan":
            con.execute(SCAN.format(usage=usage)).fetchall()
            return 1
        con.execute(DAILY.format(usage=usage))
        return int(con.execute("SELECT count(*) FROM daily").fetchone()[0])
    finally:
        con.close()
