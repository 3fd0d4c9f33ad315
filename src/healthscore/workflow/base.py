"""What every part of the workflow shares: the store, who is acting, the accounts, the audit
log and the timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from healthscore.config.model import ProjectConfig
from healthscore.errors import ConflictError, ForbiddenError, NotFoundError
from healthscore.store.report import final_scores, with_marks
from healthscore.store.snapshots import SnapshotStore
from healthscore.tables import Audit, ModuleMark, Override, TimelineEntry, User
from healthscore.workflow.config import WorkflowConfig, load_workflow
from healthscore.workflow.db import Store, store_url

SYSTEM = "healthscore"  # the actor of what rules and the scheduler do


Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now()


def row_dict(obj: Any) -> dict[str, Any]:
    """A model's columns as JSON-ready values (for the audit log and the API)."""
    out = {}
    for col in obj.__table__.columns:
        v = getattr(obj, col.key)
        out[col.key] = v.isoformat() if isinstance(v, date | datetime) else v
    return out


def no_nan(row: dict[str, Any]) -> dict[str, Any]:
    """A frame row as plain values: a missing one (NaN, NaT, NA) is None, as the store and
    JSON want it (PostgreSQL's JSON refuses NaN; a NaN CSM would be a truthy owner)."""
    return {k: None if not isinstance(v, (list, dict)) and pd.isna(v) else v for k, v in row.items()}


