"""The command line's own behaviour: start-up cost, progress, tables at 80 columns, messages."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from healthscore.cli.progress import ProgressSteps, progress_bar

HEAVY = ("ibis", "pandas", "sklearn", "fastapi", "duckdb", "numpy", "pyarrow", "sqlalchemy", "scipy")

_HELP = """
import json, sys
from healthscore.cli.main import app
try:
    app(sys.argv[1:], prog_name="healthscore")
except SystemExit:
    pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["cta", "list", "--help"],
                                  ["validate", "--help"]])
def test_help_imports_no_engine_web_or_model_library(args: list[str]) -> None:
    """`--help` stays cheap: the engine, pandas, sklearn and the web app load only when a
    command runs (each costs seconds of CPU at start-up)."""
    done = subprocess.run([sys.executable, "-c", _HELP, *args], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "Usage: healthscore" in done.stdout
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "healthscore" in loaded
    assert sorted(loaded & set(HEAVY)) == []


# ----------------------------------------------------------------------------- progress


def _bar_text(bar: Any) -> str:
    shown = Console(width=120, record=True, color_system=None, file=io.StringIO())
    shown.print(bar.make_tasks_table(bar.tasks))
    return shown.export_text().strip()


def test_progress_shows_done_of_total_elapsed_and_time_left() -> None:
    now = [100.0]
    bar = progress_bar(Console(force_terminal=True, file=io.StringIO()), lambda: now[0])
    step = ProgressSteps(bar)
    step("reading accounts|0|4")
    now[0] = 102.0
    step("reading tickets|2|4")  # 2 of 4 in 2 s: 2 s left
    assert "reading tickets" in _bar_text(bar)
    assert _bar_text(bar).endswith("2/4 0:00:02 elapsed 0:00:02 left")
    now[0] = 105.0
    step("scoring 12 as-of date(s), pass 1 of 4|0|12")  # a new stage: its own count and clock
    assert _bar_text(bar).endswith(" 0/12 0:00:00 elapsed -:--:-- left")
    now[0] = 125.0
    step("scoring 12 as-of date(s), pass 2 of 4|3|12")  # 3 in 20 s: 9 more take 60 s
    text = _bar_text(bar)
    assert "scoring 12 as-of date(s), pass 2 of 4" in text
    assert text.endswith(" 3/12 0:00:20 elapsed 0:01:00 left")
    now[0] = 3725.0
    step("scoring 12 as-of date(s), pass 3 of 4|6|12")
    assert _bar_text(bar).endswith(" 6/12 1:00:20 elapsed 1:00:20 left")
    step("applying rules")  # no count: no numbers, and the clock starts again
    text = _bar_text(bar)
    assert "applying rules" in text and text.endswith(" 0:00:00 elapsed")
    assert "/12" not in text and "left" not in text


# ----------------------------------------------------------------------------- 80 columns


def _text(render_fn: Any, *args: Any, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    render_fn(console, *args)
    return console.export_text()


def _cells(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is ``first``."""
    line = next(line for line in text.splitlines() if line.startswith(f"│ {first} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def _fits(text: str, width: int) -> None:
    assert max(len(line) for line in text.splitlines()) <= width


MOVERS = [
    {"account_id": f"ACCOUNT-EMEA-{i:06d}", "name": "Crystal Foods Sp. z o.o. Nordic Holdings",
     "segment": "Mid-Market Enterprise", "csm": "Anna Maria Kowalska-Nowak", "score": 82.7 - i,
     "band": "green", "change_30d": 22.7 - i}
    for i in range(3)
]


def test_movers_keep_whole_account_ids_at_80_columns() -> None:
    from healthscore.cli import render

    data = {"as_of": "2026-10-31", "accounts": 3, "arr": 1000.0, "average_score": 80.0,
            "bands": [{"band": "green", "accounts": 3, "arr": 1000.0}], "band_order": ["green"],
            "by_segment": [], "by_csm": [], "by_lifecycle_stage": [],
            "movers_down": MOVERS, "movers_up": []}
    text = _text(render.portfolio, data)
    _fits(text, 80)
    for m in MOVERS:
        assert f"│ {m['account_id']} │" in text  # whole, on one line, copyable into explain
    assert "+22.7" in text and "82.7" in text


def test_measures_lists_every_name_whole_with_entity_columns_window_and_filter() -> None:
    from healthscore.cli import render
    from healthscore.config.load import LIBRARY, load_measure_file

    names = list(load_measure_file(LIBRARY, "(built-in library)"))
    for width in (80, 120):
        text = _text(render.measures, None, width=width)
        _fits(text, width)
        for name in names:
            assert f"│ {name} " in text, f"{name} is cut at {width} columns"
        assert "│ logins_30d " in text
        assert "count of usage_events (timestamp, event)" in text
        assert "window 30d" in text and "filter event = 'login'" in text
    assert "ratio active_users_30d / accounts.licensed_seats" in _text(render.measures, None)
    assert "Logins in the last 30 days." in _text(render.measures, None, width=120)
    assert "Logins in the last 30 days." not in _text(render.measures, None, width=80)


def test_explain_keeps_whole_measure_names_and_numbers_at_80_columns(tmp_path: Path) -> None:
    from healthscore import Project
    from healthscore.cli import render
    from tests.projects import AS_OF, write_project

    long = "customer_initiated_logins_30days"  # as long as the longest built-in name
    root = write_project(tmp_path, {
        "measures/long.yml": f"{long}: {{type: count, entity: usage_events, filter: \"event = "
                             f"'login'\", window: 30d, scheme: {{type: linear, low: 0, high: 4}}}}\n",
        "scorecards/default.yml": f"groups: {{usage: {{weight: 100, measures: {{logins_30: 60, "
                                  f"{long}: 40}}}}}}\n"})
    project = Project.load(root)
    project.run(as_of=AS_OF)
    text = _text(render.explanation, project.explain("A1"))
    _fits(text, 80)
    # A1: 2 logins: logins_30 scores 100 (weight 60), the long one 50 (weight 40 -> 20 points)
    assert _cells(text, long) == [long, "2", "50.0", "40", "20", ""]
    assert "│ logins_30 " in text
    wide = _text(render.explanation, project.explain("A1"), width=140)
    assert "contribution" in wide and "usage" in wide


# ----------------------------------------------------------------------------- exports


def test_exports_round_to_4_decimals_and_the_snapshot_keeps_full_precision(tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from healthscore import Project
    from healthscore.cli.main import app
    from tests.projects import AS_OF, PROJECT_YML, write_project

    # linear 0..3 logins: A1 (2 logins) scores 200/3, A2 (1 login) 100/3
    root = write_project(tmp_path, {
        "measures/usage.yml": (
            "logins_30: {type: count, entity: usage_events, filter: \"event = 'login'\", "
            "window: 30d, scheme: {type: linear, low: 0, high: 3}}\n"
            "tenure_m: {type: tenure, unit: months, scheme: {type: linear, low: 0, high: 24}}\n"),
        "scorecards/tenure.yml": "groups: {journey: {weight: 100, measures: {tenure_m: 100}}}\n",
        "healthscore.yml": PROJECT_YML + "also: [tenure]\n"})
    project = Project.load(root)
    project.run(as_of=AS_OF)
    runner = CliRunner()
    csv_path, pq_path = tmp_path / "scores.csv", tmp_path / "scores.parquet"
    for fmt, path in (("csv", csv_path), ("parquet", pq_path)):
        r = runner.invoke(app, ["export", "-p", str(root), "--format", fmt, "-o", str(path)])
        assert r.exit_code == 0, r.output
    text = csv_path.read_text()
    assert ",66.6667,yellow,,100.0,66.6667,yellow," in text and ",33.3333," in text
    assert "66.66666" not in text and "33.33333" not in text
    scores = dict(zip(*pq.read_table(pq_path, columns=["account_id", "score"]).to_pydict().values(),
                      strict=True))
    assert scores["A1"] == 66.6667 and scores["A2"] == 33.3333
    stored = project.scores().to_pandas().set_index("account_id")["score"]
    assert abs(stored["A1"] - 200 / 3) < 1e-12  # the snapshot is not rounded
    months = project.measure_rows("A1", "tenure_m")["value"]  # 2024-01-01 .. 2025-03-01
    assert 13 < months < 15 and round(months, 4) != months
    shown = runner.invoke(app, ["explain", "A1", "-p", str(root), "--json", "-m", "tenure_m"])
    assert json.loads(shown.output)["value"] == round(months, 4)


# ----------------------------------------------------------------------------- workflow lists


def _cta(i: int, **kw: Any) -> dict[str, Any]:
    base = {"id": i, "account_id": f"ACCOUNT-EMEA-{i:06d}", "type": "risk", "priority": "high",
            "status": "open", "due_on": date(2026, 11, 7), "owner": "Anna Maria Kowalska-Nowak",
            "reason": "Health score turned red after the sponsor left", "snoozed_until": None,
            "overdue": False}
    return {**base, **kw}


def test_cta_list_shows_due_date_status_priority_owner_and_a_total() -> None:
    from healthscore.cli import render

    today = date(2026, 11, 1)
    rows = [_cta(1), _cta(2, snoozed_until=date(2026, 11, 15)), _cta(3, overdue=True),
            _cta(4, snoozed_until=date(2026, 11, 1)),  # the snooze ended today: open again
            _cta(5, status="closed", priority="low", owner=None, due_on=None)]
    text = _text(render.ctas, rows, today)
    _fits(text, 80)
    assert _cells(text, "1")[:5] == ["1", "ACCOUNT-EMEA-000001", "high", "open", "2026-11-07"]
    assert _cells(text, "2")[3] == "snoozed" and _cells(text, "3")[3] == "overdue"
    assert _cells(text, "4")[3] == "open"
    assert _cells(text, "5")[2:6] == ["low", "closed", "-", "-"]
    assert "Anna Maria" in text and "Kowalska-Nowak" in text
    wide = _text(render.ctas, rows, today, width=140)
    assert _cells(wide, "1")[2:5] == ["risk", "high", "open"]
    assert "│ Health score turned red after the sponsor " in wide
    assert text.rstrip().endswith("5 CTAs: 2 open, 1 overdue, 1 snoozed, 1 closed")
    assert _text(render.ctas, rows[:1], today).rstrip().endswith("1 CTA: 1 open")
    assert _text(render.ctas, [], today).strip() == "No CTAs."


def test_plan_lists_what_it_skipped_by_reason_and_rule_with_examples() -> None:
    from healthscore.cli import render

    skipped = ([{"account_id": f"A{i}", "rule": "turned_red", "why": "already open"} for i in range(5)]
               + [{"account_id": "B1", "rule": "low_usage", "why": "closed within 14 days"},
                  {"account_id": "B2", "rule": "turned_red", "why": "closed within 14 days"}])
    assert _text(render.skipped, skipped).splitlines() == [
        "  Skipped 7 rule match(es) that would open a CTA again:",
        "    5 already open (rule turned_red): A0, A1, A2 and 2 more",
        "    1 closed within 14 days (rule low_usage): B1",
        "    1 closed within 14 days (rule turned_red): B2",
    ]
    assert _text(render.skipped, []) == ""


# ----------------------------------------------------------------------------- messages


def test_init_then_check_without_data_names_the_data_folder_and_the_option(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from healthscore.cli.main import app

    runner = CliRunner()
    root = tmp_path / "acme"
    made = runner.invoke(app, ["init", str(root)])
    assert made.exit_code == 0, made.output
    assert " ".join(made.output.split()) == (
        f"Created project {root} from template starter (2 files). Next: put your data files in "
        f"{root / 'data'} (named as in {root / 'healthscore.yml'}; or make the project with --data "
        f"FOLDER to read them where they are), then 'healthscore check -p {root}' and "
        f"'healthscore run -p {root}'.")
    checked = runner.invoke(app, ["check", "-p", str(root)])
    assert checked.exit_code == 1
    data = root / "data"
    assert checked.output == (
        f"error: healthscore.yml: no data yet: none of the 12 file sources has its file in {data} "
        f"(accounts.csv, account_history.parquet, contacts.parquet, usage_events/ and 8 more). "
        f"Put the data files in {data}, named as in healthscore.yml, or make the project with "
        f"'healthscore init PATH --data FOLDER' to read them from the folder that holds them.\n")


def test_workflow_lists_keep_whole_ids_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from healthscore.cli import workflow

    console = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(workflow, "out", console)
    rows = [{"id": 1234567, "account_id": "ACCOUNT-EMEA-000001", "title": "Call the new sponsor",
             "owner": "Anna Maria Kowalska-Nowak", "due_on": "2026-11-07", "status": "open",
             "role": "csm", "kind": "playbook", "cta": "Health score turned red", "note": "x" * 40}]
    workflow._show(rows, False, "Open tasks")
    text = console.export_text()
    _fits(text, 80)
    assert "│ 1234567 │ ACCOUNT-EMEA-000001 │" in text
