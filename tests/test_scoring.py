"""Scores computed by hand: weights, nested groups, skip re-spreading, fixed missing scores,
bands, insufficient data, grades, percentile within segment, several scorecards."""

from __future__ import annotations

import pytest

from healthscore import Project
from tests.projects import csv_text, project_yml, write_project

AS_OF = "2025-03-01"
# value columns become attribute measures, so every raw value is set by hand
ACCOUNTS = csv_text(
    ["account_id", "segment", "start_date", "arr", "licensed_seats", "modules_purchased",
     "lifecycle_stage"],
    [
        ("A", "SMB", "2024-01-01", 50, 10, 4, "adoption"),
        ("B", "SMB", "2024-01-01", 100, 0, None, "onboarding"),
        ("C", "SMB", "2024-01-01", 0, None, None, "renewal"),
        ("D", "Enterprise", "2024-01-01", 80, 5, 2, None),
        ("E", "Enterprise", "2024-01-01", 20, 5, 1, "adoption"),
    ],
)
MEASURES = """\
arr_v: {type: attribute, column: arr, scheme: {type: linear, low: 0, high: 100}}
seats_v: {type: attribute, column: licensed_seats, scheme: {type: thresholds, cuts: [1, 6], scores: [0, 50, 100]}}
mods_v: {type: attribute, column: modules_purchased, missing: 40, scheme: {type: linear, low: 4, high: 0}}
stage_v: {type: attribute, column: lifecycle_stage, scheme: {type: category, map: {adoption: 90, onboarding: 30}, default: 60}}
arr_pct: {type: attribute, column: arr, scheme: {type: percentile, by: segment}}
"""  # noqa: E501
NESTED = """\
min_coverage: 50
grades: [{grade: A, min: 80}, {grade: B, min: 50}, {grade: C, min: 0}]
groups:
  money:
    weight: 60
    measures: {arr_v: 50}
    groups:
      capacity:
        weight: 50
        measures: {seats_v: 70, mods_v: 30}
  journey:
    weight: 40
    measures: {stage_v: 100}
"""


def _run(tmp_path, scorecards: dict[str, str], order: str, extra: str = ""):  # type: ignore[no-untyped-def]
    files = {"healthscore.yml": project_yml("accounts: {path: data/accounts.csv}\n",
                                            f"scorecards: {order}\n{extra}"),
             "data/accounts.csv": ACCOUNTS, "measures/m.yml": MEASURES}
    files.update({f"scorecards/{n}.yml": body for n, body in scorecards.items()})
    project = Project.load(write_project(tmp_path, files, base=False))
    frame = project.run(as_of=AS_OF).to_pandas()
    return project, frame.set_index(["account_id", "scorecard"])


def test_nested_groups_skip_and_fixed_missing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, f = _run(tmp_path, {"default": NESTED}, "[default]")
    # A: arr 50 -> 50; seats 10 -> 100; mods 4 -> 0; capacity = .7*100 + .3*0 = 70
    #    money = .5*50 + .5*70 = 60; stage adoption -> 90; score = .6*60 + .4*90 = 72
    a = f.loc[("A", "default")]
    assert a["g__money.capacity"] == pytest.approx(70)
    assert a["g__money"] == pytest.approx(60)
    assert a["score"] == pytest.approx(72)
    assert a["coverage"] == pytest.approx(100)
    assert (a["band"], a["grade"]) == ("green", "B")
    # B: arr 100 -> 100; seats 0 -> 0; mods missing -> fixed 40 (no data: not coverage)
    #    capacity = .7*0 + .3*40 = 12; money = .5*100 + .5*12 = 56; stage onboarding 30
    #    score = .6*56 + .4*30 = 45.6; coverage = 100 - 60*.5*.3 = 91
    b = f.loc[("B", "default")]
    assert b["score"] == pytest.approx(45.6)
    assert b["coverage"] == pytest.approx(91)
    assert (b["band"], b["grade"]) == ("yellow", "C")
    # C: arr 0 -> 0; seats missing (skip) -> capacity = mods fixed 40 alone = 40
    #    money = .5*0 + .5*40 = 20; stage renewal -> default 60; score = .6*20 + .4*60 = 36
    #    coverage = 100 - 60*.5*(.7+.3) = 70
    c = f.loc[("C", "default")]
    assert c["g__money.capacity"] == pytest.approx(40)
    assert c["score"] == pytest.approx(36)
    assert c["coverage"] == pytest.approx(70)
    assert c["band"] == "red"


def test_empty_group_weight_goes_to_other_groups(tmp_path) -> None:  # type: ignore[no-untyped-def]
    card = """\
    groups:
      capacity: {weight: 30, measures: {seats_v: 100}}
      money: {weight: 70, measures: {arr_v: 100}}
    """
    _, f = _run(tmp_path, {"default": card}, "[default]")
    c = f.loc[("C", "default")]  # no seats: capacity drops out, money carries everything
    assert c["score"] == pytest.approx(0)
    assert c["coverage"] == pytest.approx(70)
    assert c["band"] == "red"
    d = f.loc[("D", "default")]  # seats 5 -> 50, arr 80 -> 80: .3*50 + .7*80 = 71
    assert d["score"] == pytest.approx(71)