class Context:
    """What every workflow service shares: the project's config and snapshots, the store, the
    one clock, who is acting (and whether they may), the accounts' scores, the audit log and
    the timeline. Services get it in their constructor; none of them reaches another through it."""

    def __init__(self, config: ProjectConfig, snapshots: SnapshotStore, url: str | None = None,
                 today: date | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.snapshots = snapshots
        self.spec = config.workflow
        self.store = Store(store_url(config.root, config.state_dir, url or config.workflow.url))
        self.wf: WorkflowConfig = load_workflow(config.root, config.rule_names(), config.workflow)
        self.clock = clock or (_on_day(today) if today is not None else system_clock)

    @property
    def today(self) -> date:
        return self.clock().date()

    def now(self) -> datetime:
        """The one clock of the workflow: every timestamp, window and expiry reads it."""
        return self.clock().replace(microsecond=0)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ who is acting

    def _user(self, s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFoundError(f"no user named {name!r}. Add one with 'healthscore users add'.")
        return user

    def _actor(self, s: Session, name: str, admin: bool = False, account_id: str | None = None,
               owner: str | None = None) -> str:
        """The acting user's name, once they may do this: viewers change nothing, only admins
        manage users, and a change to an account (or its CTA, plan, task...) needs the right
        to act on it (see :func:`may_act_on`; the owner of a CTA or task may always act on it).
        The CLI, Python and the API all come through here, so they refuse the same things."""
        if name == SYSTEM:
            return name
        user = self._user(s, name)
        if user.role == "viewer" or (admin and user.role != "admin"):
            need = "an admin" if admin else "a csm, lead or admin"
            raise ForbiddenError(f"{name} is a {user.role}: this needs {need}.")
        if account_id is not None and (owner is None or owner != name):
            self._check_scope(s, _person(user), account_id)
        return name

    def _check_scope(self, s: Session, user: dict[str, Any], account_id: str) -> None:
        if user["role"] == "admin":
            return
        csm = self.account_csm(account_id)
        teams = {u.name: u.team for u in s.scalars(select(User))}
        if user["role"] == "viewer":
            raise ForbiddenError(f"{user['name']} is a viewer: this needs a csm, lead or admin.")
        if not may_act_on(user, csm, teams):
            what = {"csm": f"a csm acts only on their own accounts; {account_id} is {csm}'s",
                    "lead": f"a lead acts only on their team's accounts; {account_id} is {csm}'s"}
            raise ForbiddenError(f"{user['name']}: {what[user['role']]}.")

    # ------------------------------------------------------------------ accounts

    def scores(self, as_of: date | None = None) -> pd.DataFrame:
        """The primary scores of the latest (or given) snapshot, one row per account, with the
        final score and band (see :meth:`with_overrides`)."""
        if not self.snapshots.dates():
            raise NotFoundError("no scores yet: run 'healthscore run' first.")
        day = as_of or self.snapshots.latest()
        return self.with_overrides(self.snapshots.read(day, primary_only=True).to_pandas(), day)

    def with_overrides(self, frame: pd.DataFrame, day: date) -> pd.DataFrame:
        """``frame`` (scores as of ``day``) with the final score and band in score/band and the
        system's in system_score/system_band. On the latest snapshot the overrides active now
        count; on an earlier one, those that were active on that day."""
        active, marks = self.final_inputs(day)
        return final_scores(with_marks(frame, marks, self.config), active, self.config)

    def final_inputs(self, day: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What :meth:`with_overrides` applies to the scores as of ``day``: the overrides active
        then and the module marks (rows as dicts, by id): the same inputs give the same frame."""
        with self.store.session() as s:
            q = select(Override)
            if day >= self.snapshots.latest():
                q = q.where(Override.ended_at.is_(None), Override.expires_on > self.today)
            else:
                end = datetime.combine(day, time.max)
                q = q.where(Override.set_at <= end, Override.expires_on > day,
                            (Override.ended_at.is_(None)) | (Override.ended_at > end))
            active = [row_dict(o) for o in s.scalars(q)]
        # marks set since the latest snapshot was scored count at once (the next run scores them)
        marks = self.active_marks() if day >= self.snapshots.latest() else []
        return sorted(active, key=lambda o: o["id"]), marks

    def active_marks(self, account_id: str | None = None) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(ModuleMark).where(ModuleMark.ended_at.is_(None),
                                         ModuleMark.expires_on > self.today)
            if account_id is not None:
                q = q.where(ModuleMark.account_id == account_id)
            return [row_dict(m) for m in s.scalars(q.order_by(ModuleMark.id))]

    def account(self, account_id: str) -> dict[str, Any]:
        rows = with_marks(self.account_rows(account_id).to_pandas(), self.active_marks(account_id),
                          self.config)
        return no_nan(dict(rows.iloc[0]))

    def account_rows(self, account_id: str) -> pa.Table:
        """The account's primary row of the latest snapshot, as stored (no marks applied):
        NotFoundError for an account the latest scores do not have."""
        if not self.snapshots.dates():
            raise NotFoundError("no scores yet: run 'healthscore run' first.")
        rows = self.snapshots.account_rows(self.snapshots.latest(), account_id, primary_only=True)
        if rows.num_rows == 0:
            raise NotFoundError(f"no account {account_id!r} in the latest scores "
                                f"({self.snapshots.latest()}). Check the id.")
        return rows

    def account_csm(self, account_id: str) -> Any:
        """The account's CSM (None when it has none), without the rest of :meth:`account`:
        who may act on an account is asked on every change to it."""
        rows = self.account_rows(account_id)
        csm = rows["csm"][0].as_py() if "csm" in rows.column_names else None
        return None if csm != csm else csm  # NaN: none, as account() has it

    # ------------------------------------------------------------------ audit and timeline

    def _audit(self, s: Session, actor: str, entity: str, entity_id: Any, action: str,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        s.add(Audit(at=self.now(), actor=actor, entity=entity, entity_id=str(entity_id), action=action,
                    before=before, after=after))

    def _timeline(self, s: Session, account_id: str, kind: str, actor: str, text: str,
                  at: datetime | None = None, **data: Any) -> None:
        s.add(TimelineEntry(account_id=account_id, at=at or self.now(), kind=kind, actor=actor,
                            text=text, data=data))

    def audit(self, entity: str | None = None, entity_id: str | None = None) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(Audit).order_by(Audit.id)
            if entity:
                q = q.where(Audit.entity == entity)
            if entity_id is not None:
                q = q.where(Audit.entity_id == str(entity_id))
            return [row_dict(a) for a in s.scalars(q)]

    def audit_of(self, entity: str, entity_ids: list[str]) -> list[dict[str, Any]]:
        """The audit rows of these ids of one entity, oldest first: one statement."""
        with self.store.session() as s:
            q = select(Audit).where(Audit.entity == entity, Audit.entity_id.in_(entity_ids))
            return [row_dict(a) for a in s.scalars(q.order_by(Audit.id))]

    @staticmethod
    def _check_version(obj: Any, version: int | None, what: str) -> None:
        if version is not None and obj.version != version:
            raise ConflictError(
                f"{what} was changed by someone else (version {obj.version}, you had "
                f"{version}). Reload it and try again."
            )

    def _commit_guard(self, what: str) -> Any:
        return _Guard(what)


def _on_day(day: date) -> Clock:
    """A clock fixed on ``day`` whose time of day still runs (so entries keep their order)."""
    return lambda: datetime.combine(day, datetime.now().time())


class _Guard:
    """Turns SQLAlchemy's stale-version error into a ConflictError."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        # a stale version, or the database's one-open-override rule: someone else was first
        if kind is not None and issubclass(kind, StaleDataError | IntegrityError):
            raise ConflictError(f"{self.what} was changed by someone else at the same time. "
                                f"Reload it and try again.") from None


def may_act_on(user: dict[str, Any], csm: str | None, team_of: dict[str, str | None]) -> bool:
    """csm: accounts they own; lead: their own and their team's; admin: all; viewer: none."""
    role = user["role"]
    if role == "admin":
        return True
    if role == "csm":
        return csm == user["name"]
    if role == "lead":
        return csm == user["name"] or (user["team"] is not None and team_of.get(csm or "") == user["team"])
    return False


def book_of(user: dict[str, Any], team_of: dict[str, str | None]) -> set[str] | None:
    """The CSMs whose accounts ``user`` oversees: a CSM their own, a lead their own and their
    team's; admins (the VP) and viewers every account (None)."""
    if user["role"] == "csm":
        return {user["name"]}
    if user["role"] == "lead":
        team = user.get("team")
        return {user["name"]} | ({c for c, t in team_of.items() if t == team} if team else set())
    return None


def _person(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "team": user.team}


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k != "password_hash"}



class Service:
    """A workflow service: business logic over a :class:`Context`, with the services it needs
    passed to its constructor. These forwards are the whole shared interface."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def config(self) -> ProjectConfig:
        return self.ctx.config

    @property
    def snapshots(self) -> SnapshotStore:
        return self.ctx.snapshots

    @property
    def spec(self) -> Any:
        return self.ctx.spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self.ctx.spec = value

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def wf(self) -> WorkflowConfig:
        return self.ctx.wf

    @property
    def today(self) -> date:
        return self.ctx.today

    def now(self) -> datetime:
        return self.ctx.now()

    def _user(self, s: Session, name: str) -> User:
        return self.ctx._user(s, name)

    def _actor(self, s: Session, name: str, admin: bool = False, account_id: str | None = None,
               owner: str | None = None) -> str:
        return self.ctx._actor(s, name, admin, account_id, owner)

    def _check_scope(self, s: Session, user: dict[str, Any], account_id: str) -> None:
        self.ctx._check_scope(s, user, account_id)

    def scores(self, as_of: date | None = None) -> pd.DataFrame:
        return self.ctx.scores(as_of)

    def with_overrides(self, frame: pd.DataFrame, day: date) -> pd.DataFrame:
        return self.ctx.with_overrides(frame, day)

    def final_inputs(self, day: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.ctx.final_inputs(day)

    def account(self, account_id: str) -> dict[str, Any]:
        return self.ctx.account(account_id)

    def account_rows(self, account_id: str) -> pa.Table:
        return self.ctx.account_rows(account_id)

    def _audit(self, s: Session, actor: str, entity: str, entity_id: Any, action: str,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.ctx._audit(s, actor, entity, entity_id, action, before, after)

    def _timeline(self, s: Session, account_id: str, kind: str, actor: str, text: str,
                  at: datetime | None = None, **data: Any) -> None:
        self.ctx._timeline(s, account_id, kind, actor, text, at, **data)

    def _check_version(self, obj: Any, version: int | None, what: str) -> None:
        self.ctx._check_version(obj, version, what)

    def _commit_guard(self, what: str) -> Any:
        return self.ctx._commit_guard(what)
