"""End to end on generated demo data: no leakage, every template, the CLI, Spark = DuckDB."""

from __future__ import annotations

import shutil
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from healthscore import Project
from healthscore.cli.main import app
from healthscore.entities import ENTITIES
from healthscore.templates import TEMPLATES, write_template

from .conftest import DEMO_DATES, CliRunner
from .conftest import DEMO_END as END

DATES = [date(2025, 12, 31), date(2026, 4, 30), date(2026, 9, 15)]


def _project(root: Path, data: Path, template: str = "eight-categories") -> Path:
    write_template(root, template, data)
    return root


def _risk_too(root: Path) -> None:
    """Add the nine-module scorecard as an additional scorecard (more measure types)."""
    tpl = Path(__file__).parents[1] / "src/healthscore/templates/risk-modules"
    shutil.copy(tpl / "scorecards/default.yml", root / "scorecards/risk.yml")
    (root / "measures").mkdir(exist_ok=True)
    shutil.copy(tpl / "measures/readiness.yml", root / "measures/readiness.yml")
    text = (root / "healthscore.yml").read_text()
    (root / "healthscore.yml").write_text(text.replace("scorecards: [enterprise, default]",
                                                       "scorecards: [enterprise, default]\nalso: [risk]"))


# ----------------------------------------------------------------------------- leakage


def _cut(table: pa.Table, entity: str, day: date) -> pa.Table:
    """The data as it stood at the end of ``day``: later rows gone, later closes unknown."""
    e = ENTITIES[entity]
    limit = datetime.combine(day, time.max)

    def after(col: str) -> pa.ChunkedArray:
        values = table[col]
        bound = pa.scalar(day if pa.types.is_date(values.type) else limit, values.type)
        return pc.fill_null(pc.greater(values, bound), False)

    if e.time:
        table = table.filter(pc.invert(after(e.time)))
    for col in [c for c in (e.end, "churn_date") if c and c in table.column_names]:
        table = table.set_column(table.column_names.index(col), col,
                                 pc.if_else(after(col), pa.nulls(len(table), table[col].type),
                                            table[col]))
    return table


def _truncated_copy(data: Path, target: Path, day: date) -> None:
    target.mkdir(parents=True)
    accounts = pcsv.read_csv(data / "accounts.csv")
    pcsv.write_csv(_cut(accounts, "accounts", day), target / "accounts.csv")
    (target / "usage_events").mkdir()
    events = pq.read_table(sorted((data / "usage_events").glob("*.parquet")))
    pq.write_table(_cut(events, "usage_events", day), target / "usage_events" / "p.parquet")
    for path in data.glob("*.parquet"):
        pq.write_table(_cut(pq.read_table(path), path.stem, day), target / path.name)


def test_no_score_ever_sees_data_after_its_as_of_date(demo_data: Path, tmp_path: Path) -> None:
    """Scoring many dates in one pass on all the data == scoring each date alone on the data
    as it stood that day. Any row from the future would make them differ. (The template's
    rules, applied after the scores are written, change no score: not applied.)"""
    full = _project(tmp_path / "full", demo_data)
    _risk_too(full)
    together = Project.load(full).run(dates=DATES, apply_rules=False).to_pandas()
    measure_cols = [c for c in together.columns if c.startswith(("m__", "s__"))]
    assert len(measure_cols) > 40
    for day in DATES:
        cut = tmp_path / f"cut-{day}"
        _truncated_copy(demo_data, cut / "data", day)
        alone_root = _project(cut / "project", cut / "data")
        _risk_too(alone_root)
        alone = Project.load(alone_root).run(as_of=day, apply_rules=False).to_pandas()
        a = together[together.as_of == day].set_index(["account_id", "scorecard"]).sort_index()
        b = alone.set_index(["account_id", "scorecard"]).sort_index()
        assert list(a.index) == list(b.index)
        for col in [*measure_cols, "score", "band", "coverage"]:
            left, right = a[col], b[col]
            same = (left == right) | (left.isna() & right.isna())
            if left.dtype.kind == "f":
                same |= (left - right).abs() < 1e-9
            assert same.all(), f"{col} differs on {day}: {a[~same][col].head()} vs {b[~same][col].head()}"


# ----------------------------------------------------------------------------- templates


