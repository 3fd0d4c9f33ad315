"""Read stored snapshots into the views users ask for: portfolio, explanation, export, trend."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from healthscore.config.model import DEFAULT_BANDS, INSUFFICIENT, ProjectConfig
from healthscore.errors import HealthScoreError, NotFoundError
from healthscore.store.snapshots import SnapshotStore

TREND_DAYS = (7, 30, 90)
EXPORT_DECIMALS = 4  # export files and --json: enough for a score, none of the float noise
SUMMARY_COLUMNS = ["account_id", "name", "segment", "industry", "csm", "lifecycle_stage", "arr",
                   "renewal_date", "scorecard", "version", "score", "band", "grade", "coverage"]


def _frame(store: SnapshotStore, day: date) -> pd.DataFrame:
    return final_scores(store.read(day, primary_only=True).to_pandas(), [], None)


FINAL_COLUMNS = ["system_score", "system_band", "override"]


def final_scores(frame: pd.DataFrame, overrides: list[dict[str, Any]],
                 config: ProjectConfig | None) -> pd.DataFrame:
    """``score`` and ``band`` become the *final* values (an active override, else the system's),
    with the system's beside them in ``system_score``/``system_band`` and the override's reason
    code in ``override``. Every surface and the rules read this one frame."""
    frame = frame.copy()
    if "system_score" in frame:
        return frame
    frame["system_score"] = frame["score"]
    frame["system_band"] = frame["band"]
    frame["override"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    where = {a: i for i, a in zip(frame.index, frame["account_id"], strict=True)}
    for o in sorted(overrides, key=lambda o: o["id"]):
        i = where.get(o["account_id"])
        if i is None:
            continue
        if o.get("score") is not None:
            frame.at[i, "score"] = float(o["score"])
            frame.at[i, "band"] = band_for(config, frame.at[i, "scorecard"], float(o["score"]))
        else:
            frame.at[i, "band"] = o["band"]
        frame.at[i, "override"] = o["reason_code"]
    return frame


def with_marks(frame: pd.DataFrame, marks: list[dict[str, Any]],
               config: ProjectConfig) -> pd.DataFrame:
    """``frame`` with the CSMs' active module marks in the modules' colours (``c__MODULE``),
    and the band recomputed where the scorecard's band follows its modules: what the next run
    will score, shown from the moment the mark is set."""
    if not marks or "scorecard" not in frame:
        return frame
    frame = frame.copy()
    cards = {sc.name: sc for sc in config.all_scorecards}
    where = {a: i for i, a in zip(frame.index, frame["account_id"], strict=True)}
    for m in marks:
        i = where.get(m["account_id"])
        col = f"c__{m['module']}"
        sc = cards.get(frame.at[i, "scorecard"]) if i is not None else None
        if sc is None or col not in frame:
            continue
        red, yellow, green = sc.colour_names()
        frame.at[i, col] = {"red": red, "yellow": yellow, "green": green}[m["colour"]]
        if sc.overall != "weighted":
            colours = [frame.at[i, f"c__{g.path}"] if f"c__{g.path}" in frame else None
                       for g in sc.modules]
            frame.at[i, "band"] = sc.band_from_modules(colours)
    return frame


def band_for(config: ProjectConfig | None, scorecard: str | None, score: float) -> str:
    """The band a score falls in on ``scorecard``'s bands (a value on a cut takes the band
    that starts there)."""
    cards = {sc.name: sc for sc in config.all_scorecards} if config is not None else {}
    card = cards.get(scorecard or "")
    bands = sorted(card.bands if card else DEFAULT_BANDS, key=lambda b: b.min)
    return next((b.name for b in reversed(bands) if score >= b.min), bands[0].name)


def previous_scores(store: SnapshotStore, day: date, days_back: int) -> pd.Series | None:
    """Primary scores from the latest snapshot on or before ``day - days_back``."""
    prev = store.on_or_before(day - timedelta(days=days_back))
    if prev is None or (day - prev).days > 2 * days_back:
        return None
    t = store.read(prev, columns=["account_id", "score", "is_primary"], primary_only=True)
    return t.to_pandas().set_index("account_id")["score"]


def with_trends(store: SnapshotStore, day: date, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    now = frame["system_score"] if "system_score" in frame else frame["score"]  # the system's moves
    for n in TREND_DAYS:
        prev = previous_scores(store, day, n)
        col = f"change_{n}d"
        frame[col] = now - frame["account_id"].map(prev) if prev is not None else None
    return frame


def _by(frame: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    if key not in frame or frame[key].isna().all():
        return []
    g = frame.groupby([key, "band"], dropna=False).agg(accounts=("account_id", "size"),
                                                      arr=("arr", "sum"))
    rows = []
    for (k, band), r in g.iterrows():
        rows.append({key: k, "band": band, "accounts": int(r.accounts), "arr": float(r.arr or 0)})
    return rows


def band_order(frame: pd.DataFrame) -> list[str]:
    """Bands from worst to best (by their average score); 'insufficient data' last."""
    means = frame.groupby("band")["score"].mean().sort_values()
    return sorted(means.index, key=lambda b: (b == INSUFFICIENT, means[b]))


def portfolio(store: SnapshotStore, day: date, final: pd.DataFrame | None = None) -> dict[str, Any]:
    """Band counts, ARR and movers; ``final`` is the day's frame from :func:`final_scores`."""
    frame = with_trends(store, day, final if final is not None else _frame(store, day))
    order = band_order(frame)
    bands = frame.groupby("band").agg(accounts=("account_id", "size"), arr=("arr", "sum"))
    bands = bands.reindex(order)
    movers = frame.dropna(subset=["change_30d"]).sort_values("change_30d")
    cols = ["account_id", "name", "segment", "csm", "score", "band", "system_band", "change_30d"]
    return {
        "as_of": day.isoformat(),
        "accounts": int(len(frame)),
        "overridden": int(frame["override"].notna().sum()),
        "arr": float(frame["arr"].fillna(0).sum()),
        "average_score": round1(frame["score"].mean()),
        "band_order": order,
        "bands": [{"band": b, "accounts": int(r.accounts), "arr": float(r.arr or 0)}
                  for b, r in bands.iterrows()],
        "by_segment": _by(frame, "segment"),
        "by_csm": _by(frame, "csm"),
        "by_lifecycle_stage": _by(frame, "lifecycle_stage"),
        "movers_down": _records(movers.head(10)[cols]),
        "movers_up": _records(movers.tail(10)[cols].iloc[::-1]),
    }


