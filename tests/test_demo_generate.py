"""The seeded demo-data generator: schema, reproducibility, point-in-time sanity, planted truths."""

from __future__ import annotations

import csv
import importlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from healthscore.demo import generate
from healthscore.demo.generate import schema_for
from healthscore.entities import ENTITIES, HISTORY_ATTRIBUTES

END = date(2026, 10, 31)
WINDOW_START = pd.Timestamp("2024-11-01")
END_EXCL = pd.Timestamp("2026-11-01")
WRITTEN = [name for name in ENTITIES
           if name not in ("manual_values", "subscriptions", "ctas", "touches", "module_marks")]
ARROW = {
    "string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "date": pa.date32(), "timestamp": pa.timestamp("us"),
}


def _expected(entity: str) -> dict[str, pa.DataType]:
    return {c.name: ARROW[c.type] for c in ENTITIES[entity].columns}


def _read(paths: dict[str, Path], entity: str) -> pd.DataFrame:
    if entity == "accounts":
        options = pa_csv.ConvertOptions(column_types=_expected("accounts"))
        table = pa_csv.read_csv(paths["accounts"], convert_options=options)
    else:
        table = ds.dataset(paths[entity], format="parquet").to_table()
    return table.to_pandas()


PROGRESS: list[tuple[int, int]] = []  # progress calls of the ``small`` run


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """200 accounts in chunks of 80: three usage parts."""
    PROGRESS.clear()
    return generate(tmp_path_factory.mktemp("small"), accounts=200, seed=7, end_date=END,
                    chunk_size=80, progress=lambda done, total: PROGRESS.append((done, total)))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    paths = generate(tmp_path_factory.mktemp("big"), accounts=1000, seed=11, end_date=END)
    return {name: _read(paths, name) for name in WRITTEN}