def _template_scores(template: str, demo_data: Path, root: Path,
                     request: pytest.FixtureRequest) -> pd.DataFrame:
    """``template`` written on the demo data and scored as of END. The session's scored demo
    already is the eight-categories template scored on DEMO_DATES (END among them): its
    stored scores of END are read instead of scoring the same again."""
    if template == "eight-categories":
        assert END in DEMO_DATES
        scored = Project.load(request.getfixturevalue("scored_demo"))
        return scored.store.read(END).to_pandas()
    return Project.load(_project(root, demo_data, template)).run(as_of=END).to_pandas()


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_scores_the_demo_data(template: str, demo_data: Path, tmp_path: Path,
                                             request: pytest.FixtureRequest) -> None:
    frame = _template_scores(template, demo_data, tmp_path / template, request)
    primary = frame[frame.is_primary]
    assert primary.account_id.is_unique and len(primary) > 50
    assert primary.score.between(0, 100).all()
    assert primary.coverage.min() >= 0 and primary.coverage.max() <= 100 + 1e-9
    assert set(primary.band) <= {"red", "yellow", "green", "insufficient data"}
    assert primary.score.std() > 3  # the score separates accounts


# ----------------------------------------------------------------------------- CLI


def test_cli_end_to_end(demo_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "proj"
    result = runner.invoke(app, ["init", str(root), "--template", "starter", "--data",
                                 str(demo_data)])
    assert result.exit_code == 0, result.output
    assert "Created project" in result.output
    result = runner.invoke(app, ["check", "-p", str(root)])
    assert result.exit_code == 0, result.output
    assert "usage_events" in result.output and "OK" in result.output
    result = runner.invoke(app, ["run", "-p", str(root), "--from", "2026-08-31",
                                 "--to", "2026-10-31", "--every", "month"])
    assert result.exit_code == 0, result.output
    assert "3 dates" in result.output
    assert [d.isoformat() for d in Project.load(root).store.dates()] == [
        "2026-08-31", "2026-09-30", "2026-10-31"]
    result = runner.invoke(app, ["show", "-p", str(root)])
    assert result.exit_code == 0 and "Portfolio as of 2026-10-31" in result.output
    account = Project.load(root).scores().column("account_id")[0].as_py()
    result = runner.invoke(app, ["explain", account, "-p", str(root)])
    assert result.exit_code == 0 and "logins_30d" in result.output
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["export", "-p", str(root), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0 and out.read_text().startswith("account_id,")
    result = runner.invoke(app, ["explain", "NOPE", "-p", str(root)])
    assert result.exit_code == 1
    assert "account 'NOPE' has no score on 2026-10-31" in result.output


def test_rerun_replaces_a_date_and_a_failed_run_changes_nothing(demo_data: Path,
                                                                 tmp_path: Path) -> None:
    root = _project(tmp_path / "p", demo_data, "starter")
    project = Project.load(root)
    project.run(as_of=END)
    before = sorted(p.name for p in project.store.path(END).iterdir())
    project.run(as_of=END)
    assert sorted(p.name for p in project.store.path(END).iterdir()) == before
    first = project.store.read(END)
    (root / "healthscore.yml").write_text(
        (root / "healthscore.yml").read_text().replace("usage_events/", "missing_events/"))
    with pytest.raises(Exception, match="no file at"):
        Project.load(root).run(as_of=END)
    assert project.store.read(END).equals(first)
    assert not list(root.glob(".healthscore/.staging-*"))


# ----------------------------------------------------------------------------- Spark


@pytest.mark.spark
def test_spark_gives_the_same_scores_as_duckdb_and_sees_no_future(
        tmp_path: Path, small_duckdb: tuple[pd.DataFrame, dict[date, pd.DataFrame]]) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 on the PATH (apt-get install openjdk-17-jre)")
    from tests.test_measures import build_project

    duck, alone = small_duckdb
    spark_root = build_project(tmp_path / "spark", engine="spark")
    spark = Project.load(spark_root).run(dates=DATES_SMALL).to_pandas()
    _same_frames(duck, spark)
    # and Spark sees no future: each date equals a run on the data as it stood that day
    for day in DATES_SMALL:
        _same_frames(spark[spark.as_of == day], alone[day])


_SPARK_QUERY = """
import sys
from pathlib import Path
import pyarrow as pa
from healthscore.engine.adapter import make_engine
engine = make_engine("spark", log_file=Path(sys.argv[1]))
t = engine.register_arrow(pa.table({"a": [1, 2, 3]}), "t")
print(engine.to_arrow(engine.materialize(t.mutate(b=t.a * 2), "x")).column("b").to_pylist())
"""


@pytest.mark.spark
def test_spark_logs_go_to_the_engine_log_not_the_terminal(tmp_path: Path) -> None:
    """Spark's JVM (log4j lines, Java warnings, stage bars) writes to .healthscore/engine.log;
    the terminal shows only what healthscore prints. A fresh process: a fresh JVM."""
    import subprocess
    import sys

    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 on the PATH (apt-get install openjdk-17-jre)")
    log = tmp_path / ".healthscore" / "engine.log"
    done = subprocess.run([sys.executable, "-c", _SPARK_QUERY, str(log)], capture_output=True,
                          text=True, timeout=600, check=True)
    assert done.stdout == "[2, 4, 6]\n"
    assert done.stderr == ""
    assert "log4j" in log.read_text()


def _same_frames(left_frame: pd.DataFrame, right_frame: pd.DataFrame) -> None:
    key = ["account_id", "as_of", "scorecard"]
    a = left_frame.sort_values(key).reset_index(drop=True)
    b = right_frame.sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert a[key].astype(str).values.tolist() == b[key].astype(str).values.tolist()
    for col in a.columns:
        left, right = a[col], b[col]
        same = (left == right) | (left.isna() & right.isna())
        if left.dtype.kind == "f":
            same |= (left - right).abs() < 1e-9
        assert same.all(), f"{col}: {left[~same].tolist()} vs {right[~same].tolist()}"


DATES_SMALL = [date(2025, 2, 28), date(2025, 3, 5)]


def small_duckdb_scores(folder: Path) -> tuple[pd.DataFrame, dict[date, pd.DataFrame]]:
    """The hand-computed project on DuckDB: DATES_SMALL scored in one pass, and each of them
    scored alone on the data cut at that date (the conftest's ``small_duckdb``)."""
    from tests.test_measures import build_project

    together = Project.load(build_project(folder / "duck")).run(dates=DATES_SMALL).to_pandas()
    alone = {}
    for day in DATES_SMALL:
        root = build_project(folder / f"cut-{day}")
        for path in (root / "data").glob("*.csv"):
            entity = {"manual": "manual_values"}.get(path.stem, path.stem)
            pcsv.write_csv(_cut(pcsv.read_csv(path), entity, day), path)
        alone[day] = Project.load(root).run(as_of=day).to_pandas()
    return together, alone


def test_many_dates_in_several_passes_give_the_same_scores(demo_data: Path, tmp_path: Path) -> None:
    dates = [date(2026, m, 1) for m in range(1, 11)]
    one = Project.load(_project(tmp_path / "one", demo_data, "risk-modules")).run(
        dates=dates, apply_rules=False)  # rules are applied after the scores: none changes
    root = _project(tmp_path / "many", demo_data, "risk-modules")
    text = (root / "healthscore.yml").read_text()
    small = text.replace("settings:\n", "settings:\n  max_rows_per_pass: 1000\n")
    (root / "healthscore.yml").write_text(small)
    many = Project.load(root).run(dates=dates, apply_rules=False)
    key = ["as_of", "account_id", "scorecard"]
    a = one.to_pandas().sort_values(key).reset_index(drop=True)
    b = many.to_pandas().sort_values(key).reset_index(drop=True)
    assert len(a) == len(b) > 1000
    pd.testing.assert_frame_equal(a, b)


def test_a_run_reports_sources_read_and_dates_done_pass_by_pass(tmp_path: Path) -> None:
    """The progress a run reports: each source of all, then the dates done of all at the start
    of every pass (400 accounts, at most 1000 account-dates a pass: 2 dates a pass)."""
    from tests.projects import ACCOUNT_COLUMNS, csv_text, write_project

    accounts = [(f"A{i}", f"Account {i}", "SMB", "2024-01-01") for i in range(400)]
    yml = "name: many\nsettings: {max_rows_per_pass: 1000}\nsources:\n" \
          "  accounts: {path: data/accounts.csv}\n  usage_events: {path: data/usage_events.csv}\n" \
          "scorecards: [default]\n"
    root = write_project(tmp_path, {"healthscore.yml": yml,
                                    "data/accounts.csv": csv_text(ACCOUNT_COLUMNS, accounts)})
    seen: list[str] = []
    Project.load(root).run(dates=[date(2025, m, 1) for m in range(1, 6)], progress=seen.append)
    assert seen == [
        "reading accounts|0|2", "reading usage_events|1|2",
        "scoring 5 as-of date(s), pass 1 of 3|0|5",
        "scoring 5 as-of date(s), pass 2 of 3|2|5",
        "scoring 5 as-of date(s), pass 3 of 3|4|5",
        "scoring 5 as-of date(s)|5|5",
    ]
