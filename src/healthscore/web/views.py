"""What every page shows, as JSON-ready dicts: the REST API returns them and the HTML pages
render them, so a page and its JSON twin always agree."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthscore.config.secrets import redact_url
from healthscore.errors import HealthScoreError, InvalidActionError, NotFoundError
from healthscore.project import Project, data_warnings
from healthscore.store import report
from healthscore.store.report import final_scores, with_marks
from healthscore.workflow.access import may_act_on
from healthscore.workflow.notify import CHANNELS, EVENTS
from healthscore.workflow.service import Workflow

STALE_SNAPSHOT_DAYS = 35
SORTABLE = ("account_id", "name", "segment", "csm", "arr", "score", "band", "coverage",
            "renewal_date", "change_30d", "change_90d", "open_ctas", "lifecycle_stage", "red_modules")
LIST_COLUMNS = ["account_id", "name", "segment", "csm", "lifecycle_stage", "arr", "renewal_date",
                "score", "band", "system_score", "system_band", "override", "coverage",
                "change_30d", "change_90d", "red_modules"]


@dataclass
class Site:
    """The project and workflow store behind one running app."""

    project: Project
    wf: Workflow

    @property
    def store(self) -> Any:
        return self.project.store


# ----------------------------------------------------------------------------- shared frames


_frames: dict[tuple[Any, ...], pd.DataFrame] = {}
_finals: dict[tuple[Any, ...], pd.DataFrame] = {}
_choices: dict[tuple[Any, ...], dict[str, list[str]]] = {}


def scores_frame(site: Site) -> pd.DataFrame:
    """The latest primary scores with 7/30/90-day changes and the final score and band (an
    active override, else the system's; the system's beside them).

    The frame is kept while the snapshot and what the workflow store adds to it (the active
    overrides and module marks, read on every call) are the same; each caller gets its own
    shallow copy, which copy-on-write keeps apart from the kept one."""
    return final_frame(site)[0].copy(deep=False)


def final_frame(site: Site) -> tuple[pd.DataFrame, tuple[Any, ...]]:
    """The kept frame of :func:`scores_frame` (not to be changed) and its key: the same key,
    the same frame."""
    day = site.store.latest()
    system, key = _system_frame(site)
    active, marks = site.wf.final_inputs(day)
    key = (*key, id(site.project.config), repr(active), repr(marks))
    frame = _finals.get(key)
    if frame is None:
        frame = final_scores(with_marks(system, marks, site.project.config), active,
                             site.project.config)
        frame["red_modules"] = report.red_modules(site.project.config, frame)  # marks included
        _finals.clear()
        _finals[key] = frame
    return frame, key


def _system_frame(site: Site) -> tuple[pd.DataFrame, tuple[Any, ...]]:
    """The snapshot part of :func:`scores_frame` and its key, kept until the snapshots change."""
    store = site.store
    day = store.latest()
    key = (str(store.root), day, store.snapshots.stat().st_mtime_ns, store.path(day).stat().st_mtime_ns)
    frame = _frames.get(key)
    if frame is None:
        frame = report.with_trends(store, day, store.read(day, primary_only=True).to_pandas())
        frame["renewal_date"] = pd.to_datetime(frame["renewal_date"], errors="coerce").dt.date \
            if "renewal_date" in frame else None
        _frames.clear()
        _frames[key] = frame
    return frame, key


def choices(site: Site) -> dict[str, list[str]]:
    """The values the list's filters offer (bands, segments, CSMs, stages) on the latest
    snapshot, kept beside its frame: not in the frame's ``attrs``, which pandas deep-copies
    into every frame derived from it (each filter, sort and page of every request)."""
    frame, key = _system_frame(site)
    kept = _choices.get(key)
    if kept is None:
        kept = {c: sorted(str(v) for v in frame[c].dropna().unique())
                for c in ("band", "segment", "csm", "lifecycle_stage") if c in frame}
        _choices.clear()
        _choices[key] = kept
    return {c: list(values) for c, values in kept.items()}  # the caller's own


_books: dict[int, Any] = {}


def label_book(site: Site) -> dict[str, dict[str, tuple[str | None, tuple[tuple[str, str], ...]]]]:
    """The YAML labels of the project's groups (by path) and scored measures (by name), each
    as its one text and its text per language (kept per loaded config)."""
    config = site.project.config
    book = _books.get(id(config))
    if book is None:
        groups: dict[str, Any] = {}
        measures: dict[str, Any] = {}
        for sc in config.all_scorecards:
            for g in sc.all_groups():  # a path's labels per language from any scorecard
                if g.labels or g.path not in groups:
                    groups[g.path] = (g.label, g.labels)
            for e in sc.all_entries():
                m = config.measures[e.measure]
                measures.setdefault(e.measure, (m.label, m.labels))
        book = {"group": groups, "measure": measures}
        _books.clear()
        _books[id(config)] = book
    return book


def _open_ctas(site: Site) -> pd.Series:
    counts = site.wf.open_cta_counts()
    return pd.Series(counts, dtype="int64")


def json_value(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else round(float(v), 1)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if v is None or v is pd.NaT or isinstance(v, np.datetime64) and np.isnat(v):
        return None  # a date column with no date at all comes as datetime64 NaT
    if isinstance(v, date):
        return v.isoformat()
    return v


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in r.items()} for r in frame.to_dict("records")]


# ----------------------------------------------------------------------------- portfolio


_portfolios: dict[tuple[Any, ...], dict[str, Any]] = {}
_quadrant_views: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}


def portfolio(site: Site) -> dict[str, Any]:
    """The portfolio page: what the final scores give is kept while they are the same (the key
    of :func:`final_frame`); how stale they are is asked each time."""
    frame, key = final_frame(site)
    day = site.store.latest()
    kept = _portfolios.get(key)
    if kept is None:
        frame = frame.copy(deep=False)
        kept = report.portfolio(site.store, day, frame)
        kept["distribution"] = _distribution(frame)
        kept["trending_down"] = records(
            frame[(frame["change_30d"] < 0) & (frame["change_90d"] < 0)]
            .sort_values("change_90d").head(10)[["account_id", "name", "csm", "score", "band",
                                                  "change_30d", "change_90d"]])
        kept["renewals_90d"] = _renewals(frame, day, kept["band_order"])
        _portfolios.clear()
        _portfolios[key] = kept
    out = copy.deepcopy(kept)  # the caller's own
    out["quadrants"] = _quadrants(site, key)
    out["stale"] = staleness(site, day)
    return out


def _distribution(frame: pd.DataFrame) -> list[dict[str, Any]]:
    bins = np.clip((frame["score"].dropna() // 10).astype(int), 0, 9)
    counts = bins.value_counts().reindex(range(10), fill_value=0)
    return [{"from": i * 10, "to": i * 10 + 10, "accounts": int(counts[i])} for i in range(10)]


def _renewals(frame: pd.DataFrame, day: date, order: list[str]) -> list[dict[str, Any]]:
    if "renewal_date" not in frame:
        return []
    soon = frame[_renews_within(frame, day, 90)]
    g = soon.groupby("band").agg(accounts=("account_id", "size"), arr=("arr", "sum"))
    return [{"band": b, "accounts": int(g.loc[b, "accounts"]), "arr": float(g.loc[b, "arr"] or 0)}
            for b in order if b in g.index]


def _renews_within(frame: pd.DataFrame, day: date, days: int) -> pd.Series:
    """Accounts whose renewal date is ``day`` .. ``day + days`` (none without renewal dates)."""
    renews = pd.to_datetime(frame["renewal_date"], errors="coerce")
    return (renews >= pd.Timestamp(day)) & (renews <= pd.Timestamp(day + timedelta(days=days)))


def _quadrants(site: Site, key: tuple[Any, ...]) -> dict[str, Any]:
    """The strategy quadrants of the final scores of ``key``, kept while they and the workflow
    settings are the same."""
    spec = site.wf.spec
    kept = _quadrant_views.get(key)
    if kept is None or kept[0] is not spec:
        try:
            out = site.wf.quadrants()
        except InvalidActionError as err:
            out = {"error": err.message}
        for kind in ("temperature", "maturity"):
            for cell in out.get(kind, []):
                cell["examples"] = cell.pop("accounts")[:10]
        kept = (spec, out)
        _quadrant_views.clear()
        _quadrant_views[key] = kept
    return copy.deepcopy(kept[1])


def staleness(site: Site, day: date) -> list[str]:
    """Why the scores may be out of date: an old snapshot, or sources past their freshness."""
    out = []
    age = (site.wf.today - day).days
    if age > STALE_SNAPSHOT_DAYS:
        out.append(f"The latest scores are as of {day.isoformat()}, {age} days ago. "
                   f"Run 'healthscore run' to score today's data.")
    last = site.project.last_run()
    if last:
        out += [w for w in _health_warnings(last, day) if "newest row" in w]
    return out


def _health_warnings(last: dict[str, Any], day: date) -> list[str]:
    from healthscore.sources.clean import DataHealth

    health = {}
    for k, v in last.get("health", {}).items():
        newest = date.fromisoformat(v["newest"]) if v.get("newest") else None
        health[k] = DataHealth(**{**v, "newest": newest})
    return data_warnings(health, day)


# ----------------------------------------------------------------------------- accounts


@dataclass
class AccountFilter:
    band: str | None = None
    segment: str | None = None
    csm: str | None = None
    lifecycle_stage: str | None = None
    renewal_days: int | None = None
    min_coverage: float | None = None
    open_ctas: str | None = None  # yes | no
    q: str | None = None
    sort: str = "score"
    desc: bool = False
    page: int = 1
    per_page: int = 50
    red_module: str | None = None  # yes: any module red; no: none
    scope: str | None = None  # mine | team | all; None: the user's default (default_scope)
    cols: tuple[str, ...] | None = None  # the list's columns besides the name; None: DEFAULT_COLUMNS


SCOPES = ("mine", "team", "all")
# the accounts list's columns besides the account's name (always first), in their order
COLUMNS = ("account_id", "segment", "csm", "lifecycle_stage", "arr", "renewal_date", "score", "band",
           "coverage", "change_30d", "change_90d", "red_modules", "open_ctas")
DEFAULT_COLUMNS = ("segment", "csm", "lifecycle_stage", "arr", "renewal_date", "score", "band",
                   "coverage", "change_30d", "open_ctas")


def list_columns(cols: tuple[str, ...] | None) -> list[str]:
    """The accounts list's columns for ``cols`` (the URL's ``cols``, comma-separated or
    repeated; ``name`` is always shown), in the list's order; an unknown name is refused."""
    if not cols:
        return list(DEFAULT_COLUMNS)
    bad = [c for c in cols if c not in COLUMNS and c != "name"]
    if bad:
        raise InvalidActionError(f"cols: unknown column {bad[0]!r}. Columns: name, {', '.join(COLUMNS)}.")
    return [c for c in COLUMNS if c in cols]


