"""Seed 000's question in plain words per band: did those who stayed for years score high,
and those who left low? By hand on a small frame."""

from __future__ import annotations

from datetime import date

import pandas as pd

from healthscore.validation.question import QUESTION, answer

JAN, FEB, MAR = date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)
ROWS = [  # account_id, as_of, start_date, band, label
    ("S1", MAR, date(2022, 1, 1), "green", 0),
    ("S2", FEB, date(2023, 6, 1), "red", 0), ("S2", MAR, date(2023, 6, 1), "green", 0),
    ("S3", MAR, date(2024, 1, 1), "red", 0),
    ("S4", MAR, date(2025, 1, 1), "green", 0),  # a customer for less than a year: not counted
    ("L1", JAN, date(2022, 1, 1), "yellow", 1), ("L1", FEB, date(2022, 1, 1), "red", 1),
    ("L2", MAR, date(2022, 1, 1), "green", 1),  # still there on MAR, leaves after it
    ("L3", JAN, date(2020, 1, 1), "green", 0), ("L3", FEB, date(2020, 1, 1), "yellow", 1),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["account_id", "as_of", "start_date", "band", "label"])


def test_stayed_and_left_by_band_by_hand() -> None:
    a = answer(_frame(), ["red", "yellow", "green"])
    assert a is not None
    # fewer than 20 stayed two years: those who stayed one year or more, S1 to S3, on MAR;
    # those who left at their last score before it: L1 red, L2 green, L3 yellow
    assert (a["question"], a["as_of"], a["years"], a["stayed"], a["left"]) == (
        QUESTION, MAR, 1, 3, 3)
    shares = {b["band"]: (b["stayed"]["accounts"], b["left"]["accounts"]) for b in a["bands"]}
    assert shares == {"red": (1, 1), "yellow": (0, 1), "green": (2, 1)}
    assert a["verdict"] == "partly"
    assert a["answer"] == (
        "Partly: of the 3 customers who stayed a year or more, 67% were green and 33% red on "
        "2025-03-31; of the 3 who left, 33% were red at their last score before leaving and 33% "
        "green. Those who left were not red more often than those who stayed.")


def test_the_answer_is_yes_when_both_hold_and_no_when_neither_does() -> None:
    f = _frame()
    f.loc[(f.account_id == "L2"), "band"] = "red"
    assert answer(f, ["red", "yellow", "green"])["verdict"] == "yes"  # type: ignore[index]
    f.loc[f.account_id.isin(["S1", "S2"]), "band"] = "red"
    f.loc[f.account_id.isin(["L1", "L2", "L3"]), "band"] = "green"
    a = answer(f, ["red", "yellow", "green"])
    assert a is not None and a["verdict"] == "no"
    assert a["answer"].endswith("Those who stayed were not green more often than those who "
                                "left. Those who left were not red more often than those who "
                                "stayed.")


def test_two_years_once_twenty_accounts_have_stayed_that_long() -> None:
    rows = [(f"S{i}", MAR, date(2022, 1, 1), "green", 0) for i in range(20)]
    rows += [("Y", MAR, date(2024, 1, 1), "red", 0), ("L", FEB, date(2022, 1, 1), "red", 1)]
    f = pd.DataFrame(rows, columns=["account_id", "as_of", "start_date", "band", "label"])
    a = answer(f, ["red", "yellow", "green"])
    assert a is not None and (a["years"], a["stayed"]) == (2, 20)  # Y stayed one year only
    assert a["answer"].startswith("Yes: of the 20 customers who stayed two years or more, "
                                  "100% were green and 0% red")