def round1(x: Any) -> float | None:
    return None if pd.isna(x) else round(float(x), 1)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict("records"):
        out.append({k: (None if _isna(v) else (round(v, 1) if isinstance(v, float) else v))
                    for k, v in rec.items()})
    return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# ----------------------------------------------------------------------------- explain


def explain(store: SnapshotStore, config: ProjectConfig, account_id: str, day: date
            ) -> dict[str, Any]:
    mine = store.account_rows(day, account_id).to_pandas()
    if mine.empty:
        raise NotFoundError(
            f"account {account_id!r} has no score on {day.isoformat()} (unknown, not yet a "
            f"customer, or gone by then). 'healthscore show' lists the scored accounts."
        )
    prev_day = store.on_or_before(day - timedelta(days=1))
    prev = _previous_row(store, prev_day, account_id)
    cards = [_explain_row(store, r, prev.get(r["scorecard"])) for _, r in mine.iterrows()]
    cards.sort(key=lambda c: not c["is_primary"])
    head = mine.iloc[0]
    trends = _trend(store, day, account_id, float(cards[0]["score"] or 0))
    return {
        "account_id": account_id, "name": _text(head.get("name")),
        "segment": _text(head.get("segment")), "csm": _text(head.get("csm")),
        "as_of": day.isoformat(),
        "previous_as_of": prev_day.isoformat() if prev_day else None,
        "trend": trends, "scorecards": cards,
    }


def red_modules(config: ProjectConfig, frame: pd.DataFrame) -> pd.Series:
    """How many of each row's modules (top-level groups) are red: in its scorecard's lowest
    band."""
    out = pd.Series(0, index=frame.index, dtype="int64")
    for sc in config.all_scorecards:
        rows = frame["scorecard"] == sc.name
        red = sc.bands[0].name
        for g in sc.modules:
            col = f"c__{g.path}"
            if col in frame:
                out[rows] += (frame.loc[rows, col] == red).astype("int64")
    return out


def _text(v: Any) -> Any:
    """An attribute as shown: None when missing (never NaN printed as 'nan')."""
    return None if _isna(v) else v


def _previous_row(store: SnapshotStore, prev_day: date | None, account_id: str) -> dict:
    if prev_day is None:
        return {}
    frame = store.account_rows(prev_day, account_id).to_pandas()
    return {r["scorecard"]: r for _, r in frame.iterrows()}