def test_insufficient_data_is_never_green(tmp_path) -> None:  # type: ignore[no-untyped-def]
    card = """\
    min_coverage: 80
    groups:
      capacity: {weight: 30, measures: {arr_v: 100}}
      modules: {weight: 70, measures: {mods_v: {weight: 100, missing: skip}}}
    """
    _, f = _run(tmp_path, {"default": card}, "[default]")
    b = f.loc[("B", "default")]  # arr 100 scores 100, but only 30% of the weight has data
    assert b["score"] == pytest.approx(100)
    assert b["coverage"] == pytest.approx(30)
    assert b["band"] == "insufficient data"


def test_custom_bands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    card = """\
    bands: [{name: critical, min: 0}, {name: watch, min: 25}, {name: ok, min: 50}, {name: great, min: 90}]
    groups: {money: {weight: 100, measures: {arr_v: 100}}}
    """  # noqa: E501
    _, f = _run(tmp_path, {"default": card}, "[default]")
    bands = {a: f.loc[(a, "default")]["band"] for a in "ABCDE"}
    assert bands == {"A": "ok", "B": "great", "C": "critical", "D": "ok", "E": "critical"}


def test_percentile_within_segment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    card = "groups: {money: {weight: 100, measures: {arr_pct: 100}}}\n"
    _, f = _run(tmp_path, {"default": card}, "[default]")
    # SMB arr 50, 100, 0 -> mid-rank percentiles 50, 83.3, 16.7; Enterprise 80, 20 -> 75, 25
    got = {a: f.loc[(a, "default")]["score"] for a in "ABCDE"}
    assert got == pytest.approx({"A": 50, "B": 500 / 6, "C": 100 / 6, "D": 75, "E": 25})


def test_scorecard_chosen_by_when_and_additional_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    enterprise = "when: \"segment = 'Enterprise'\"\ngroups: {s: {weight: 100, measures: {seats_v: 100}}}\n"
    default = "groups: {m: {weight: 100, measures: {arr_v: 100}}}\n"
    stage = "groups: {j: {weight: 100, measures: {stage_v: 100}}}\n"
    _, f = _run(tmp_path, {"enterprise": enterprise, "default": default, "stage": stage},
                "[enterprise, default]", "also: [stage]")
    primary = f[f["is_primary"]].reset_index().set_index("account_id")["scorecard"].to_dict()
    assert primary == {"A": "default", "B": "default", "C": "default", "D": "enterprise",
                       "E": "enterprise"}
    assert f.loc[("D", "enterprise")]["score"] == pytest.approx(50)
    assert f.loc[("A", "stage")]["score"] == pytest.approx(90)
    assert not f.loc[("A", "stage")]["is_primary"]
    assert len(f) == 10  # one primary + one additional row per account


def test_explain_contributions_add_up_to_the_score(tmp_path) -> None:  # type: ignore[no-untyped-def]
    project, f = _run(tmp_path, {"default": NESTED}, "[default]")
    for account in "ABC":
        card = project.explain(account)["scorecards"][0]
        total = sum(m["contribution"] for m in card["measures"])
        assert total == pytest.approx(f.loc[(account, "default")]["score"], abs=0.05)


def test_scorecard_version_changes_with_its_definition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    project, f = _run(tmp_path, {"default": NESTED}, "[default]")
    before = f.iloc[0]["version"]
    changed = NESTED.replace("arr_v: 50", "arr_v: 50.0").replace("min_coverage: 50", "min_coverage: 60")
    (tmp_path / "scorecards/default.yml").write_text(changed)
    after = Project.load(tmp_path).run(as_of=AS_OF).to_pandas().iloc[0]["version"]
    assert before != after


def test_every_scheme_type_has_one_compiler() -> None:
    import typing

    from healthscore.config import specs
    from healthscore.scoring.schemes import SCHEMES

    kinds = {typing.get_args(m.model_fields["type"].annotation)[0] for m in typing.get_args(specs.Scheme)}
    assert kinds == set(SCHEMES)


def test_every_measure_type_has_one_class_and_one_compiler() -> None:
    import typing

    from healthscore.config import specs
    from healthscore.config.model import MEASURE_TYPES
    from healthscore.measures.build import COMPILERS

    kinds = {k for m in typing.get_args(typing.get_args(specs.MeasureSpec)[0])
             for k in typing.get_args(m.model_fields["type"].annotation)}
    assert kinds == set(COMPILERS)
    assert kinds == set(MEASURE_TYPES)


def test_the_engine_reads_typed_measures_never_their_specs() -> None:
    import re
    from pathlib import Path

    import healthscore

    root = Path(healthscore.__file__).parent
    files = [*(root / "measures").glob("*.py"), *(root / "scoring").glob("*.py"),
             *(root / "validation").glob("*.py")]
    reads = [f"{path.relative_to(root)}:{i}" for path in sorted(files)
             for i, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\.spec\b", line)]
    assert reads == []
