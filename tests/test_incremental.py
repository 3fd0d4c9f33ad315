"""Daily runs from the kept state: the new date equals a cold run on every column, late rows
recompute exactly the stored dates they touch, and anything the state cannot vouch for (a
changed configuration, changed columns, --full) is computed from the sources."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.csv as pcsv
import pytest

from healthscore import Project
from healthscore.cli.main import app
from healthscore.pipeline import incremental

from .conftest import CliRunner, copy_project
from .projects import ACCOUNT_COLUMNS, EVENT_COLUMNS, MEASURES_YML, csv_text, write_project
from .test_pipeline import _project, _risk_too, _truncated_copy

KEYS = ["account_id", "scorecard"]


def _frame(result: object) -> pd.DataFrame:
    frame = result.to_pandas()  # type: ignore[attr-defined]
    return frame.sort_values(KEYS).reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every column of ``a`` equals ``b``'s, row by row (floats to 1e-9)."""
    assert sorted(a.columns) == sorted(b.columns)
    assert list(zip(a.account_id, a.scorecard, strict=True)) == \
        list(zip(b.account_id, b.scorecard, strict=True))
    for col in a.columns:
        left, right = a[col], b[col]
        same = (left == right) | (left.isna() & right.isna())
        if left.dtype.kind == "f":
            same |= (left - right).abs() < 1e-9
        assert same.all(), f"{col}: {a[~same][[*KEYS, col]].head()} vs {b[~same][col].head()}"


def _state_day(root: Path) -> str:
    return json.loads((root / ".healthscore" / incremental.FOLDER / incremental.MANIFEST)
                      .read_text())["date"]


# ----------------------------------------------------------------------------- the next day


def test_the_next_day_from_the_kept_state_equals_a_cold_run_on_every_column(
        demo_data: Path, tmp_path: Path) -> None:
    """Eight-categories + the nine-module scorecard on the demo data (every measure type the
    templates use): D from the state of D-1 == D from the sources (--full) == D scored alone
    on the data as it stood that day (nothing after D is seen). D is an account's first day,
    so an account not active on D-1 is scored from its whole history too."""
    starts = pcsv.read_csv(demo_data / "accounts.csv").to_pandas()["start_date"]
    day = max(d for d in pd.to_datetime(starts).dt.date if d <= date(2026, 9, 30))
    root = _project(tmp_path / "p", demo_data)
    _risk_too(root)
    project = Project.load(root)
    project.run(start=day - timedelta(days=2), end=day - timedelta(days=1), every="day",
                apply_rules=False)
    assert _state_day(root) == str(day - timedelta(days=1))

    kept = project.run(as_of=day, apply_rules=False)
    assert kept.incremental == f"{day} computed from the state kept as of {day - timedelta(days=1)}"
    assert _state_day(root) == str(day)
    from_state = _frame(kept)
    assert len([c for c in from_state.columns if c.startswith(("m__", "s__"))]) > 40
    assert (pd.to_datetime(starts).dt.date == day).sum() >= 1  # a new account on D

    cold = project.run(as_of=day, apply_rules=False, full=True)
    assert cold.incremental == "--full: every date computed from the sources"
    _same(from_state, _frame(cold))

    cut = tmp_path / "cut"
    _truncated_copy(demo_data, cut / "data", day)
    alone_root = _project(cut / "project", cut / "data")
    _risk_too(alone_root)
    _same(from_state, _frame(Project.load(alone_root).run(as_of=day, apply_rules=False)))


# ----------------------------------------------------------------------------- late rows

FIRST = date(2025, 2, 1)
STORED = [FIRST + timedelta(days=i) for i in range(40)]  # 2025-02-01 .. 2025-03-12
NEXT = STORED[-1] + timedelta(days=1)