def _trend(store: SnapshotStore, day: date, account_id: str, score: float) -> dict:
    out = {}
    for n in TREND_DAYS:
        prev = store.on_or_before(day - timedelta(days=n))
        value = None
        if prev is not None and (day - prev).days <= 2 * n:
            t = store.read(prev, columns=["account_id", "score", "is_primary"], primary_only=True)
            rows = t.filter(pc.equal(t["account_id"], account_id))
            value = rows["score"][0].as_py() if rows.num_rows else None
        out[f"change_{n}d"] = None if value is None or pd.isna(value) else round(score - value, 1)
    return out


def history(store: SnapshotStore, account_id: str) -> list[dict[str, Any]]:
    """The account's primary score and band on every stored as-of date (oldest first)."""
    out = []
    for day in store.dates():
        t = store.read(day, columns=["account_id", "score", "band", "coverage", "is_primary"],
                       primary_only=True)
        rows = t.filter(pc.equal(t["account_id"], account_id))
        if rows.num_rows:
            r = rows.to_pylist()[0]
            out.append({"as_of": day.isoformat(), "score": round1(r["score"]), "band": r["band"],
                        "coverage": round1(r["coverage"])})
    return out


def _explain_row(store: SnapshotStore, row: pd.Series, prev: pd.Series | None) -> dict:
    definition = store.definition(row["version"])
    measures: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    _walk(definition["groups"], row, 1.0, measures, groups)
    if prev is not None:
        _walk_changes(definition["groups"], prev, measures)
    changes = sorted(
        (m for m in measures if m.get("contribution_change")),
        key=lambda m: -abs(m["contribution_change"]),
    )
    return {
        "scorecard": row["scorecard"], "version": row["version"],
        "is_primary": bool(row["is_primary"]), "score": round1(row["score"]),
        "band": row["band"], "grade": None if _isna(row.get("grade")) else row.get("grade"),
        "coverage": round1(row["coverage"]),
        "previous_score": None if prev is None else round1(prev["score"]),
        "groups": groups, "measures": measures,
        "why": [_why(m) for m in changes[:5]],
        "changes": [_change(m) for m in changes[:5]],
    }


def _present(node: dict[str, Any], row: pd.Series, is_group: bool) -> bool:
    col = f"g__{node['path']}" if is_group else f"s__{node['measure']}"
    return col in row and not _isna(row[col])


def _walk(nodes: list[dict], row: pd.Series, share: float, measures: list, groups: list) -> None:
    """Effective weight = share of the final score, after skipped measures are re-spread."""
    total = sum(n["weight"] for n in nodes if _present(n, row, True)) or 1.0
    for g in nodes:
        eff = share * g["weight"] / total if _present(g, row, True) else 0.0
        _group_node(g, row, eff, measures, groups)


def _group_node(g: dict, row: pd.Series, share: float, measures: list, groups: list) -> None:
    colour = row.get(f"c__{g['path']}")
    groups.append({"group": g["path"], "label": g["label"], "weight": g["weight"],
                   "score": round1(row.get(f"g__{g['path']}")),
                   "colour": None if _isna(colour) else colour,
                   "colour_from": g.get("colour", "score"),
                   "effective_weight": round(share * 100, 2)})
    children = [(e, _present(e, row, False)) for e in g["entries"]]
    children += [(s, _present(s, row, True)) for s in g["groups"]]
    total = sum(c["weight"] for c, ok in children if ok) or 1.0
    for e in g["entries"]:
        score = row.get(f"s__{e['measure']}")
        eff = share * e["weight"] / total if not _isna(score) else 0.0
        value = row.get(f"m__{e['measure']}")
        measures.append({
            "measure": e["measure"], "group": g["path"], "weight": e["weight"],
            "value": _value(value),
            "score": round1(score), "effective_weight": round(eff * 100, 2),
            "contribution": round(eff * float(score), 2) if not _isna(score) else 0.0,
            "has_data": not _isna(value),
        })
    for sub in g["groups"]:
        eff = share * sub["weight"] / total if _present(sub, row, True) else 0.0
        _group_node(sub, row, eff, measures, groups)


def _value(v: Any) -> float | str | None:
    if _isna(v):
        return None
    return v if isinstance(v, str) else float(v)


