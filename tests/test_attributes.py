"""The project's own account columns (contract type, payment method...) kept as attributes:
read by attribute measures, category and percentile schemes, 'when:' and the scored rows, as
they were on each date when an account_history gives them, with exact errors on bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from healthscore.errors import ConfigError, DataError
from healthscore.project import Project

from .projects import EVENTS, csv_text, write_project

# 'Contract' is the file's own column, mapped onto the attribute contract_type
ACCOUNTS = [
    ("A1", "Acme", "SMB", "2024-01-01", "Two year", "29.5"),
    ("A2", "Globex", "SMB", "2024-06-01", "Month-to-month", "70"),
    ("A3", "Initech", "SMB", "2024-01-15", "One year", "not a number"),
]
# A1 was on a monthly contract until 2025-02-15
HISTORY = [("A1", "2024-01-01", "Month-to-month"), ("A1", "2025-02-15", "Two year")]
EARLY, LATE = date(2025, 2, 10), date(2025, 3, 1)
PROJECT = """\
name: mini
sources:
  accounts:
    path: data/accounts.csv
    columns: {{contract_type: Contract}}
    attributes: {{contract_type: string, monthly_charges: float}}
  usage_events: {{path: data/usage_events.csv}}
{history}scorecards: [monthly, default]
"""


def _files(history: bool = False, project: str = PROJECT) -> dict[str, object]:
    files: dict[str, object] = {
        "healthscore.yml": project.format(
            history="  account_history: {path: data/account_history.csv}\n" if history else ""),
        "measures/usage.yml": """\
            contract: {type: attribute, column: contract_type,
                       scheme: {type: category, map: {two year: 100, one year: 70}, default: 10}}
            charges: {type: attribute, column: monthly_charges,
                      scheme: {type: percentile, by: contract_type}}
            """,
        "scorecards/monthly.yml": "when: \"contract_type = 'Month-to-month'\"\n"
                                  "groups: {terms: {weight: 100, measures: {charges: 100}}}\n",
        "scorecards/default.yml": "groups: {terms: {weight: 100, measures: {contract: 100}}}\n",
        "data/accounts.csv": csv_text(["account_id", "name", "segment", "start_date", "Contract",
                                       "monthly_charges"], ACCOUNTS),
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], EVENTS),
    }
    if history:
        files["data/account_history.csv"] = csv_text(["account_id", "valid_from", "contract_type"],
                                                     HISTORY)
    return files


def _scores(root: Path, dates: list[date]) -> pd.DataFrame:
    frame = Project.load(root).run(dates=dates, apply_rules=False).to_pandas()
    frame = frame[frame["is_primary"]]
    return frame.set_index(["as_of", "account_id"]).sort_index()


def test_extra_columns_feed_measures_schemes_selection_and_the_scored_rows(tmp_path: Path) -> None:
    write_project(tmp_path, _files())
    late = _scores(tmp_path, [LATE]).loc[LATE]
    assert late["contract_type"].to_dict() == {"A1": "Two year", "A2": "Month-to-month",
                                               "A3": "One year"}
    # the category scheme on the text attribute (case ignored), the default for the others
    assert (late.loc["A1", "s__contract"], late.loc["A3", "s__contract"]) == (100.0, 70.0)
    # 'when:' on the attribute picks A2's scorecard; its charges are read as a float
    assert late["scorecard"].to_dict() == {"A1": "default", "A2": "monthly", "A3": "default"}
    assert late.loc["A2", "m__charges"] == 70.0
    assert late.loc["A2", "s__charges"] == 50.0  # the only month-to-month account


def test_an_unreadable_cell_of_an_attribute_is_left_empty_and_reported(tmp_path: Path) -> None:
    write_project(tmp_path, _files())
    project = Project.load(tmp_path)
    result = project.run(dates=[LATE], apply_rules=False)
    health = result.health["accounts"]
    assert health.rows_rejected == 0
    assert health.blanked == {"unparseable float in monthly_charges": 1}


def test_attributes_are_read_as_of_each_date_from_the_history(tmp_path: Path) -> None:
    write_project(tmp_path, _files(history=True))
    f = _scores(tmp_path, [EARLY, LATE])
    # A1 was month-to-month until 2025-02-15: the monthly scorecard then, the default after
    assert (f.loc[(EARLY, "A1"), "contract_type"], f.loc[(EARLY, "A1"), "scorecard"]) == (
        "Month-to-month", "monthly")
    assert (f.loc[(LATE, "A1"), "contract_type"], f.loc[(LATE, "A1"), "scorecard"]) == (
        "Two year", "default")
    # without the history, today's value on both dates
    write_project(tmp_path / "today", _files())
    today = _scores(tmp_path / "today", [EARLY])
    assert today.loc[(EARLY, "A1"), "scorecard"] == "default"


BAD = [
    ("attributes:\n      segment: string",
     "healthscore.yml: sources.accounts.attributes.segment: 'segment' is already a column of "
     "accounts or of the scores. Give the attribute another name and map it: "
     "'columns: {<new name>: segment}'."),
    ("attributes:\n      score: string",
     "healthscore.yml: sources.accounts.attributes.score: 'score' is already a column of "
     "accounts or of the scores. Give the attribute another name and map it: "
     "'columns: {<new name>: score}'."),
    ("attributes:\n      Contract Type: string",
     "healthscore.yml: sources.accounts.attributes.Contract Type: an attribute's name must be "
     "lower-case letters, digits and single underscores, starting with a letter, so that "
     "'when:' and filters can name it. Name it e.g. 'contract_type' and map your column: "
     "'columns: {contract_type: <your column name>}'."),
    ("attributes:\n      contract_type: text",
     "healthscore.yml: sources.accounts.attributes.contract_type: must be one of 'string', "
     "'int', 'float', 'bool' or 'date'. Got 'text'."),
]


@pytest.mark.parametrize(("block", "expected"), BAD, ids=["column", "reserved", "name", "type"])
def test_bad_attribute_declarations_are_config_errors(tmp_path: Path, block: str,
                                                      expected: str) -> None:
    project = ("name: mini\nsources:\n  accounts:\n    path: data/accounts.csv\n    "
               f"{block}\n  usage_events: {{path: data/usage_events.csv}}\nscorecards: [default]\n")
    write_project(tmp_path, {"healthscore.yml": project})
    with pytest.raises(ConfigError) as err:
        Project.load(tmp_path)
    assert str(err.value) == expected


def test_attributes_belong_to_the_accounts_source(tmp_path: Path) -> None:
    project = ("name: mini\nsources:\n  accounts: {path: data/accounts.csv}\n  usage_events:\n"
               "    path: data/usage_events.csv\n    attributes: {browser: string}\n"
               "scorecards: [default]\n")
    write_project(tmp_path, {"healthscore.yml": project})
    with pytest.raises(ConfigError) as err:
        Project.load(tmp_path)
    assert str(err.value) == (
        "healthscore.yml: sources.usage_events.attributes: only the accounts source keeps extra "
        "columns as attributes (an account_history source gives their past values). Move "
        "'attributes:' to sources.accounts.")


def test_an_undeclared_column_is_named_with_the_declared_ones(tmp_path: Path) -> None:
    files = _files()
    files["scorecards/monthly.yml"] = ("when: \"payment = 'card'\"\n"
                                       "groups: {terms: {weight: 100, measures: {charges: 100}}}\n")
    write_project(tmp_path, files)
    with pytest.raises(ConfigError) as err:
        Project.load(tmp_path)
    assert str(err.value) == (
        "scorecards/monthly.yml: when: unknown account column 'payment' in \"payment = 'card'\". "
        "Valid: account_id, arr, churn_date, contract_type, csm, industry, licensed_seats, "
        "lifecycle_stage, modules_purchased, monthly_charges, mrr, name, plan, region, "
        "renewal_date, segment, start_date.")


def test_a_declared_attribute_missing_from_the_file_is_a_data_error(tmp_path: Path) -> None:
    files = _files()
    files["data/accounts.csv"] = csv_text(["account_id", "name", "segment", "start_date",
                                           "monthly_charges"], [a[:4] + a[5:] for a in ACCOUNTS])
    write_project(tmp_path, files)
    with pytest.raises(DataError) as err:
        Project.load(tmp_path).run(dates=[LATE], apply_rules=False)
    assert str(err.value).startswith(
        "healthscore.yml: sources.accounts: ")
    assert "has no column 'Contract' (from 'columns: {contract_type: Contract}'), needed for " \
           "accounts.contract_type." in str(err.value)


def test_the_rows_behind_an_attribute_measure_show_the_attribute(tmp_path: Path) -> None:
    write_project(tmp_path, _files())
    project = Project.load(tmp_path)
    project.run(dates=[LATE], apply_rules=False)
    rows = project.measure_rows("A2", "contract", LATE)
    assert "contract_type" in rows["columns"]
    assert [r["values"]["contract_type"] for r in rows["rows"]] == ["Month-to-month"]