def _late_project(root: Path, extra: list[tuple[str, str, str, str]] = (),  # type: ignore[assignment]
                  windowed: bool = False) -> Path:
    """Three accounts' logins (A3's every day); besides the mini's 30-day count (alone with
    ``windowed``), a count over all time and the days since the last login."""
    accounts = [("A1", "Acme", "SMB", "2024-01-01"), ("A2", "Globex", "SMB", "2024-01-01"),
                ("A3", "Initech", "SMB", "2024-01-01")]
    events = [("A1", "u1", "login", f"{FIRST + timedelta(days=i)} 09:00:00") for i in range(0, 45, 3)]
    events += [("A2", "u2", "login", f"{FIRST + timedelta(days=i)} 09:00:00") for i in range(0, 45, 7)]
    events += [("A3", "u3", "login", f"{FIRST + timedelta(days=i)} 09:00:00") for i in range(45)]
    files = {} if windowed else {
        "measures/usage.yml": MEASURES_YML + """\
logins_ever: {type: count, entity: usage_events, filter: "event = 'login'", scheme: {type: linear, low: 0, high: 20}}
last_login: {type: days_since, entity: usage_events, scheme: {type: linear, low: 30, high: 0}}
""",  # noqa: E501
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {logins_30: 50, "
                                  "logins_ever: 30, last_login: 20}}}\n"}
    return write_project(root, {
        **files,
        "data/accounts.csv": csv_text(ACCOUNT_COLUMNS, accounts),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, [*events, *extra]),
    })


def _files(root: Path) -> dict[str, int]:
    """Each stored date's folder (replaced whole when the date is written again)."""
    snaps = root / ".healthscore" / "snapshots"
    return {p.name: p.stat().st_ino for p in snaps.glob("as_of=*")}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Callable[[bool], Path]:
    """``stored(windowed)``: the late-rows project scored on STORED, scored once for each
    ``windowed``; copy it to change it."""
    built: dict[bool, Path] = {}

    def get(windowed: bool) -> Path:
        if windowed not in built:
            root = _late_project(tmp_path_factory.mktemp("stored") / "p", windowed=windowed)
            Project.load(root).run(dates=STORED, apply_rules=False)
            built[windowed] = root
        return built[windowed]

    return get


@pytest.mark.parametrize("late_day, windowed, touched", [
    (STORED[-1], False, [STORED[-1]]),  # a row of yesterday arriving today: yesterday and today
    (STORED[5], True, STORED[5:35]),  # a 30-day window alone: the 30 stored dates that see it
    (STORED[5], False, STORED[5:]),  # a count over all time: every later date
])
def test_late_rows_recompute_exactly_the_dates_they_touch(
        stored: Callable[[bool], Path], tmp_path: Path, late_day: date, windowed: bool,
        touched: list[date]) -> None:
    root = copy_project(stored(windowed), tmp_path / "p")
    project = Project.load(root)
    before = _files(root)
    was = project.scores(late_day).to_pandas().set_index("account_id")["m__logins_30"]

    late = ("A2", "u9", "login", f"{late_day} 18:00:00")
    _late_project(root, [late], windowed)
    result = Project.load(root).run(as_of=NEXT, apply_rules=False)
    assert result.recomputed == touched
    assert result.dates == [*touched, NEXT]
    assert result.incremental == (
        f"late rows in usage_events dated {late_day}: recomputing "
        f"{', '.join(str(d) for d in touched)} and {NEXT} from the sources")
    after = _files(root)
    rewritten = sorted(d for d in before if before[d] != after[d])
    assert rewritten == [f"as_of={d}" for d in touched]
    now = project.scores(late_day).to_pandas().set_index("account_id")["m__logins_30"]
    assert now["A2"] == was["A2"] + 1 and now["A1"] == was["A1"] and now["A3"] == was["A3"]

    cold_root = _late_project(tmp_path / "cold", [late], windowed)
    cold = Project.load(cold_root)
    cold.run(dates=[*STORED, NEXT], apply_rules=False)
    for day in [*STORED, NEXT]:  # every stored date is what a cold run gives on today's data
        _same(project.scores(day, primary_only=False).to_pandas().sort_values(KEYS)
              .reset_index(drop=True),
              cold.scores(day, primary_only=False).to_pandas().sort_values(KEYS)
              .reset_index(drop=True))
    # and the day after is computed from the state again, as a cold run computes it
    again = Project.load(root).run(as_of=NEXT + timedelta(days=1), apply_rules=False)
    assert again.incremental.endswith(f"computed from the state kept as of {NEXT}")
    _same(_frame(again), _frame(cold.run(as_of=NEXT + timedelta(days=1), apply_rules=False,
                                         full=True)))