def default_scope(user: dict[str, Any]) -> str:
    """Whose accounts and CTAs a page shows first: a CSM their book, a lead their team's,
    admins and viewers everyone's."""
    return {"csm": "mine", "lead": "team"}.get(user["role"], "all")


def in_book(frame: pd.DataFrame, user: dict[str, Any], teams: dict[str, str | None], scope: str) -> pd.Series:
    """mine: accounts I am the CSM of; team: those of my team's CSMs (mine if I have no team); all."""
    if scope == "all":
        return pd.Series(True, index=frame.index)
    mine = frame["csm"] == user["name"]
    if scope == "mine" or user.get("team") is None:
        return mine
    team = {name for name, t in teams.items() if t == user["team"]}
    return mine | frame["csm"].isin(team)


def accounts(site: Site, f: AccountFilter, user: dict[str, Any], paged: bool = True) -> dict[str, Any]:
    """The accounts in ``f.scope`` of ``user`` (their default scope when None) that pass the
    filters, sorted and paged; ``scopes`` counts the accounts in each scope."""
    scope = f.scope or default_scope(user)
    if scope not in SCOPES:
        raise InvalidActionError(f"scope: must be one of {', '.join(SCOPES)}. Got {scope!r}.")
    if f.sort not in SORTABLE:
        raise InvalidActionError(f"sort: must be one of {', '.join(SORTABLE)}. Got {f.sort!r}.")
    if f.page < 1 or not 1 <= f.per_page <= 1000:
        raise InvalidActionError("page must be 1 or more and per_page between 1 and 1000.")
    columns = list_columns(f.cols)
    frame = scores_frame(site)
    day = site.store.latest()
    teams = site.wf.teams()
    books = {s: in_book(frame, user, teams, s) for s in SCOPES}
    keep = _mask(frame, f, day) & books[scope]
    ctas = _open_ctas(site)
    view = frame.loc[keep, [c for c in LIST_COLUMNS if c in frame]]
    view = view.assign(open_ctas=view["account_id"].map(ctas).fillna(0).astype("int64"))
    if f.open_ctas in ("yes", "no"):
        view = view[(view["open_ctas"] > 0) == (f.open_ctas == "yes")]
    view = view.sort_values([f.sort, "account_id"], ascending=[not f.desc, True], na_position="last")
    total = len(view)
    if paged:
        view = view.iloc[(f.page - 1) * f.per_page: f.page * f.per_page]
    return {
        "as_of": day.isoformat(), "total": total, "page": f.page, "per_page": f.per_page,
        "pages": max(1, -(-total // f.per_page)), "sort": f.sort, "desc": f.desc,
        "scope": scope, "scopes": {s: int(b.sum()) for s, b in books.items()},
        "filters": {k: v for k, v in vars(f).items() if k not in _NOT_FILTERS},
        "choices": choices(site), "columns": columns, "accounts": records(view),
    }


_NOT_FILTERS = ("sort", "desc", "page", "per_page", "scope", "cols")


def _mask(frame: pd.DataFrame, f: AccountFilter, day: date) -> pd.Series:
    keep = pd.Series(True, index=frame.index)
    for col in ("band", "segment", "csm", "lifecycle_stage"):
        value = getattr(f, col)
        if value:
            keep &= frame[col] == value
    if f.renewal_days is not None:
        keep &= _renews_within(frame, day, f.renewal_days)
    if f.min_coverage is not None:
        keep &= frame["coverage"] >= f.min_coverage
    if f.red_module in ("yes", "no"):
        keep &= (frame["red_modules"] > 0) == (f.red_module == "yes")
    if f.q:
        text = f.q.strip().lower()
        keep &= (frame["account_id"].str.lower().str.contains(text, regex=False)
                 | frame["name"].fillna("").str.lower().str.contains(text, regex=False))
    return keep


def accounts_csv(site: Site, f: AccountFilter, user: dict[str, Any]) -> str:
    rows = accounts(site, f, user, paged=False)["accounts"]
    frame = pd.DataFrame(rows, columns=[*LIST_COLUMNS, "open_ctas"])
    return str(frame.to_csv(index=False))


# ----------------------------------------------------------------------------- account 360


def account(site: Site, account_id: str, user: dict[str, Any]) -> dict[str, Any]:
    wf = site.wf
    out = report.explain(site.store, site.project.config, account_id, site.store.latest())
    out["history"] = report.history(site.store, account_id)
    row = wf.account(account_id)  # the stored row with the marks: one read for the final band and the modules
    out["final"] = wf.final(account_id, row)
    out["ctas"] = wf.ctas(status="open", account_id=account_id)
    out["timeline"] = wf.timeline(account_id, limit=50)
    out["success_plans"] = wf.success_plans(account_id)
    head = site.store.account_rows(site.store.latest(), account_id, primary_only=True).to_pylist()[0]
    out["details"] = {k: json_value(head.get(k)) for k in
                      ("arr", "lifecycle_stage", "renewal_date", "industry", "grade") if k in head}
    out["can_act"] = may_act_on(user, out.get("csm"), wf.teams())
    out["modules"] = module_strip(out["scorecards"][0], row)
    out["marks"] = wf.marks(account_id)
    marked = {m["module"]: m for m in out["marks"]}
    for m in out["modules"]:
        m["mark"] = marked.get(m["module"])
    for c in out["ctas"]:
        c["can_act"] = out["can_act"] or (c.get("owner") == user["name"] and user["role"] != "viewer")
    out["assignable"] = assignable(site)
    return out


def module_strip(card: dict[str, Any], row: dict[str, Any]) -> list[dict[str, Any]]:
    """The primary scorecard's modules (top-level groups) with their colour (a CSM's active
    mark included, as the list and the API have it) and score."""
    return [{"module": g["group"], "label": g["label"],
             "colour": row.get(f"c__{g['group']}") or g["colour"], "score": g["score"]}
            for g in card["groups"] if "." not in g["group"]]


def measure_rows(site: Site, account_id: str, measure: str) -> dict[str, Any]:
    """The source rows behind one measure of the account on the latest snapshot."""
    site.wf.account_rows(account_id)  # 404 for an unknown account
    return site.project.measure_rows(account_id, measure)


# ----------------------------------------------------------------------------- people


def assignable(site: Site) -> list[str]:
    """Who may own a CTA: every user who may act (not viewers), by name."""
    return [u["name"] for u in site.wf.users() if u["role"] != "viewer"]


def _names(site: Site) -> dict[str, str]:
    frame = scores_frame(site)
    return dict(zip(frame["account_id"], frame["name"].fillna(""), strict=False))


# ----------------------------------------------------------------------------- plans


def success_plans(site: Site) -> dict[str, Any]:
    plans = site.wf.success_plans()
    names = _names(site)
    for p in plans:
        p["account_name"] = names.get(p["account_id"])
    return {"plans": plans, "templates": sorted(site.wf.wf.templates)}


# ----------------------------------------------------------------------------- validation, data


def validation(site: Site) -> dict[str, Any]:
    """The latest recorded validation, with every number of its report."""
    record = site.project.config.state_dir / "validations.jsonl"
    lines = record.read_text(encoding="utf-8").strip().splitlines() if record.exists() else []
    if not lines:
        raise NotFoundError("no validation yet: run 'healthscore validate' to backtest the score.")
    latest = json.loads(lines[-1])
    report_path = Path(latest["report"]) if latest.get("report") else None
    out: dict[str, Any] = {"latest": latest, "history": [json.loads(x) for x in lines[-10:]][::-1],
                           "has_report": bool(report_path and report_path.exists())}
    data = report_path.with_name("validation.json") if report_path else None
    if data is not None and data.exists():
        out["result"] = json.loads(data.read_text(encoding="utf-8"))
    return out


def preview(site: Site) -> dict[str, Any]:
    """The dry run of the scorecards as they are on disk against the latest snapshot."""
    out = site.project.preview(workflow=site.wf)
    out["changed"] = site.project.scorecards_changed()
    return out


def validation_report(site: Site) -> Path:
    v = validation(site)
    if not v["has_report"]:
        raise NotFoundError("the latest validation's report.html is gone: run 'healthscore validate'.")
    return Path(v["latest"]["report"])


def data_health(site: Site) -> dict[str, Any]:
    last = site.project.last_run()
    if last is None:
        raise NotFoundError("no run yet: run 'healthscore run' to read the sources.")
    day = date.fromisoformat(last["dates"][-1])
    sources = []
    for name, h in last.get("health", {}).items():
        newest = date.fromisoformat(h["newest"]) if h.get("newest") else None
        age = (day - newest).days if newest else None
        stale = bool(h.get("stale_after_days") is not None and age is not None
                     and age > h["stale_after_days"])
        sources.append({**h, "location": redact_url(h.get("location") or ""), "name": name,
                        "age_days": age, "stale": stale,
                        "rows_kept": h["rows_read"] - h["rows_rejected"]})
    return {"run_at": last["at"], "as_of": day.isoformat(), "seconds": last.get("seconds"),
            "sources": sources, "warnings": _health_warnings(last, day)}


# ----------------------------------------------------------------------------- admin


def admin(site: Site) -> dict[str, Any]:
    return {"users": site.wf.users(), "tokens": site.wf.tokens(), "roles": ["viewer", "csm", "lead", "admin"]}


def me(site: Site, user: dict[str, Any]) -> dict[str, Any]:
    return {**user, "tokens": site.wf.tokens(user["name"]), "notify": notify_settings(site, user)}


def notify_settings(site: Site, user: dict[str, Any]) -> dict[str, Any]:
    """A user's notification settings (no chosen events: every event; no chosen channels:
    every channel they can get) and the choices there are."""
    u = site.wf.user(user["name"])
    chosen = u.get("notify_channels")
    events = u.get("notify_events") or list(EVENTS)
    return {"events": [e for e in EVENTS if e in events],
            "channels": list(CHANNELS) if chosen is None else [c for c in CHANNELS if c in chosen],
            "email": u.get("email"), "webhook_set": bool(u.get("webhook_url")),  # never shown back
            "digest": bool(u.get("digest")), "all_events": list(EVENTS), "all_channels": list(CHANNELS),
            "project_webhook": bool(site.wf.spec.notifications.webhook),
            "email_server": bool(site.wf.spec.notifications.smtp_host)}


__all__ = ["AccountFilter", "HealthScoreError", "Site"]