@pytest.fixture(scope="module")
def accounts(data: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Accounts with churn flag, reference day (churn or end) and months observed."""
    acc = data["accounts"].copy()
    acc["churned"] = acc["churn_date"].notna()
    acc["ref"] = pd.to_datetime(acc["churn_date"]).fillna(END_EXCL)
    start = pd.to_datetime(acc["start_date"])
    acc["start"] = start
    acc["months"] = ((acc["ref"] - start.clip(lower=WINDOW_START)).dt.days / 30.4).clip(lower=1)
    return acc.set_index("account_id")


# --- files, columns, types ------------------------------------------------------------------


def test_files_and_columns_match_entities(small: dict[str, Path]) -> None:
    assert set(WRITTEN) <= set(small)
    assert small["accounts"].suffix == ".csv"
    header = small["accounts"].read_text().splitlines()[0]
    assert header.replace('"', "").split(",") == ENTITIES["accounts"].column_names
    for entity in WRITTEN:
        if entity == "accounts":
            schema = pa_csv.read_csv(small["accounts"], convert_options=pa_csv.ConvertOptions(
                column_types=_expected("accounts"))).schema
        else:
            schema = ds.dataset(small[entity], format="parquet").schema
        assert schema.names == ENTITIES[entity].column_names, entity
        assert {f.name: f.type for f in schema} == _expected(entity), entity


def test_required_columns_are_filled(small: dict[str, Path]) -> None:
    for entity in WRITTEN:
        df = _read(small, entity)
        assert len(df) > 0, entity
        for col in ENTITIES[entity].columns:
            if col.required:
                assert df[col.name].notna().all(), f"{entity}.{col.name}"


def test_accounts_csv_uses_iso_dates(small: dict[str, Path]) -> None:
    with small["accounts"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200
    for row in rows:
        assert date.fromisoformat(row["start_date"]) < date.fromisoformat(row["renewal_date"])
        assert row["churn_date"] == "" or date.fromisoformat(row["churn_date"]) <= END


# --- reproducibility and streaming ------------------------------------------------------------


def _all_files(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_same_seed_same_bytes_other_seed_other_data(small: dict[str, Path], tmp_path: Path) -> None:
    root = small["accounts"].parent
    again = generate(tmp_path / "again", accounts=200, seed=7, end_date=END, chunk_size=80)
    assert _all_files(root) == _all_files(again["accounts"].parent)
    other = generate(tmp_path / "other", accounts=200, seed=8, end_date=END, chunk_size=80)
    for name in ("accounts", "usage_events", "tickets"):
        assert not _read(small, name).equals(_read(other, name)), name


def test_streams_usage_in_parts_and_reports_progress(small: dict[str, Path]) -> None:
    parts = sorted(small["usage_events"].glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(3)]
    assert PROGRESS == [(80, 200), (160, 200), (200, 200)]
    per_part = [set(pq.read_table(p, columns=["account_id"])["account_id"].to_pylist())
                for p in parts]
    assert not per_part[0] & per_part[1]


# --- point-in-time sanity ------------------------------------------------------------------


def test_keys_unique_accounts_known_amounts_nonnegative(data: dict[str, pd.DataFrame]) -> None:
    known = set(data["accounts"]["account_id"])
    assert len(known) == len(data["accounts"])
    for entity in WRITTEN:
        spec, df = ENTITIES[entity], data[entity]
        if spec.key:
            assert df[spec.key].is_unique, entity
        assert set(df["account_id"]) <= known, entity
        for col in spec.nonnegative:
            assert (df[col].dropna() >= 0).all(), f"{entity}.{col}"


def test_rows_lie_in_the_window_and_before_churn(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    for entity in WRITTEN:
        spec, df = ENTITIES[entity], data[entity]
        if spec.time is None or entity in ("contacts", "account_history"):  # from start_date
            continue
        at = df[spec.time]
        assert at.min() >= WINDOW_START and at.max() < END_EXCL, entity
        ref = df["account_id"].map(accounts["ref"])
        assert (at <= ref).all(), entity
        if spec.end:
            closed = df[spec.end].dropna()
            assert (closed < END_EXCL).all() and (closed <= ref[closed.index]).all(), entity


def test_window_follows_end_date_and_months(tmp_path: Path) -> None:
    paths = generate(tmp_path, accounts=150, months=12, seed=3, end_date=date(2025, 6, 15))
    lo, hi = pd.Timestamp("2024-06-16"), pd.Timestamp("2025-06-16")
    for entity in WRITTEN:
        time = ENTITIES[entity].time
        if time is None or entity in ("contacts", "account_history"):
            continue
        at = _read(paths, entity)[time]
        assert at.min() >= lo and at.max() < hi, entity
    starts = pd.to_datetime(_read(paths, "accounts")["start_date"])
    assert starts.max() <= pd.Timestamp("2025-04-16")
    assert starts.min() >= pd.Timestamp("2021-06-14")
    history = pd.to_datetime(_read(paths, "account_history")["valid_from"])
    assert history.min() >= starts.min() and history.max() < hi


def test_intervals_are_ordered(data: dict[str, pd.DataFrame]) -> None:
    t, inv, c = data["tickets"], data["invoices"], data["contacts"]
    assert (t["closed_at"].dropna() >= t.loc[t["closed_at"].notna(), "opened_at"]).all()
    assert (t["sla_due_at"] > t["opened_at"]).all()
    assert (inv["paid_at"].dropna() >= inv.loc[inv["paid_at"].notna(), "issued_at"]).all()
    assert ((inv["due_at"] - inv["issued_at"]) == pd.Timedelta(days=30)).all()
    assert (c["departed_at"].dropna() >= c.loc[c["departed_at"].notna(), "created_at"]).all()
    assert set(t.loc[t["closed_at"].isna(), "status"]) <= {"open"}


def test_users_exist_when_they_use_the_product(data: dict[str, pd.DataFrame]) -> None:
    contacts = data["contacts"].set_index("contact_id")
    usage = data["usage_events"]
    assert usage["user_id"].isin(contacts.index).all()
    created = usage["user_id"].map(contacts["created_at"])
    departed = usage["user_id"].map(contacts["departed_at"]).fillna(END_EXCL)
    assert (usage["timestamp"] >= created).all() and (usage["timestamp"] < departed).all()


def test_churn_date_matches_outcomes_and_stage(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    out = data["outcomes"]
    churn = out[out["kind"] == "churn"].set_index("account_id")["occurred_at"]
    assert churn.index.is_unique
    churned = accounts[accounts["churned"]]
    assert set(churn.index) == set(churned.index)
    assert (churn.dt.normalize() == churned.loc[churn.index, "ref"]).all()
    assert (accounts["lifecycle_stage"] == "churned").eq(accounts["churned"]).all()
    assert set(accounts["lifecycle_stage"]) <= {"onboarding", "adoption", "renewal", "churned"}


def test_renewals_fall_on_contract_anniversaries(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    ren = data["outcomes"]
    ren = ren[ren["kind"] == "renewal"]
    start = ren["account_id"].map(accounts["start"])
    months = (ren["occurred_at"].dt.year - start.dt.year) * 12 + (
        ren["occurred_at"].dt.month - start.dt.month)
    assert (months % 12 == 0).all() and (months > 0).all()
    day = np.minimum(start.dt.day, ren["occurred_at"].dt.days_in_month)
    assert (ren["occurred_at"].dt.day == day).all()


# --- account history ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(data: dict[str, pd.DataFrame]) -> pd.DataFrame:
    h = data["account_history"].copy()
    h["valid_from"] = pd.to_datetime(h["valid_from"])
    return h


def test_account_history_has_the_entity_schema(small: dict[str, Path]) -> None:
    assert small["account_history"] == small["accounts"].parent / "account_history.parquet"
    assert pq.read_schema(small["account_history"]).remove_metadata() == schema_for(
        "account_history")


def test_history_starts_at_start_date_with_every_attribute(
    history: pd.DataFrame, accounts: pd.DataFrame
) -> None:
    by_account = history.groupby("account_id")
    assert set(by_account.groups) == set(accounts.index)
    assert by_account["valid_from"].apply(lambda d: d.is_monotonic_increasing and d.is_unique).all()
    first = by_account.head(1).set_index("account_id")
    assert (first["valid_from"] == accounts.loc[first.index, "start"]).all()
    attributes = [name for name, _ in HISTORY_ATTRIBUTES]
    assert first[attributes].notna().all().all()
    assert (first["lifecycle_stage"] == "onboarding").all()


def test_history_ends_at_accounts(history: pd.DataFrame, accounts: pd.DataFrame) -> None:
    """The latest value of each attribute is today's, for every account."""
    for name, type_ in HISTORY_ATTRIBUTES:
        latest = history.dropna(subset=[name]).groupby("account_id")[name].last()
        today = accounts[name]
        if type_ == "date":
            latest, today = pd.to_datetime(latest), pd.to_datetime(today)
        assert latest.index.equals(today.index.sort_values()), name
        assert (latest == today.loc[latest.index]).all(), name


def test_history_rows_lie_between_start_and_end_or_churn(
    history: pd.DataFrame, accounts: pd.DataFrame
) -> None:
    at = history["valid_from"]
    assert (at >= history["account_id"].map(accounts["start"])).all()
    assert (at < END_EXCL).all()
    assert (at <= history["account_id"].map(accounts["ref"])).all()
    gone = history[history["lifecycle_stage"] == "churned"].set_index("account_id")
    assert gone.index.is_unique and set(gone.index) == set(accounts.index[accounts["churned"]])
    assert (gone["valid_from"] == accounts.loc[gone.index, "ref"]).all()
    last = history.groupby("account_id")["valid_from"].max()
    assert (last.loc[gone.index] == gone["valid_from"]).all()  # nothing after the churn


def test_history_rows_hold_only_changes(history: pd.DataFrame) -> None:
    later = history[history["account_id"].duplicated()]
    attributes = [name for name, _ in HISTORY_ATTRIBUTES]
    assert later[attributes].notna().any(axis=1).all()
    assert later[["name", "segment", "industry", "region", "modules_purchased"]].isna().all().all()
    for name in attributes:
        filled = history.dropna(subset=[name])
        previous = filled.groupby("account_id")[name].shift()
        assert not (filled[name] == previous).any(), name


def test_history_changes_are_plausible(
    history: pd.DataFrame, data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    n = len(accounts)
    changed = history[history["account_id"].duplicated()]
    switched = changed.dropna(subset=["csm"])["account_id"]
    assert switched.is_unique and 0.08 * n <= len(switched) <= 0.2 * n
    plans = changed.dropna(subset=["plan"])["account_id"]
    assert plans.is_unique and 0.01 * n <= len(plans) <= 0.08 * n
    stages = history.dropna(subset=["lifecycle_stage"]).groupby("account_id")["lifecycle_stage"]
    steps = set(zip(stages.shift().dropna(), history.loc[stages.shift().dropna().index,
                                                          "lifecycle_stage"], strict=True))
    assert steps <= {("onboarding", "adoption"), ("adoption", "renewal"), ("renewal", "adoption"),
                     ("onboarding", "churned"), ("adoption", "churned"), ("renewal", "churned")}
    # seats move on the days of the expansion and contraction outcomes
    seats = history.dropna(subset=["licensed_seats"]).copy()
    seats["delta"] = seats.groupby("account_id")["licensed_seats"].diff()
    moves = seats.dropna(subset=["delta"]).set_index(["account_id", "valid_from"])["delta"]
    out = data["outcomes"]
    for kind, sign in (("expansion", 1), ("contraction", -1)):
        days = out[out["kind"] == kind]
        keys = pd.MultiIndex.from_arrays([days["account_id"], days["occurred_at"]])
        assert keys.isin(moves.index).all(), kind
        assert (np.sign(moves.loc[keys]) == sign).mean() > 0.95, kind


def test_history_has_its_own_random_stream(
    small: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other history draws leave every other file byte-identical."""
    module = importlib.import_module("healthscore.demo.generate")  # the package exports the function
    monkeypatch.setattr(module, "HISTORY_STREAM", 2)
    other = generate(tmp_path, accounts=200, seed=7, end_date=END, chunk_size=80)
    before, after = _all_files(small["accounts"].parent), _all_files(tmp_path)
    assert before.keys() == after.keys()
    assert [k for k in before if before[k] != after[k]] == ["account_history.parquet"]
    assert other["account_history"].exists()


# --- planted truths ----------------------------------------------------------------------------


def test_churn_share_is_realistic(accounts: pd.DataFrame) -> None:
    assert 0.05 <= accounts["churned"].mean() <= 0.35


def test_no_usage_after_churn(data: dict[str, pd.DataFrame], accounts: pd.DataFrame) -> None:
    usage = data["usage_events"]
    churn = usage["account_id"].map(accounts["churn_date"]).astype("datetime64[us]")
    assert not (usage["timestamp"] >= churn).any()


def _window_counts(events: pd.DataFrame, at: str, ref: pd.Series, lo: int, hi: int) -> pd.Series:
    """Events per account in the days [ref - hi, ref - lo)."""
    r = events["account_id"].map(ref)
    inside = (events[at] < r - pd.Timedelta(days=lo)) & (events[at] >= r - pd.Timedelta(days=hi))
    return events[inside].groupby("account_id").size().reindex(ref.index, fill_value=0)


def test_falling_usage_precedes_churn(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    acc = accounts[accounts["ref"] - accounts["start"] >= pd.Timedelta(days=200)]
    usage = data["usage_events"]
    last = _window_counts(usage, "timestamp", acc["ref"], 0, 90)
    before = _window_counts(usage, "timestamp", acc["ref"], 90, 180)
    falling = last < 0.7 * before
    assert falling.sum() >= 30
    assert acc.loc[falling, "churned"].mean() > acc.loc[~falling, "churned"].mean()


def test_detractors_churn_more_than_promoters(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    nps = data["surveys"]
    nps = nps[nps["kind"] == "nps"].sort_values("responded_at")
    last = nps.groupby("account_id")["score"].last()
    churned = accounts.loc[last.index, "churned"]
    assert churned[last <= 6].mean() > churned[last >= 9].mean()


def _quartile_churn(accounts: pd.DataFrame, per_account: pd.Series) -> pd.Series:
    rate = per_account.reindex(accounts.index, fill_value=0) / accounts["months"]
    quartile = pd.qcut(rate.rank(method="first"), 4, labels=False)
    return accounts["churned"].groupby(quartile).mean()


def test_ordinary_ticket_volume_is_not_a_churn_signal(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    """Folklore: many tickets = unhappy. Here busy (non-P1) ticket filers are engaged ones."""
    t = data["tickets"]
    ordinary = t[t["priority"] != "P1"].groupby("account_id").size()
    by_quartile = _quartile_churn(accounts, ordinary)
    assert by_quartile[3] <= by_quartile[0]


def test_cs_outreach_follows_risk(data: dict[str, pd.DataFrame], accounts: pd.DataFrame) -> None:
    """CSMs reach out to slipping accounts, so CS-initiated contact is not naively positive."""
    a = data["activities"]
    cs = a[a["initiated_by"] == "cs"].groupby("account_id").size()
    by_segment = [
        _quartile_churn(accounts[accounts["segment"] == s], cs) for s in ("SMB", "Mid-Market")
    ]
    assert all(q[3] >= q[0] for q in by_segment)


def test_expansions_go_to_healthy_accounts(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    out = data["outcomes"]
    expanded = accounts.index.isin(out.loc[out["kind"] == "expansion", "account_id"])
    assert expanded.sum() > 0
    assert (out.loc[out["kind"] == "expansion", "arr_change"] > 0).all()
    assert accounts.loc[expanded, "churned"].mean() < accounts.loc[~expanded, "churned"].mean()


def test_segments_scale_arr_and_usage(
    data: dict[str, pd.DataFrame], accounts: pd.DataFrame
) -> None:
    usage = data["usage_events"].groupby("account_id").size().reindex(accounts.index, fill_value=0)
    by_seg = accounts.assign(usage=usage / accounts["months"]).groupby("segment")
    arr, use = by_seg["arr"].median(), by_seg["usage"].median()
    assert arr["SMB"] < arr["Mid-Market"] < arr["Enterprise"]
    assert use["SMB"] < use["Mid-Market"] < use["Enterprise"]
