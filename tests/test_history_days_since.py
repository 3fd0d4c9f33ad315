"""A days-since measure with a window over a history: the days since the latest row while
that row is inside the window, empty from the day it leaves it (the running value is the
latest day itself, without a time column beside it)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from healthscore.project import Project

from .projects import write_project

MEASURES = """\
last_login_5d: {type: days_since, entity: usage_events, filter: "event = 'login'", window: 5d,
                scheme: {type: linear, low: 5, high: 0}}
last_use: {type: days_since, entity: usage_events, scheme: {type: linear, low: 30, high: 0}}
"""
SCORECARD = "groups: {usage: {weight: 100, measures: {last_login_5d: 50, last_use: 50}}}\n"


def test_a_windowed_days_since_is_empty_once_its_latest_row_leaves_the_window(
        tmp_path: Path) -> None:
    write_project(tmp_path, {"measures/usage.yml": MEASURES, "scorecards/default.yml": SCORECARD})
    days = [date(2025, 2, 18) + timedelta(days=i) for i in range(12)]  # 02-18 .. 03-01
    frame = Project.load(tmp_path).run(dates=days).to_pandas()
    got = {(r.account_id, str(r.as_of)): (r.m__last_login_5d, r.m__last_use)
           for r in frame.itertuples()}
    # A1: logins 02-10 and 02-20, an export 02-21; A2: a login and an export on 02-25
    for day in days:
        a1_login = (day - date(2025, 2, 20)).days if day >= date(2025, 2, 20) else \
            (day - date(2025, 2, 10)).days
        a1_use = (day - date(2025, 2, 21)).days if day >= date(2025, 2, 21) else a1_login
        want_a1 = (float(a1_login) if a1_login < 5 else None, float(a1_use))
        assert _plain(got[("A1", str(day))]) == want_a1, day
        if day >= date(2025, 2, 25):
            since = (day - date(2025, 2, 25)).days
            assert _plain(got[("A2", str(day))]) == (float(since) if since < 5 else None,
                                                     float(since)), day
        else:
            assert _plain(got[("A2", str(day))]) == (None, None), day


def _plain(pair: tuple[object, object]) -> tuple[float | None, float | None]:
    return tuple(None if v != v else float(v) for v in pair)  # type: ignore[return-value,arg-type]