# ----------------------------------------------------------------------------- cold runs


@pytest.fixture(scope="module")
def kept_mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The late-rows project scored on the last three of STORED (its state kept as of the
    last): scored once, copied by each test."""
    root = _late_project(tmp_path_factory.mktemp("kept-mini") / "p")
    Project.load(root).run(dates=STORED[-3:], apply_rules=False)
    return root


def test_run_full_computes_from_the_sources(kept_mini: Path, tmp_path: Path) -> None:
    root = copy_project(kept_mini, tmp_path / "p")
    out = CliRunner().invoke(app, ["run", "--project", str(root), "--as-of", str(NEXT), "--full"])
    assert out.exit_code == 0, out.output
    assert "--full: every date computed from the sources." in out.output
    assert _state_day(root) == str(NEXT)  # and keeps the new state
    out = CliRunner().invoke(app, ["run", "--project", str(root), "--as-of",
                                   str(NEXT + timedelta(days=1))])
    assert f"computed from the state kept as of {NEXT}." in out.output


def test_a_changed_configuration_falls_back_to_a_cold_run(kept_mini: Path, tmp_path: Path) -> None:
    root = copy_project(kept_mini, tmp_path / "p")
    measures = root / "measures" / "usage.yml"
    measures.write_text(measures.read_text().replace("window: 30d", "window: 7d"))
    result = Project.load(root).run(as_of=NEXT, apply_rules=False)
    assert result.incremental == ("computed from the sources: the configuration (healthscore.yml, "
                                  "measures, scorecards) changed since the kept state")
    cold_root = _late_project(tmp_path / "cold")
    shutil.copy(measures, cold_root / "measures" / "usage.yml")
    cold = Project.load(cold_root)
    _same(_frame(result), _frame(cold.run(as_of=NEXT, apply_rules=False)))


def test_earlier_dates_are_cold_and_changed_values_are_late_rows(kept_mini: Path, tmp_path: Path) -> None:
    root = copy_project(kept_mini, tmp_path / "p")
    early = Project.load(root).run(as_of=STORED[0], apply_rules=False)
    assert early.incremental == (f"computed from the sources: {STORED[0]} is not after the kept "
                                 f"state's date, {STORED[-1]}")
    assert _state_day(root) == str(STORED[-1])  # an earlier date keeps the state as it was
    events = root / "data" / "usage_events.csv"
    lines = events.read_text().splitlines()
    events.write_text("\n".join([lines[0] + ",module", *[f"{x},core" for x in lines[1:]]]) + "\n")
    result = Project.load(root).run(as_of=NEXT, apply_rules=False)  # every row has changed
    assert result.recomputed == [STORED[0], *STORED[-3:]]
    assert result.incremental.startswith("late rows in usage_events dated 2025-02-01, 2025-02-02, ")


def test_a_failed_run_keeps_the_state_it_had(kept_mini: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_project(kept_mini, tmp_path / "p")
    state = (root / ".healthscore" / incremental.FOLDER / incremental.RUNNING).read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("healthscore.pipeline.write_snapshots", fail)
    with pytest.raises(OSError, match="disk full"):
        Project.load(root).run(as_of=NEXT, apply_rules=False)
    assert _state_day(root) == str(STORED[-1])
    assert (root / ".healthscore" / incremental.FOLDER / incremental.RUNNING).read_bytes() == state
    assert not list((root / ".healthscore").glob(".incremental-tmp-*"))
    monkeypatch.undo()
    result = Project.load(root).run(as_of=NEXT, apply_rules=False)
    assert result.incremental.endswith(f"computed from the state kept as of {STORED[-1]}")


def test_a_scorecard_without_running_values_keeps_a_state_too(tmp_path: Path) -> None:
    """Tenure alone (read from the accounts, nothing summed over dates): the next day still
    starts from the kept state, and equals a cold run."""
    root = write_project(tmp_path / "p", {
        "measures/usage.yml": "tenure: {type: tenure, unit: days, scheme: {type: linear, low: 0, "
                              "high: 400}}\n",
        "scorecards/default.yml": "groups: {age: {weight: 100, measures: {tenure: 100}}}\n"})
    project = Project.load(root)
    project.run(as_of=STORED[-1], apply_rules=False)
    kept = project.run(as_of=NEXT, apply_rules=False)
    assert kept.incremental == f"{NEXT} computed from the state kept as of {STORED[-1]}"
    _same(_frame(kept), _frame(project.run(as_of=NEXT, apply_rules=False, full=True)))


def test_ctas_opened_after_the_kept_date_colour_the_next_day(tmp_path: Path) -> None:
    """CTAs and marks come from the workflow store, read whole: a CTA the rules (or a CSM)
    opened on the kept date, after its run, colours the next day as a cold run colours it."""
    from healthscore.workflow.service import Workflow

    from .test_modules import card, colours, make

    project = make(tmp_path, card())
    kept_day, day = date(2025, 2, 28), date(2025, 3, 1)
    project.run(as_of=kept_day, apply_rules=False)
    for account, at in (("A1", datetime(2025, 2, 28, 15)), ("A2", datetime(2025, 3, 1, 9))):
        w = Workflow(project.config, project.store, today=at.date(), clock=lambda at=at: at)
        if account == "A1":
            w.add_user("ada", "admin")
        w.open_cta(account, "lifecycle", "Kickoff slipped", actor="ada", module="onboarding")
        w.close()  # A1's after the run of the kept day
    result = project.run(as_of=day, apply_rules=False)
    assert result.incremental == f"{day} computed from the state kept as of {kept_day}"
    assert colours(project, day, "c__onboarding") == {"A1": "yellow", "A2": "yellow", "A3": "green"}
    _same(_frame(result), _frame(project.run(as_of=day, apply_rules=False, full=True)))


# ----------------------------------------------------------------------------- what is read


def _cut(root: Path, prev: date, day: date,
         kept_seen: frozenset[str] = frozenset()) -> dict[str, pd.DataFrame]:
    """The tables a run of ``day`` from the state kept as of ``prev`` reads (its cut tables;
    ``kept_seen``: the distinct counts whose last days seen were kept)."""
    from healthscore import pipeline

    config = Project.load(root).config
    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        tables, _, _ = incremental.cut_tables(config, loaded, prev, day, kept_seen)
        return {e: engine.to_arrow(t).to_pandas() for e, t in tables.items()}
    finally:
        engine.close()


def test_the_next_day_reads_only_the_rows_that_move_a_value(tmp_path: Path) -> None:
    """A 30-day count, a count over all time and the days since the last login: from the
    state of yesterday only today's rows and those whose window closes today move a value
    (A3's logins of today and of 30 days ago), not the 67 rows of the source."""
    root = _late_project(tmp_path / "p")
    rows = _cut(root, STORED[-1], NEXT)["usage_events"]
    days = sorted(pd.to_datetime(rows.timestamp).dt.date)
    assert days == [NEXT - timedelta(days=30), NEXT] and set(rows.account_id) == {"A3"}


def test_a_cut_table_keeps_only_the_columns_its_measures_read(tmp_path: Path) -> None:
    """The logins' filter reads the event, every measure the time: user_id is not decoded."""
    root = _late_project(tmp_path / "p")
    rows = _cut(root, STORED[-1], NEXT)["usage_events"]
    assert list(rows.columns) == ["account_id", "event", "timestamp"]


TICKET_COLUMNS = ["ticket_id", "account_id", "opened_at", "closed_at"]
KEPT, DAY = date(2025, 3, 10), date(2025, 3, 11)
TICKETS = [  # (id, account, opened, closed) around the kept date and the day after it
    ("T1", "A1", "2025-02-01 09:00:00", "2025-03-11 10:00:00"),  # closes on DAY
    ("T2", "A1", "2025-02-01 09:00:00", "2025-03-05 10:00:00"),  # closed before KEPT
    ("T3", "A2", "2025-02-15 09:00:00", None),  # open since before KEPT, never closed
    ("T4", "A2", "2025-03-11 09:00:00", None),  # opens on DAY
    ("T5", "A1", "2025-03-08 09:00:00", None),  # counts as stale from DAY on (3 days)
    ("T6", "A3", "2025-03-09 09:00:00", "2025-03-10 08:00:00"),  # opened and closed by KEPT
]


def _tickets_project(root: Path) -> Path:
    return write_project(root, {
        "healthscore.yml": "name: mini\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv}\n"
                           "  tickets: {path: data/tickets.csv}\nscorecards: [default]\n",
        "measures/support.yml": """\
open_tickets: {type: count, entity: tickets, mode: open, scheme: {type: linear, low: 3, high: 0}}
stale_tickets: {type: count, entity: tickets, mode: open, open_after: 3d, scheme: {type: linear, low: 2, high: 0}}
""",  # noqa: E501
        "scorecards/default.yml": "groups: {support: {weight: 100, measures: {logins_30: 20, "
                                  "open_tickets: 40, stale_tickets: 40}}}\n",
        "data/tickets.csv": csv_text(TICKET_COLUMNS, TICKETS),
    })


def test_rows_open_for_a_while_are_carried_and_read_only_when_they_open_or_close(
        tmp_path: Path) -> None:
    """Open tickets (and those open 3 days) from the kept state: only the tickets that open,
    turn stale or close after the kept date are read, the values are a cold run's, and
    no source is read again (each one unchanged comes from the source cache)."""
    root = _tickets_project(tmp_path / "p")
    project = Project.load(root)
    project.run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    assert sorted(_cut(root, KEPT, DAY)["tickets"].ticket_id) == ["T1", "T4", "T5"]

    kept = project.run(as_of=DAY, apply_rules=False)
    assert kept.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    assert kept.cached == ["accounts", "tickets", "usage_events"]
    assert project.last_run()["computed"] == kept.incremental  # type: ignore[index]
    values = _frame(kept).set_index("account_id")
    assert values.m__open_tickets.to_dict() == {"A1": 1, "A2": 2, "A3": 0}
    assert values.m__stale_tickets.to_dict() == {"A1": 1, "A2": 1, "A3": 0}
    _same(_frame(kept), _frame(project.run(as_of=DAY, apply_rules=False, full=True)))


# ----------------------------------------------------------------------------- distinct counts

USERS = [  # (account, user, day): within and beyond the 7-day window of the day after KEPT
    ("A1", "u1", "2025-03-01"), ("A1", "u2", "2025-03-04"), ("A1", "u1", "2025-03-09"),
    ("A1", "u3", "2025-03-11"), ("A2", "u4", "2025-03-04"), ("A2", "u4", "2025-03-05"),
    ("A2", "u5", "2025-03-10"), ("A3", "u6", "2025-02-20"), ("A3", "u6", "2025-03-11"),
]


def _users_project(root: Path) -> Path:
    events = [(a, u, "login", f"{d} 09:00:00") for a, u, d in USERS]
    return write_project(root, {
        "measures/usage.yml": MEASURES_YML + """\
users_7d: {type: count_distinct, entity: usage_events, column: user_id, window: 7d, scheme: {type: linear, low: 0, high: 3}}
users_change: {type: change, of: users_7d, to: absolute, scheme: {type: linear, low: -2, high: 2}}
""",  # noqa: E501
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {logins_30: 40, "
                                  "users_7d: 30, users_change: 30}}}\n",
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, events),
    })


@pytest.fixture(scope="module")
def kept_users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distinct users' project scored on the two days up to KEPT (its state kept as of
    KEPT): scored once, copied by each test."""
    root = _users_project(tmp_path_factory.mktemp("kept-users") / "p")
    Project.load(root).run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    return root


def test_a_distinct_count_is_counted_from_the_last_days_kept_and_the_new_rows(
        kept_users: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct users in 7 days: the state keeps each user's last day seen while it counts,
    so the day after reads only its own rows for it (the change against the previous 7 days
    still reads its 14 days); the values are a cold run's."""
    root = copy_project(kept_users, tmp_path / "p")
    project = Project.load(root)
    state = incremental.read_state(root / ".healthscore")
    assert state is not None and list(state.seen) == ["users_7d"]
    kept = pd.read_parquet(state.folder / state.seen["users_7d"])
    assert sorted(map(tuple, kept.astype(str).values)) == [  # u1 of 03-01 and A3's u6: too old
        ("A1", "u1", "2025-03-09"), ("A1", "u2", "2025-03-04"), ("A2", "u4", "2025-03-05"),
        ("A2", "u5", "2025-03-10")]

    kept_seen = set(state.seen)
    config = project.config
    from healthscore import pipeline

    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        tables, _, rows = incremental.cut_tables(config, loaded, KEPT, DAY, kept_seen)
        days = sorted(str(d) for d in engine.to_arrow(tables["usage_events"])
                      .to_pandas().timestamp.dt.date)
        whole = engine.to_arrow(rows["usage_events"]).to_pandas()
    finally:
        engine.close()
    assert days == ["2025-03-11", "2025-03-11"]  # today's rows (30 days ago: none)
    assert len(whole) == len([u for u in USERS if u[2] > "2025-02-25"])  # the change: 14 days

    cut_with: list[set[str]] = []
    cut = incremental.cut_tables
    monkeypatch.setattr(incremental, "cut_tables", lambda *a: cut_with.append(set(a[4])) or cut(*a))
    result = project.run(as_of=DAY, apply_rules=False)
    monkeypatch.setattr(incremental, "cut_tables", cut)
    assert result.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    assert cut_with == [{"users_7d"}]  # the run cut the rows by the kept last days
    values = _frame(result).set_index("account_id")
    assert values.m__users_7d.to_dict() == {"A1": 2, "A2": 2, "A3": 1}  # (A1's u2: 7 days ago)
    assert values.m__users_change.to_dict() == {"A1": 0, "A2": 1, "A3": 1}
    after = _kept_seen(root)
    _same(_frame(result), _frame(project.run(as_of=DAY, apply_rules=False, full=True)))
    assert after == _kept_seen(root)  # what the next day starts from: a cold run's too
    assert ("A1", "u3", "2025-03-11") in after and ("A1", "u2", "2025-03-04") not in after