def _walk_changes(nodes: list[dict], prev: pd.Series, measures: list) -> None:
    before: list[dict[str, Any]] = []
    _walk(nodes, prev, 1.0, before, [])
    old = {m["measure"]: m for m in before}
    for m in measures:
        o = old.get(m["measure"])
        if o is None:
            continue
        m["previous_value"] = o["value"]
        m["previous_score"] = o["score"]
        m["contribution_change"] = round(m["contribution"] - o["contribution"], 2)


def _change(m: dict[str, Any]) -> dict[str, Any]:
    """The facts of one line of "why", for a reader's language (the web app words them)."""
    return {"measure": m["measure"], "before": m.get("previous_value"), "after": m["value"],
            "score_before": m.get("previous_score"), "score_after": m["score"],
            "points": m["contribution_change"]}


def _why(m: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "no data" if v is None else (v if isinstance(v, str) else f"{v:g}")

    direction = "raised" if m["contribution_change"] > 0 else "lowered"
    return (f"{m['measure']} went from {fmt(m.get('previous_value'))} to {fmt(m['value'])} "
            f"(score {fmt(m.get('previous_score'))} -> {fmt(m['score'])}), which "
            f"{direction} the health score by {abs(m['contribution_change']):g} points")


# ----------------------------------------------------------------------------- export


def export_frame(store: SnapshotStore, day: date, final: pd.DataFrame | None = None) -> pd.DataFrame:
    """The CRM feed's rows: one per account with the final score and band, the system's beside,
    the scorecard version and the 7/30/90-day changes."""
    frame = with_trends(store, day, final if final is not None else _frame(store, day))
    keep = [c for c in [*SUMMARY_COLUMNS, *FINAL_COLUMNS, "as_of", "change_7d", "change_30d",
                        "change_90d"] if c in frame]
    return rounded(frame[keep])  # 4 decimals in every export, files and tables alike


def export(store: SnapshotStore, day: date, path: Path, fmt: str,
           final: pd.DataFrame | None = None) -> Path:
    """The CRM feed: one row per account with the final score and band, the system's beside."""
    if fmt not in ("csv", "parquet"):
        raise HealthScoreError(f"--format: must be csv or parquet. Got {fmt!r}.")
    frame = export_frame(store, day, final)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    tmp.replace(path)
    return path


def rounded(frame: pd.DataFrame, decimals: int = EXPORT_DECIMALS) -> pd.DataFrame:
    """``frame`` with its decimal columns rounded for a file people import (the snapshots
    keep full precision: 69.56305463862448 is exported as 69.5631)."""
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    return frame.assign(**{c: frame[c].round(decimals) for c in floats}) if floats else frame


# ----------------------------------------------------------------------------- dry run

MOVES = 20


def compare_scores(old: pd.DataFrame, new: pd.DataFrame, definition: Any, limit: int = MOVES
                   ) -> dict[str, Any]:
    """What replacing ``old`` primary scores with ``new`` ones changes: versions, a band
    matrix (from -> to -> accounts), and the biggest score moves with the measures behind
    them. ``definition(version)`` gives a scorecard version's definition."""
    both = old.merge(new, on="account_id", how="outer", suffixes=("_old", "_new"),
                     indicator=True)
    versions = sorted({(a, b, c) for a, b, c in zip(both["scorecard_new"].fillna(both["scorecard_old"]),
                                                     both["version_old"], both["version_new"],
                                                     strict=True)
                       if a == a and b != c}, key=str)
    matrix: dict[str, dict[str, int]] = {}
    for f, t in zip(both["band_old"].fillna("not scored"), both["band_new"].fillna("not scored"),
                    strict=True):
        matrix.setdefault(str(f), {}).setdefault(str(t), 0)
        matrix[str(f)][str(t)] += 1
    moved = both[both["_merge"] == "both"].assign(
        change=lambda d: d["score_new"].astype(float) - d["score_old"].astype(float))
    moved = moved.reindex(moved["change"].abs().sort_values(ascending=False).index)
    moves = []
    for _, r in moved.head(limit).iterrows():
        if r["change"] != r["change"] or not round1(r["change"]):
            break  # no move left that shows (float noise of another summing order is none)
        moves.append({
            "account_id": r["account_id"], "name": r.get("name_new"),
            "from_score": round1(r["score_old"]), "to_score": round1(r["score_new"]),
            "change": round1(r["change"]), "from_band": r["band_old"], "to_band": r["band_new"],
            "from_scorecard": r["scorecard_old"], "to_scorecard": r["scorecard_new"],
            "reasons": _move_reasons(r, definition),
        })
    changed = int(sum(n for f, row in matrix.items() for t, n in row.items() if f != t))
    return {"versions": [{"scorecard": s, "from": a, "to": b} for s, a, b in versions],
            "accounts": int(len(both)), "band_changes": changed, "matrix": matrix,
            "moves": moves}


def _move_reasons(r: pd.Series, definition: Any, top: int = 3) -> list[str]:
    def side(suffix: str) -> dict[str, dict[str, Any]]:
        row = pd.Series({k[: -len(suffix)]: v for k, v in r.items() if str(k).endswith(suffix)})
        row = pd.concat([row, r[[k for k in r.index if str(k).startswith(("m__", "s__", "g__"))
                                 and not str(k).endswith(("_old", "_new"))]]])
        out: list[dict[str, Any]] = []
        if isinstance(row.get("version"), str):
            _walk(definition(row["version"])["groups"], row, 1.0, out, [])
        return {m["measure"]: m for m in out}

    before, after = side("_old"), side("_new")
    rows = []
    for name in dict.fromkeys([*after, *before]):
        a, b = before.get(name), after.get(name)
        delta = (b["contribution"] if b else 0.0) - (a["contribution"] if a else 0.0)
        if abs(delta) >= 0.05:
            rows.append((abs(delta), _reason(name, a, b, delta)))
    return [text for _, text in sorted(rows, key=lambda x: -x[0])[:top]]


def _reason(name: str, a: dict[str, Any] | None, b: dict[str, Any] | None, delta: float) -> str:
    def fmt(v: Any) -> str:
        return "no data" if v is None else (v if isinstance(v, str) else f"{v:g}")

    if a is None:
        why = "new in the scorecard"
    elif b is None:
        why = "no longer in the scorecard"
    elif a["value"] != b["value"]:
        why = f"value {fmt(a['value'])} -> {fmt(b['value'])}"
    elif a["effective_weight"] != b["effective_weight"]:
        why = f"weight {a['effective_weight']:g}% -> {b['effective_weight']:g}%"
    else:
        why = f"scored {fmt(a['score'])} -> {fmt(b['score'])}"
    return f"{name}: {why} ({delta:+.1f} points)"


# ----------------------------------------------------------------------------- trends


TREND_COLUMNS = ["account_id", "name", "score", "band", "arr", "csm", "segment", "lifecycle_stage"]
MOVERS = 10


def month_ends(dates: list[date], end: date, months: int) -> list[date]:
    """The last stored as-of date of each of the ``months`` calendar months up to ``end``'s
    (months without a snapshot are left out), oldest first."""
    first = (end.year * 12 + end.month - 1) - (months - 1)
    last_of: dict[int, date] = {}
    for d in dates:
        key = d.year * 12 + d.month - 1
        if first <= key and d <= end:
            last_of[key] = max(last_of.get(key, d), d)
    return [last_of[k] for k in sorted(last_of)]


Keep = Callable[[pd.DataFrame], pd.Series]


TREND_CACHE = 64  # snapshot files whose trend columns are kept in memory (a few MB each)
# (snapshots folder, as-of date) -> (the date folder's mtime, its primary rows' trend columns);
# a run that replaces a date's folder changes its mtime, so the frame is read again
_trend_frames: OrderedDict[tuple[str, date], tuple[int | None, pd.DataFrame]] = OrderedDict()
# the band order of a set of snapshot files, by their (date, mtime): what every account had
_trend_orders: dict[tuple[Any, ...], list[str]] = {}
_trend_results: dict[tuple[Any, ...], dict[str, Any]] = {}  # every account's trends, likewise


def _stamp(store: SnapshotStore, day: date) -> int | None:
    try:
        return store.path(day).stat().st_mtime_ns
    except FileNotFoundError:
        return None


def trend_frame(store: SnapshotStore, day: date, keep: Keep | None) -> pd.DataFrame:
    """The primary rows' :data:`TREND_COLUMNS` of the snapshot of ``day`` (those ``keep``
    picks). The columns of each snapshot file are read once and kept while the file is the
    same; callers get a frame they may not change in place."""
    key, stamp = (str(store.snapshots), day), _stamp(store, day)
    hit = _trend_frames.get(key)
    if hit is not None and hit[0] == stamp:
        _trend_frames.move_to_end(key)
        frame = hit[1]
    else:
        table = store.read(day, columns=[*TREND_COLUMNS, "is_primary"], primary_only=True)
        frame = table.select([c for c in TREND_COLUMNS if c in table.column_names]).to_pandas()
        for c in TREND_COLUMNS:
            if c not in frame:
                frame[c] = None
        _trend_frames[key] = (stamp, frame)
        while len(_trend_frames) > TREND_CACHE:
            _trend_frames.popitem(last=False)
    return frame[keep(frame)] if keep is not None and len(frame) else frame


def _trend_order(store: SnapshotStore, every: dict[date, pd.DataFrame]) -> list[str]:
    """:func:`band_order` of every account on all of ``every``'s dates, kept per set of files."""
    key = (str(store.snapshots), *((d, _stamp(store, d)) for d in every))
    if key not in _trend_orders:
        both = pd.concat([f[["band", "score"]] for f in every.values() if len(f)]
                         or [pd.DataFrame(columns=["band", "score"])])
        _trend_orders.clear()
        _trend_orders[key] = band_order(both) if len(both) else []
    return list(_trend_orders[key])


def trends(store: SnapshotStore, end: date, months: int = 12, keep: Keep | None = None) -> dict[str, Any]:
    """The stored primary scores at each month-end of the last ``months`` months up to ``end``:
    accounts per band, the average score and the ARR at risk (the ARR of the accounts in the
    worst band); and the movers, the biggest score drops and rises between the snapshot of
    ``end`` and the one before it. ``keep`` picks the accounts (scope and filters) in each
    snapshot by that snapshot's own attributes."""
    dates = store.dates()
    days = month_ends(dates, end, months)
    key = (str(store.snapshots), end, months,
           *((d, _stamp(store, d)) for d in [*days, *[d for d in dates if d < end][-1:]]))
    if keep is None and key in _trend_results:  # every account's: the same files, the same answer
        return {**_trend_results[key]}
    every = {d: trend_frame(store, d, None) for d in days}
    order = _trend_order(store, every)  # of every account: a filter keeps every band
    frames = {d: f[keep(f)] if keep is not None and len(f) else f for d, f in every.items()}
    worst = next((b for b in order if b != INSUFFICIENT), None)
    points = [_trend_point(d, f, order, worst) for d, f in frames.items()]
    out = {"end": end.isoformat(), "months": months, "band_order": order, "worst_band": worst,
           "points": points, **_movers(store, end, frames.get(end), keep)}
    if keep is None:
        _trend_results.clear()
        _trend_results[key] = out
    return {**out}


def _trend_point(day: date, frame: pd.DataFrame, order: list[str], worst: str | None) -> dict[str, Any]:
    counts = frame["band"].value_counts()
    at_risk = frame.loc[frame["band"] == worst, "arr"].fillna(0).sum() if worst else 0.0
    return {"as_of": day.isoformat(), "accounts": int(len(frame)),
            "bands": {b: int(counts.get(b, 0)) for b in order},
            "average_score": round1(frame["score"].mean()) if len(frame) else None,
            "arr": float(frame["arr"].fillna(0).sum()), "arr_at_risk": float(at_risk)}


def _movers(store: SnapshotStore, end: date, now: pd.DataFrame | None, keep: Keep | None) -> dict[str, Any]:
    earlier = [d for d in store.dates() if d < end]
    if now is None or not earlier:
        return {"previous": None, "drops": [], "rises": []}
    before = trend_frame(store, earlier[-1], None)[["account_id", "score", "band"]]
    both = now.merge(before.rename(columns={"score": "previous_score", "band": "previous_band"}),
                     on="account_id", how="inner").dropna(subset=["score", "previous_score"])
    both["change"] = both["score"] - both["previous_score"]
    cols = ["account_id", "name", "csm", "previous_score", "score", "previous_band", "band", "change"]
    return {"previous": earlier[-1].isoformat(),
            "drops": _records(_ends(both[both["change"] < 0], low=True)[cols]),
            "rises": _records(_ends(both[both["change"] > 0], low=False)[cols])}


def _ends(frame: pd.DataFrame, low: bool) -> pd.DataFrame:
    """The :data:`MOVERS` rows of ``frame`` first in (change, account_id) order (``low``) or
    last (the other way round): only the rows as far out as the MOVERS-th change are sorted."""
    change = frame["change"]
    if low:
        cut = change.nsmallest(MOVERS).max()
        ranked = frame[change <= cut].sort_values(["change", "account_id"])
        return ranked.head(MOVERS)
    cut = change.nlargest(MOVERS).min()
    return frame[change >= cut].sort_values(["change", "account_id"]).iloc[::-1].head(MOVERS)
