"""Calls to action: opened by rules or by hand, worked through playbook tasks, snoozed,
escalated and closed with an outcome. Flags and escalations make the review meeting's list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import flag_modified

from healthscore.config.windows import parse_days
from healthscore.errors import HealthScoreError, InvalidActionError, NotFoundError
from healthscore.tables import CTA_TYPES, PRIORITIES, Cta, Escalation, Task, TimelineEntry
from healthscore.workflow.base import SYSTEM, Context, Service, row_dict
from healthscore.workflow.notify import NotifyService
from healthscore.workflow.owners import OwnerService

RANKS = {"critical": 0, "high": 1, "medium": 2, "low": 3}  # the queue's priority order
SQL_SORTS = ("priority", "due_on", "opened_at", "id")  # the queue orders the database can make
SQL_GROUPS = (None, "type", "due")
KEY_COLUMNS = (Cta.id, Cta.account_id, Cta.type, Cta.reason, Cta.priority, Cta.owner, Cta.status,
               Cta.flagged, Cta.due_on, Cta.opened_at, Cta.closed_at, Cta.snoozed_until,
               Cta.escalation_level)


@dataclass(frozen=True)
class QueueWhere:
    """Which CTAs a work queue lists, as the database filters them: ``status``; of ``type``,
    ``priority`` and ``owner`` when given; owned by one of ``owners`` (None: by anyone); due
    ``overdue``, within a ``week`` (overdue included) or with ``none``; in ``state`` active (not
    snoozed), snoozed, escalated or flagged; in a board ``column`` (open, snoozed, escalated:
    an escalated CTA is in that column even when snoozed); closed on or after ``closed_since``."""

    status: str = "open"
    type: str | None = None
    owners: frozenset[str] | None = None
    priority: str | None = None
    owner: str | None = None
    due: str | None = None
    state: str | None = None
    column: str | None = None
    closed_since: date | None = None


class CtaService(Service):
    """CTAs: open (by hand or from a rule, with a playbook's tasks), change (close, snooze,
    assign, escalate, mark critical, decide), tasks, the review meeting's list."""

    def __init__(self, ctx: Context, notify: NotifyService, owners: OwnerService) -> None:
        super().__init__(ctx)
        self.notify, self.owners = notify, owners

    # ------------------------------------------------------------------ reading

    def ctas(self, *, status: str | None = "open", account_id: str | None = None,
             owner: str | None = None, type: str | None = None,
             with_tasks: bool = True) -> list[dict[str, Any]]:
        """CTAs, oldest first; ``with_tasks=False`` leaves their tasks out (``tasks: []``),
        for lists that show the tasks of a few only (see :meth:`tasks_of`)."""
        with self.store.session() as s:
            q = select(Cta).order_by(Cta.id)
            if with_tasks:
                q = q.options(selectinload(Cta.tasks))
            for col, value in ((Cta.status, status), (Cta.account_id, account_id),
                               (Cta.owner, owner), (Cta.type, type)):
                if value is not None:
                    q = q.where(col == value)
            return [self._cta_view(c, with_tasks) for c in s.scalars(q)]

    def queue_owners(self, type: str | None = None, *, status: str = "open",
                     closed_since: date | None = None) -> dict[str | None, int]:
        """How many CTAs in ``status`` (of ``type``; closed since ``closed_since``) each owner
        has (``None``: no owner)."""
        where = QueueWhere(status=status, type=type, closed_since=closed_since)
        with self.store.session() as s:
            q = self._where(select(Cta.owner, func.count()), where).group_by(Cta.owner)
            return {o: int(n) for o, n in s.execute(q)}

    def queue_page(self, where: QueueWhere, *, sort: str = "priority", desc: bool = False,
                   group: str | None = None, offset: int = 0,
                   limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """The CTAs ``where`` picks: how many, and those from ``offset`` (at most ``limit``),
        ordered in the database like the work queue orders them: by ``sort`` (one of
        :data:`SQL_SORTS`; missing values last either way), then priority, due date and id;
        with ``group`` (one of :data:`SQL_GROUPS`) the rows of each group together first.
        Two statements whatever the number of CTAs; tasks are left out (``tasks: []``)."""
        with self.store.session() as s:
            total = int(s.scalar(self._where(select(func.count()).select_from(Cta), where)) or 0)
        return total, self.queue_rows(where, sort=sort, desc=desc, group=group, offset=offset,
                                      limit=limit)

    def queue_rows(self, where: QueueWhere, *, sort: str = "priority", desc: bool = False,
                   group: str | None = None, offset: int = 0,
                   limit: int | None = None) -> list[dict[str, Any]]:
        """The rows of :meth:`queue_page` without their count: one statement."""
        if sort not in SQL_SORTS or group not in SQL_GROUPS:
            raise ValueError(f"queue_rows: sort {sort!r} / group {group!r} is not ordered in SQL")
        with self.store.session() as s:
            q = self._where(select(Cta), where).order_by(*self._order(sort, desc, group))
            q = q.offset(offset).limit(limit)
            return [self._cta_view(c, False) for c in s.scalars(q)]

    def queue_columns(self, where: QueueWhere) -> dict[str, int]:
        """How many of the open CTAs ``where`` picks are in each board column (open, snoozed,
        escalated; an escalated CTA is in that column even when snoozed): one statement."""
        escalated, snoozed = self._states()
        column = case((escalated, "escalated"), (snoozed, "snoozed"), else_="open")
        with self.store.session() as s:
            q = self._where(select(column, func.count()), where).group_by(column)
            return {str(k): int(n) for k, n in s.execute(q)}

    def _states(self) -> tuple[Any, Any]:
        """Escalated, and snoozed today, as SQL conditions."""
        snoozed = Cta.snoozed_until.is_not(None) & (Cta.snoozed_until > self.today)
        return func.coalesce(Cta.escalation_level, 0) > 0, snoozed

    def queue_keys(self, where: QueueWhere) -> list[dict[str, Any]]:
        """The CTAs ``where`` picks, oldest first, each with only the columns the work queue
        filters, sorts and groups on (:data:`KEY_COLUMNS`), as JSON-ready values: for orders
        the database cannot make alone (by the account's health, ARR, renewal or name)."""
        with self.store.session() as s:
            q = self._where(select(*KEY_COLUMNS), where).order_by(Cta.id)
            names = [c.key for c in KEY_COLUMNS]
            return [{k: v.isoformat() if isinstance(v, date) else v for k, v in zip(names, row, strict=True)}
                    for row in s.execute(q)]

    def ctas_by_id(self, cta_ids: list[int]) -> list[dict[str, Any]]:
        """These CTAs (without their tasks), in the order asked."""
        with self.store.session() as s:
            got = {c.id: self._cta_view(c, False) for c in s.scalars(select(Cta).where(Cta.id.in_(cta_ids)))}
        return [got[i] for i in cta_ids if i in got]

    def _where(self, q: Any, w: QueueWhere) -> Any:
        week = self.today + timedelta(days=7)
        q = q.where(Cta.status == w.status)
        for col, value in ((Cta.type, w.type), (Cta.priority, w.priority), (Cta.owner, w.owner)):
            if value is not None:
                q = q.where(col == value)
        if w.owners is not None:
            q = q.where(Cta.owner.in_(sorted(w.owners)))
        if w.due is not None:
            q = q.where({"overdue": Cta.due_on < self.today, "week": Cta.due_on <= week,
                         "none": Cta.due_on.is_(None)}[w.due])
        escalated, snoozed = self._states()
        states = {"active": ~snoozed, "snoozed": snoozed, "escalated": escalated,
                  "flagged": Cta.flagged.is_(True)}
        if w.state is not None:
            q = q.where(states[w.state])
        if w.column is not None:  # the board's columns: escalated first, then snoozed
            q = q.where({"escalated": escalated, "snoozed": ~escalated & snoozed,
                         "open": ~escalated & ~snoozed}[w.column])
        if w.closed_since is not None:
            q = q.where(Cta.closed_at >= datetime.combine(w.closed_since, time.min))
        return q

    def _order(self, sort: str, desc: bool, group: str | None) -> list[Any]:
        """ORDER BY keys equal to the work queue's Python order (see web.queue._sorted)."""
        rank = case(RANKS, value=Cta.priority, else_=9)  # as web.queue ranks an unknown one
        rest = [rank, Cta.due_on.is_(None), Cta.due_on, Cta.id]
        if sort == "priority":
            keys = [k.desc() if desc else k for k in rest]
        else:
            col = getattr(Cta, sort)
            keys = [col.is_(None), col.desc() if desc else col, *rest]
        if group == "type":
            keys.insert(0, func.lower(Cta.type))
        elif group == "due":
            keys.insert(0, case((Cta.due_on.is_(None), 3), (Cta.due_on < self.today, 0),
                                (Cta.due_on <= self.today + timedelta(days=7), 1), else_=2))
        return keys

    def tasks_of(self, cta_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The tasks of each of these CTAs, in order."""
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in cta_ids}
        with self.store.session() as s:
            for t in s.scalars(select(Task).where(Task.cta_id.in_(cta_ids)).order_by(Task.id)):
                out[int(t.cta_id or 0)].append(row_dict(t))
        return out

    def cta_accounts(self, status: str = "open") -> dict[int, str]:
        """Each CTA's account, by CTA id."""
        with self.store.session() as s:
            rows = s.execute(select(Cta.id, Cta.account_id).where(Cta.status == status))
            return {int(i): a for i, a in rows}

    def open_cta_counts(self) -> dict[str, int]:
        """How many open CTAs each account has."""
        with self.store.session() as s:
            q = select(Cta.account_id, func.count()).where(Cta.status == "open").group_by(Cta.account_id)
            return {a: int(n) for a, n in s.execute(q)}

    def cta_status_counts(self) -> dict[str, int]:
        """CTAs by state today: open (and of those snoozed and overdue) and closed."""
        with self.store.session() as s:
            def count(*where: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(Cta).where(*where)) or 0)

            is_open = Cta.status == "open"
            return {"open": count(is_open),
                    "snoozed": count(is_open, Cta.snoozed_until > self.today),
                    "overdue": count(is_open, Cta.due_on < self.today),
                    "closed": count(Cta.status == "closed")}

    def cta(self, cta_id: int) -> dict[str, Any]:
        with self.store.session() as s:
            return self._cta_view(self._get_cta(s, cta_id))

    def _cta_view(self, c: Cta, with_tasks: bool = True) -> dict[str, Any]:
        out = row_dict(c)
        out["tasks"] = [row_dict(t) for t in c.tasks] if with_tasks else []
        out["overdue"] = c.status == "open" and c.due_on is not None and c.due_on < self.today
        return out

    def _get_cta(self, s: Session, cta_id: int) -> Cta:
        c = s.get(Cta, cta_id)
        if c is None:
            raise NotFoundError(f"no CTA #{cta_id}. List them with 'healthscore cta list'.")
        return c

    # ------------------------------------------------------------------ opening

    def open_cta(self, account_id: str, type: str, reason: str, *, actor: str,
                 priority: str = "medium", owner: str | None = None, due_in: str | None = None,
                 due_on: date | None = None, playbook: str | None = None, module: str | None = None,
                 flagged: bool = False, rule: str | None = None) -> dict[str, Any]:
        """Open a CTA; with no rule behind it, it is the CSM's own call."""
        account = self.account(account_id)
        if type not in CTA_TYPES:
            raise InvalidActionError(f"type: must be one of {', '.join(CTA_TYPES)}. Got {type!r}.")
        if priority not in PRIORITIES:
            raise InvalidActionError(f"priority: must be one of {', '.join(PRIORITIES)}. Got {priority!r}.")
        if not reason.strip():
            raise InvalidActionError("reason: say why this CTA is opened.")
        if playbook is not None and playbook not in self.wf.playbooks:
            raise InvalidActionError(f"playbook: no playbook named {playbook!r}. "
                                     f"Playbooks: {', '.join(sorted(self.wf.playbooks))}.")
        groups = self.config.group_paths()
        if module is not None and module not in groups:
            raise InvalidActionError(f"module: no group {module!r} in the project's scorecards "
                                     f"(a CTA's module is the group it colours). Groups: "
                                     f"{', '.join(groups)}.")
        due = due_on or self.today + timedelta(days=parse_days(due_in or "7d"))
        with self.store.session() as s:
            return self.open_in(s, account, type, reason, actor=actor, priority=priority, owner=owner,
                              due=due, playbook=playbook, module=module, flagged=flagged, rule=rule)

    def open_in(self, s: Session, account: dict[str, Any], type: str, reason: str, *, actor: str,
              priority: str, owner: str | None, due: date, playbook: str | None, module: str | None,
              flagged: bool, rule: str | None) -> dict[str, Any]:
        account_id = account["account_id"]
        actor = self._actor(s, actor, account_id=account_id)
        who = self.owners.resolve(s, owner or "csm", account)
        c = Cta(account_id=account_id, type=type, reason=reason, module=module,
                source="rule" if rule else "manual", rule=rule, priority=priority, owner=who,
                flagged=flagged, critical=priority == "critical", playbook=playbook, due_on=due,
                critical_at=self.now() if priority == "critical" else None,
                opened_at=self.now(), opened_by=actor, status="open", escalation_level=0)
        s.add(c)
        s.flush()
        if playbook:
            self._add_playbook_tasks(s, c, account)
        self._audit(s, actor, "cta", c.id, "open", None, row_dict(c))
        kind = "flag" if flagged else "cta_opened"
        self._timeline(s, account_id, kind, actor, f"{type} CTA #{c.id} opened: {reason}",
                       cta_id=c.id)
        self.notify.notify_later(s, who, "cta_opened", f"CTA #{c.id} for {account_id}: {reason}",
                                 account_id=account_id, cta_id=c.id)
        s.flush()
        return self._cta_view(c)

    def flag(self, account_id: str, reason: str, *, actor: str, priority: str = "high") -> dict[str, Any]:
        """A CSM's flag: a manual risk CTA that goes to the review meeting."""
        return self.open_cta(account_id, "risk", reason, actor=actor, priority=priority, flagged=True,
                             owner=actor)

    def _add_playbook_tasks(self, s: Session, c: Cta, account: dict[str, Any]) -> None:
        book = self.wf.playbooks[c.playbook or ""]
        for t in book.tasks:
            owner = c.owner if t.role == "csm" else self.owners.resolve(s, t.role, account)
            c.tasks.append(Task(title=t.title, instructions=t.instructions, role=t.role, side=t.side,
                                owner=owner, due_on=self.today + timedelta(days=t.offset_days),
                                status="open"))

    # ------------------------------------------------------------------ changing

    def _change(self, cta_id: int, actor: str, version: int | None, action: str,
                fn: Any, session: Session | None = None) -> dict[str, Any]:
        if session is not None:
            return self._change_in(session, cta_id, actor, version, action, fn)
        with self._commit_guard(f"CTA #{cta_id}"), self.store.session() as s:
            return self._change_in(s, cta_id, actor, version, action, fn)

    def _change_in(self, s: Session, cta_id: int, actor: str, version: int | None, action: str,
                   fn: Any) -> dict[str, Any]:
        c = self._get_cta(s, cta_id)
        actor = self._actor(s, actor, account_id=c.account_id, owner=c.owner)
        self._check_version(c, version, f"CTA #{cta_id}")
        before = row_dict(c)
        text = fn(s, c, actor)
        flag_modified(c, "status")  # always an UPDATE: the version moves (and is checked) even
        s.flush()                   # when nothing changed, e.g. assigning to the same owner
        self._audit(s, actor, "cta", c.id, action, before, row_dict(c))
        if text:
            self._timeline(s, c.account_id, f"cta_{action}", actor, text, cta_id=c.id)
        s.flush()
        return self._cta_view(c)

    def close_cta(self, cta_id: int, outcome: str, *, actor: str, version: int | None = None,
                  session: Session | None = None) -> dict[str, Any]:
        def fn(s: Session, c: Cta, actor: str) -> str:
            _must_be_open(c, "close")
            if not outcome.strip():
                raise InvalidActionError("outcome: say how the CTA ended (e.g. 'resolved: renewed').")
            c.status, c.outcome, c.closed_at, c.closed_by = "closed", outcome, self.now(), actor
            return f"CTA #{c.id} closed: {outcome}"
        return self._change(cta_id, actor, version, "closed", fn, session)

    def snooze(self, cta_id: int, until: date, reason: str, *, actor: str,
               version: int | None = None, session: Session | None = None) -> dict[str, Any]:
        def fn(s: Session, c: Cta, actor: str) -> str:
            _must_be_open(c, "snooze")
            if until <= self.today:
                raise InvalidActionError(f"until: {until} is not in the future. Snooze to a later date.")
            if not reason.strip():
                raise InvalidActionError("reason: say why the CTA is snoozed.")
            c.snoozed_until, c.snooze_reason = until, reason
            return f"CTA #{c.id} snoozed until {until}: {reason}"
        return self._change(cta_id, actor, version, "snoozed", fn, session)

    def assign(self, cta_id: int, owner: str, *, actor: str, version: int | None = None,
               session: Session | None = None) -> dict[str, Any]:
        def fn(s: Session, c: Cta, actor: str) -> str:
            _must_be_open(c, "assign")
            self._user(s, owner)
            c.owner = owner
            self.notify.notify_later(s, owner, "cta_assigned", f"CTA #{c.id} for {c.account_id}: {c.reason}",
                                     account_id=c.account_id, cta_id=c.id)
            return f"CTA #{c.id} assigned to {owner}"
        return self._change(cta_id, actor, version, "assigned", fn, session)

    def set_priority(self, cta_id: int, priority: str, *, actor: str, version: int | None = None,
                     session: Session | None = None) -> dict[str, Any]:
        if priority not in PRIORITIES:
            raise InvalidActionError(f"priority: must be one of {', '.join(PRIORITIES)}. Got {priority!r}.")

        def fn(s: Session, c: Cta, actor: str) -> str:
            _must_be_open(c, "reprioritise")
            if priority == "critical" and c.priority != "critical":
                c.critical_at = self.now()
            c.priority, c.critical = priority, priority == "critical"
            return f"CTA #{c.id} priority set to {priority}"
        return self._change(cta_id, actor, version, "priority", fn, session)

    def bulk(self, cta_ids: list[int], action: str, *, actor: str, **args: Any) -> dict[str, Any]:
        """One action on many CTAs, all or nothing: each CTA is checked as if it were changed
        alone (role, scope, state); if any is refused, nothing is written and the error lists
        every refusal, one per CTA."""
        calls = {"close": lambda i, s: self.close_cta(i, args["outcome"], actor=actor, session=s),
                 "snooze": lambda i, s: self.snooze(i, args["until"], args["reason"], actor=actor,
                                                    session=s),
                 "assign": lambda i, s: self.assign(i, args["owner"], actor=actor, session=s),
                 "priority": lambda i, s: self.set_priority(i, args["priority"], actor=actor,
                                                            session=s)}
        needs = {"close": ("outcome",), "snooze": ("until", "reason"), "assign": ("owner",),
                 "priority": ("priority",)}
        if action not in calls:
            raise InvalidActionError(f"action: must be one of {', '.join(calls)}. Got {action!r}.")
        missing = [k for k in needs[action] if args.get(k) in (None, "")]
        if missing:
            raise InvalidActionError(f"{missing[0]}: {action} needs {' and '.join(needs[action])}.")
        ids = list(dict.fromkeys(cta_ids))
        if not ids:
            raise InvalidActionError("ids: choose at least one CTA.")
        with self._commit_guard(f"{len(ids)} CTAs"), self.store.session() as s:
            done, refused = [], []
            for cta_id in ids:
                try:
                    done.append(calls[action](cta_id, s))
                except HealthScoreError as err:
                    refused.append((cta_id, err))
            if refused:
                raise _refusal(action, len(ids), refused)
            return {"action": action, "changed": len(done), "ctas": done}

    def mark_critical(self, cta_id: int, *, actor: str, version: int | None = None) -> dict[str, Any]:
        def fn(s: Session, c: Cta, actor: str) -> str:
            _must_be_open(c, "mark critical")
            c.critical, c.priority, c.critical_at = True, "critical", self.now()
            return f"CTA #{c.id} marked critical"
        return self._change(cta_id, actor, version, "critical", fn)

    def decide(self, cta_id: int, decision: str, *, actor: str, version: int | None = None) -> dict[str, Any]:
        """Record what the review meeting decided."""
        def fn(s: Session, c: Cta, actor: str) -> str:
            if not decision.strip():
                raise InvalidActionError("decision: write what was decided.")
            c.decision = decision
            return f"Review of CTA #{c.id}: {decision}"
        return self._change(cta_id, actor, version, "decided", fn)

    def escalate(self, cta_id: int, *, actor: str, to: str | None = None, note: str = "",
                 version: int | None = None, automatic: bool = False,
                 session: Session | None = None) -> dict[str, Any]:
        """One step up the chain (csm -> lead -> vp_cs -> ceo), or to another department."""
        chain = self.spec.escalation
        allowed = [*chain, *self.spec.departments]

        def fn(s: Session, c: Cta, actor: str) -> str:
            _must_be_open(c, "escalate")
            if to is not None and to not in allowed:
                raise InvalidActionError(f"to: must be one of {', '.join(allowed)}. Got {to!r}.")
            if to is None and c.escalation_level + 1 >= len(chain):
                raise InvalidActionError(f"CTA #{c.id} is already at the top of the chain ({chain[-1]}).")
            target = to or chain[c.escalation_level + 1]
            if target in chain:
                c.escalation_level = chain.index(target)
            holder = self.owners.resolve(s, target, {"csm": c.owner})
            s.add(Escalation(cta_id=c.id, level=c.escalation_level, to=target, holder=holder, by=actor,
                             at=self.now(), automatic=automatic, note=note))
            to_whom = f"{target} ({holder})" if holder and holder != target else target
            self.notify.notify_later(s, holder, "cta_escalated",
                               f"CTA #{c.id} for {c.account_id} escalated to {to_whom}: {c.reason}",
                               account_id=c.account_id, cta_id=c.id)
            how = "automatically (overdue)" if automatic else f"by {actor}"
            return f"CTA #{c.id} escalated to {to_whom} {how}" + (f": {note}" if note else "")
        return self._change(cta_id, actor, version, "escalated", fn, session)

    def escalations(self, cta_id: int) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(Escalation).where(Escalation.cta_id == cta_id).order_by(Escalation.id)
            return [row_dict(e) for e in s.scalars(q)]

    # ------------------------------------------------------------------ comments

    def comment(self, cta_id: int, text: str, *, actor: str) -> dict[str, Any]:
        """A comment on a CTA, open or closed, by whoever may act on it: kept on its account's
        timeline (kind ``cta_comment``) and audited; the CTA itself (and its version) is not
        changed, so a comment never makes a colleague's form out of date."""
        if not text.strip():
            raise InvalidActionError("text: write the comment.")
        with self._commit_guard(f"CTA #{cta_id}"), self.store.session() as s:
            c = self._get_cta(s, cta_id)
            actor = self._actor(s, actor, account_id=c.account_id, owner=c.owner)
            entry = TimelineEntry(account_id=c.account_id, at=self.now(), kind="cta_comment",
                                  actor=actor, text=text, data={"cta_id": c.id})
            s.add(entry)
            s.flush()
            self._audit(s, actor, "cta", c.id, "comment", None, {"text": text})
            self.notify.mentions(s, actor, text, account_id=c.account_id, cta_id=c.id)
            return row_dict(entry)

    def comments(self, cta_id: int) -> list[dict[str, Any]]:
        """A CTA's comments, oldest first."""
        with self.store.session() as s:
            c = self._get_cta(s, cta_id)
            q = (select(TimelineEntry).where(TimelineEntry.account_id == c.account_id,
                                             TimelineEntry.kind == "cta_comment")
                 .order_by(TimelineEntry.at, TimelineEntry.id))
            return [row_dict(e) for e in s.scalars(q) if (e.data or {}).get("cta_id") == cta_id]

    def overdue_to_escalate(self) -> list[int]:
        """Open CTAs overdue by ``escalate_after_days`` and not yet at the top of the chain."""
        days = self.spec.escalate_after_days
        if days is None:
            return []
        limit = self.today - timedelta(days=days)
        top = len(self.spec.escalation) - 1
        with self.store.session() as s:
            q = select(Cta.id).where(Cta.status == "open", Cta.due_on < limit,
                                     Cta.escalation_level < top)
            ids = list(s.scalars(q))
            done = {e.cta_id for e in s.scalars(select(Escalation).where(
                Escalation.automatic.is_(True), Escalation.at >= self.now() - timedelta(days=days)))}
        return [i for i in ids if i not in done]

    # ------------------------------------------------------------------ tasks

    def complete_task(self, task_id: int, *, actor: str, version: int | None = None,
                      skip: bool = False) -> dict[str, Any]:
        with self._commit_guard(f"task #{task_id}"), self.store.session() as s:
            t = s.get(Task, task_id)
            if t is None:
                raise NotFoundError(f"no task #{task_id}.")
            if t.cta is None:
                actor = self._actor(s, actor)
            else:
                mine = t.owner if t.owner == actor else t.cta.owner
                actor = self._actor(s, actor, account_id=t.cta.account_id, owner=mine)
            self._check_version(t, version, f"task #{task_id}")
            if t.status != "open":
                raise InvalidActionError(f"task #{task_id} is already {t.status}.")
            before = row_dict(t)
            t.status, t.done_at, t.done_by = ("skipped" if skip else "done"), self.now(), actor
            s.flush()
            self._audit(s, actor, "task", t.id, t.status, before, row_dict(t))
            account = t.cta.account_id if t.cta else None
            if account:
                self._timeline(s, account, "task_done", actor, f"Task '{t.title}' {t.status}",
                               task_id=t.id, cta_id=t.cta_id)
            out = row_dict(t)
            siblings = t.cta.tasks if t.cta else []
            out["all_done"] = bool(siblings) and all(x.status != "open" for x in siblings)
            if out["all_done"]:
                out["prompt"] = (f"every task of CTA #{t.cta_id} is done: close it with an outcome "
                                 f"('healthscore cta close {t.cta_id} --outcome ...').")
            return out

    def task_links(self, task_id: int) -> tuple[int | None, int | None]:
        """The CTA and the success plan a task belongs to."""
        with self.store.session() as s:
            t = s.get(Task, task_id)
            if t is None:
                raise NotFoundError(f"no task #{task_id}.")
            return t.cta_id, t.plan_id

    def tasks(self, owner: str | None = None, status: str = "open",
              due_by: date | None = None) -> list[dict[str, Any]]:
        """Tasks in ``status`` (of ``owner``; due on or before ``due_by``), soonest due first."""
        with self.store.session() as s:
            q = select(Task).where(Task.status == status).order_by(Task.due_on, Task.id)
            if owner:
                q = q.where(Task.owner == owner)
            if due_by is not None:
                q = q.where(Task.due_on.is_not(None), Task.due_on <= due_by)
            return [row_dict(t) for t in s.scalars(q)]

    def tasks_due(self, due_by: date, owners: frozenset[str] | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
        """Open tasks due on or before ``due_by`` (of one of ``owners``; None: anyone's),
        soonest due first, at most ``limit``; each with ``account_id``, its CTA's account
        while that CTA is open (else None)."""
        with self.store.session() as s:
            q = (select(Task, Cta.account_id)
                 .outerjoin(Cta, (Cta.id == Task.cta_id) & (Cta.status == "open"))
                 .where(Task.status == "open", Task.due_on.is_not(None), Task.due_on <= due_by)
                 .order_by(Task.due_on, Task.id).limit(limit))
            if owners is not None:
                q = q.where(Task.owner.in_(sorted(owners)))
            return [{**row_dict(t), "account_id": a} for t, a in s.execute(q)]

    # ------------------------------------------------------------------ review meeting

    def review_list(self) -> list[dict[str, Any]]:
        """Flagged and escalated open CTAs with what was decided last time, worst first."""
        with self.store.session() as s:
            q = select(Cta).where(Cta.status == "open").where(
                Cta.flagged.is_(True) | (Cta.escalation_level > 0) | Cta.critical.is_(True))
            items = [self._cta_view(c) for c in s.scalars(q)]
        order = {p: i for i, p in enumerate(reversed(PRIORITIES))}
        return sorted(items, key=lambda c: (order[c["priority"]], -c["escalation_level"], c["id"]))

def _refusal(action: str, asked: int, refused: list[tuple[int, HealthScoreError]]) -> HealthScoreError:
    """The error of a refused bulk action: the first refusal's kind (so its HTTP status), a
    count, and one line per refused CTA."""
    first = refused[0][1]
    lines = [f"CTA #{i}: {err.message}" for i, err in refused]
    head = (f"{action}: {len(refused)} of {asked} CTAs refused, so none was changed. "
            f"Leave them out or fix them and try again. {lines[0]}"
            + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""))
    return type(first)(head, details=lines)


def _must_be_open(c: Cta, what: str) -> None:
    if c.status != "open":
        raise InvalidActionError(f"CTA #{c.id} is {c.status}: cannot {what} it.")


__all__ = ["CtaService", "QueueWhere", "SYSTEM"]