def _kept_seen(root: Path) -> list[tuple[str, ...]]:
    state = incremental.read_state(root / ".healthscore")
    assert state is not None
    kept = pd.read_parquet(state.folder / state.seen["users_7d"])
    return sorted(map(tuple, kept.astype(str).values))


def test_a_value_seen_again_before_the_kept_date_keeps_its_later_day(tmp_path: Path) -> None:
    """The day after reads, beside its own rows, the rows whose 3-day window closes on it
    (a count over the same events): A1's u1 of 03-08 is one, though u1's last day kept is
    03-09. Only the rows after the kept date move a last day seen, so the state the day
    after keeps 03-09, as a cold run does, and the counts are a cold run's."""
    users = [("A1", "u1", "2025-03-08"), ("A1", "u1", "2025-03-09"), ("A1", "u2", "2025-03-11"),
             ("A2", "u4", "2025-03-08"), ("A2", "u5", "2025-03-11")]
    root = write_project(tmp_path / "p", {
        "measures/usage.yml": MEASURES_YML + """\
events_3d: {type: count, entity: usage_events, window: 3d, scheme: {type: linear, low: 0, high: 2}}
users_7d: {type: count_distinct, entity: usage_events, column: user_id, window: 7d, scheme: {type: linear, low: 0, high: 3}}
""",  # noqa: E501
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {events_3d: 50, "
                                  "users_7d: 50}}}\n",
        "data/usage_events.csv": csv_text(
            EVENT_COLUMNS, [(a, u, "login", f"{d} 09:00:00") for a, u, d in users]),
    })
    project = Project.load(root)
    project.run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    cut = _cut(root, KEPT, DAY, frozenset({"users_7d"}))["usage_events"]
    cut = sorted(str(t.date()) for t in cut.timestamp)
    assert cut == ["2025-03-08", "2025-03-08", "2025-03-11", "2025-03-11"]  # 3 days back too

    result = project.run(as_of=DAY, apply_rules=False)
    assert result.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    after = _kept_seen(root)
    assert ("A1", "u1", "2025-03-09") in after
    assert _frame(result).set_index("account_id").m__users_7d.to_dict() == {"A1": 2, "A2": 2,
                                                                           "A3": 0}
    _same(_frame(result), _frame(project.run(as_of=DAY, apply_rules=False, full=True)))
    assert after == _kept_seen(root)


def test_the_next_day_compiles_its_measures_with_nested_selects(
        kept_users: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The measures and scores of the one new date are compiled with nested selects (Ibis
    merging each step into the next cost 0.36 instead of 0.14 CPU s at 100,000 accounts)."""
    import ibis

    root = copy_project(kept_users, tmp_path / "p")
    project = Project.load(root)
    fused: list[bool] = []
    score_wide = incremental.score_wide

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        fused.append(ibis.options.sql.fuse_selects)
        return score_wide(*args, **kwargs)

    monkeypatch.setattr(incremental, "score_wide", spy)
    assert project.run(as_of=DAY, apply_rules=False).incremental.startswith(f"{DAY} computed")
    assert fused == [False]


def _filled_tables(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, object]]:
    """(name, whether the main thread made it, its schema as the engine holds it) of every
    table the engine fills or registers from Arrow from now on."""
    import threading

    from healthscore.engine.adapter import DuckDBEngine

    made: list[tuple[str, bool, object]] = []
    make, copy = DuckDBEngine.make_table, DuckDBEngine.copy_arrow

    def note(engine, name):  # type: ignore[no-untyped-def]
        held = engine.con.table(name).schema()  # (a temporary table, or one of the database)
        made.append((name, threading.current_thread() is threading.main_thread(), held))

    def made_table(self, name, *a):  # type: ignore[no-untyped-def]
        make(self, name, *a)
        note(self, name)

    def copied(self, table, name):  # type: ignore[no-untyped-def]
        copy(self, table, name)
        note(self, name)

    monkeypatch.setattr(DuckDBEngine, "make_table", made_table)
    monkeypatch.setattr(DuckDBEngine, "copy_arrow", copied)
    return made


def test_the_next_day_fills_its_tables_behind_while_it_builds_their_readers(
        kept_users: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables the next day materialises (the cut sources, the contributions, the
    measures) are filled by a worker thread while this one builds and compiles the queries
    that read them; each is typed as the engine holds it, and the values are a cold run's."""
    root = copy_project(kept_users, tmp_path / "p")
    project = Project.load(root)
    named: dict[str, object] = {}
    table = incremental.Queued._table

    def spy(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        named[name] = table(self, name, *args, **kwargs).schema()
        return table(self, name, *args, **kwargs)

    monkeypatch.setattr(incremental.Queued, "_table", spy)
    made = _filled_tables(monkeypatch)
    result = project.run(as_of=DAY, apply_rules=False)
    assert result.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    behind = {name.rsplit("_", 1)[0] for name, main, _ in made if not main}
    assert {"hs_cut_usage_events", "hs_grid", "hs_carry_sparse", "hs_measures"} <= behind
    held = {name: schema for name, _, schema in made}
    assert named and all(named[n] == held[n] for n in named)  # (nullability too)
    _same(_frame(result), _frame(project.run(as_of=DAY, apply_rules=False, full=True)))


def test_a_queued_table_is_typed_as_the_engine_holds_it() -> None:
    """Tables named before they are filled carry the types the engine gives them (a
    timestamp in microseconds unless stored in milliseconds, not null where declared so),
    as the engine's own table would, and read back their rows once filled."""
    import ibis
    import ibis.expr.datatypes as dt
    import pyarrow as pa

    from healthscore.engine.adapter import DuckDBEngine

    engine = DuckDBEngine()
    try:
        queued = incremental.Queued(engine)
        t = ibis.memtable({"a": [1, None], "s": ["x", None]})
        at = ibis.literal(datetime(2026, 1, 1))
        expr = t.select(small=t.a.cast("int8"), at=at, ms=at.cast(dt.Timestamp(scale=3)),
                        one=ibis.literal(1, type=dt.Int64(nullable=False)), s=t.s)
        made = queued.materialize(expr, "typed")
        arrow = pa.table({"n": pa.array([1], pa.int32()),
                          "ms": pa.array([datetime(2026, 1, 1)], pa.timestamp("ms"))})
        registered = queued.register_arrow(arrow, engine.temp_name("arrow"))
        queued.close()
        held = engine.con.table(made.op().name, database=("temp", "main"))
        assert made.schema() == held.schema()
        assert str(made.schema()["at"]) == "timestamp(6)" and not made.schema()["one"].nullable
        assert registered.schema() == engine.con.table(registered.op().name,
                                                       database="temp").schema()
        assert engine.to_arrow(made).num_rows == 2 and engine.to_arrow(registered).num_rows == 1
    finally:
        engine.close()


def test_a_query_failing_behind_fails_the_run_and_runs_none_after_it(
        kept_users: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table the worker fails to fill fails the run with that error, once the worker is
    done: the tables queued after it are not filled, no worker is left, the state kept."""
    import threading

    from healthscore.engine.adapter import DuckDBEngine

    root = copy_project(kept_users, tmp_path / "p")
    project = Project.load(root)
    filled: list[str] = []
    make = DuckDBEngine.make_table

    def failing(self, name, *a):  # type: ignore[no-untyped-def]
        filled.append(name)
        if name.startswith("hs_carry_sparse"):
            raise RuntimeError("no room left")
        make(self, name, *a)

    monkeypatch.setattr(DuckDBEngine, "make_table", failing)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="no room left"):
        project.run(as_of=DAY, apply_rules=False)
    assert filled[-1].startswith("hs_carry_sparse")  # (the measures were queued after it)
    assert threading.active_count() == threads
    assert _state_day(root) == str(KEPT)


def test_a_band_of_days_holds_its_first_midnight_and_its_last_second() -> None:
    """Rows of a band (after, until] compared by their timestamps: from the midnight after
    ``after`` to the last moment of ``until``, as their days are."""
    import ibis

    stamps = ["2025-03-09 23:59:59.999999", "2025-03-10 00:00:00", "2025-03-11 23:59:59",
              "2025-03-12 00:00:00", None]
    t = ibis.memtable({"at": [None if s is None else datetime.fromisoformat(s) for s in stamps]})
    bands = [("at", date(2025, 3, 9), date(2025, 3, 11))]
    kept = ibis.duckdb.connect().to_pyarrow(t.filter(incremental._within(t, bands)))
    assert [str(v) for v in kept["at"].to_pylist()] == ["2025-03-10 00:00:00",
                                                         "2025-03-11 23:59:59"]


def test_a_cold_run_keeps_the_last_days_from_the_copy_its_count_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold run computes each distinct count's values seen once, in the engine: the last
    days it keeps read that copy, not the source's rows again."""
    import ibis.expr.operations as ops

    root = _users_project(tmp_path / "p")
    seen: list[set[str]] = []
    write = incremental.write_pending

    def spy(config, loaded, carries, day, prints=None, ahead=None):  # type: ignore[no-untyped-def]
        for c in carries:
            for last in c.seen.values():
                seen.append({t.name for t in last.op().find(ops.DatabaseTable)})
        return write(config, loaded, carries, day, prints, ahead)

    monkeypatch.setattr(incremental, "write_pending", spy)
    Project.load(root).run(as_of=KEPT, apply_rules=False)
    assert len(seen) == 1  # users_7d (its change's previous window is not kept)
    assert sorted(name.split("_")[1] for name in seen[0]) == ["grid", "seen"]  # no source
