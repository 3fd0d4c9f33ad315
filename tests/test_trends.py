"""The VP's Monday: the portfolio's trends over the last months come from the stored snapshots
(each number computed again here from the snapshot files), in the user's book (a CSM theirs, a
lead the team's, a VP all), filtered by team, CSM, segment and lifecycle stage from the URL;
with movers since the previous snapshot, a table beside each chart and a CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from healthscore.project import Project
from healthscore.store.report import month_ends, trend_frame, trends
from healthscore.store.snapshots import SnapshotStore
from healthscore.templates import write_template

from .test_web import ADMIN, CSM, LEAD, OTHER_CSM, VIEWER, Site, serving

DATES = [date(2026, 6, 30), date(2026, 7, 15), date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30),
         date(2026, 10, 31)]
MONTH_ENDS = [date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)]  # 4 months


@pytest.fixture(scope="module")
def history(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("trends")
    write_template(root / "p", "eight-categories", demo_data)
    project = Project.load(root / "p")
    project.run(dates=DATES, apply_rules=False)
    return project


@pytest.fixture
def site(history: Project, tmp_path: Path) -> Iterator[Site]:
    yield from serving(history, tmp_path / "wf.db")


def _stored(project: Project, day: date) -> pd.DataFrame:
    """The primary rows of one snapshot, read straight from disk: its date's folder, or the
    file of many dates that the folder names."""
    pointer = project.store.path(day) / "rows.json"
    if pointer.exists():
        frame = pd.read_parquet(project.store.passes / json.loads(pointer.read_text())["file"])
        frame = frame[frame["as_of"] == day]
    else:
        frame = pd.read_parquet(project.store.path(day))
    return frame[frame["is_primary"].astype(bool)]


def expected(project: Project, csms: set[str] | None = None, **equal: str) -> list[dict[str, Any]]:
    out = []
    for day in MONTH_ENDS:
        f = _stored(project, day)
        if csms is not None:
            f = f[f["csm"].isin(csms)]
        for col, value in equal.items():
            f = f[f[col] == value]
        out.append({"as_of": day.isoformat(), "accounts": len(f),
                    "bands": {b: int((f["band"] == b).sum()) for b in ("red", "yellow", "green")},
                    "average_score": round(float(f["score"].mean()), 1),
                    "arr_at_risk": round(float(f.loc[f["band"] == "red", "arr"].sum()), 2)})
    return out


def got(site: Site, who: str, query: str = "") -> dict[str, Any]:
    r = site.client.get(f"/api/portfolio/trends?months=4{query and '&' + query}", headers=site.as_(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _points(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**{k: p[k] for k in ("as_of", "accounts", "bands", "average_score")},
             "arr_at_risk": round(p["arr_at_risk"], 2)} for p in data["points"]]


def test_month_ends_take_each_months_last_snapshot() -> None:
    assert month_ends(DATES, date(2026, 10, 31), 4) == MONTH_ENDS
    assert month_ends(DATES, date(2026, 10, 31), 12) == [DATES[0], *MONTH_ENDS]
    assert month_ends(DATES, date(2026, 8, 31), 2) == MONTH_ENDS[:2]  # nothing after the end


def test_a_vp_sees_every_account_at_each_month_end(site: Site, history: Project) -> None:
    data = got(site, ADMIN)
    assert data["scope"] == "all" and data["band_order"] == ["red", "yellow", "green"]
    assert _points(data) == expected(history)
    assert _points(got(site, VIEWER)) == expected(history)


def test_a_csm_sees_their_book_and_a_lead_the_team(site: Site, history: Project) -> None:
    assert _points(got(site, CSM)) == expected(history, {CSM})
    assert _points(got(site, LEAD)) == expected(history, {CSM, LEAD})
    assert got(site, CSM)["scope"] == "mine" and got(site, LEAD)["scope"] == "team"
    # a filter cannot widen the book: another CSM's accounts stay out of a CSM's view
    assert all(p["accounts"] == 0 for p in got(site, CSM, f"csm={OTHER_CSM}")["points"])


def test_filters_come_from_the_url(site: Site, history: Project) -> None:
    assert _points(got(site, ADMIN, "segment=SMB")) == expected(history, segment="SMB")
    assert _points(got(site, ADMIN, f"csm={OTHER_CSM}")) == expected(history, {OTHER_CSM})
    assert _points(got(site, ADMIN, "team=North")) == expected(history, {CSM, LEAD})
    stage = "adoption"
    assert _points(got(site, ADMIN, f"lifecycle_stage={stage}&segment=")) == expected(
        history, lifecycle_stage=stage)
    assert got(site, ADMIN, "segment=SMB")["filters"] == {"team": None, "csm": None, "segment": "SMB",
                                                          "lifecycle_stage": None}
    r = site.client.get("/api/portfolio/trends?team=Nowhere", headers=site.as_(ADMIN))
    assert r.status_code == 422
    assert r.json()["message"] == "team: no team 'Nowhere'. Teams: North, South, finance, sales."


def test_movers_are_the_biggest_changes_since_the_previous_snapshot(site: Site, history: Project) -> None:
    data = got(site, ADMIN)
    now, before = _stored(history, DATES[-1]), _stored(history, DATES[-2])
    both = now.merge(before, on="account_id", suffixes=("", "_before"))
    both["change"] = both["score"] - both["score_before"]
    drops = both[both["change"] < 0].sort_values(["change", "account_id"]).head(10)
    assert data["previous"] == DATES[-2].isoformat()
    assert [m["account_id"] for m in data["drops"]] == list(drops["account_id"])
    assert [m["change"] for m in data["drops"]] == [round(c, 1) for c in drops["change"]]
    rises = both[both["change"] > 0].sort_values("change", ascending=False)
    assert [m["change"] for m in data["rises"]] == [round(c, 1) for c in rises["change"].head(10)]


def test_page_csv_and_twin_agree(site: Site, history: Project) -> None:
    token = site.as_(ADMIN)
    data = got(site, ADMIN, "segment=SMB")
    page = site.client.get("/portfolio/trends?months=4&segment=SMB", headers=token)
    assert page.status_code == 200
    assert page.text.count('<canvas id="trend-') == 3  # each chart ...
    table = page.text.split('id="trend-table"')[1].split("</table>")[0]  # ... and its table
    assert table.count("<tr>") == 1 + len(MONTH_ENDS)
    assert "Oct 31, 2026" in table and f">{data['points'][-1]['accounts']}<" in table
    assert 'href="/api/portfolio/trends.csv?months=4&amp;segment=SMB"' in page.text
    r = site.client.get("/api/portfolio/trends.csv?months=4&segment=SMB", headers=token)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["accounts"]) for row in rows] == [p["accounts"] for p in data["points"]]
    smb = expected(history, segment="SMB")
    assert [float(row["arr_at_risk"]) for row in rows] == [e["arr_at_risk"] for e in smb]


def _write_snapshot(store: SnapshotStore, day: date, bands: list[str]) -> None:
    """A run's snapshot of ``day``: one primary row per band given (scores 20 red, 80 green)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(bands)
    with store.staging() as stage:
        folder = stage / f"as_of={day.isoformat()}"
        folder.mkdir()
        pq.write_table(pa.table({
            "account_id": [f"A{i}" for i in range(n)], "name": [f"Account {i}" for i in range(n)],
            "score": [20.0 if b == "red" else 80.0 for b in bands], "band": bands,
            "arr": [1000.0] * n, "csm": ["c"] * n, "segment": ["SMB"] * n,
            "lifecycle_stage": ["adoption"] * n, "is_primary": [True] * n}), folder / "part-0.parquet")


def test_trends_are_read_again_when_a_run_replaces_a_snapshot(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "state", cache=8)
    days = [date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)]
    for day in days:
        _write_snapshot(store, day, ["red", "green"])
    first = trends(store, days[-1], 3)
    assert [p["bands"] for p in first["points"]] == [{"red": 1, "green": 1}] * 3
    assert trends(store, days[-1], 3) == first  # kept: the same files, the same answer
    _write_snapshot(store, days[-1], ["green", "green", "red"])  # a new run of the last date
    again = trends(store, days[-1], 3)
    assert again["points"][-1]["bands"] == {"red": 1, "green": 2}
    assert again["points"][-1]["arr_at_risk"] == 1000.0 and again["points"][-1]["accounts"] == 3
    only = trends(store, days[-1], 3, keep=lambda f: f["account_id"] == "A0")
    assert [p["bands"] for p in only["points"]] == [{"red": 1, "green": 0}] * 2 + [{"red": 0, "green": 1}]
    assert trend_frame(store, days[-1], None)["band"].tolist() == ["green", "green", "red"]
