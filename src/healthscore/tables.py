"""The workflow store's tables (SQLAlchemy 2). Every row that people change carries a
``version`` for optimistic locking: two users saving the same row at once -> one wins, the
other gets a conflict."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TOUCHES = ("note", "call", "meeting", "email")  # timeline kinds that are touches (entity 'touches')

ROLES = ("admin", "lead", "csm", "viewer")
CTA_TYPES = ("risk", "opportunity", "lifecycle", "activity")
PRIORITIES = ("low", "medium", "high", "critical")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Versioned:
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    team: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(10), default="en")
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    notify_events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    # the channels chosen (inapp, email, webhook); None: every channel the user can get
    notify_channels: Mapped[list[Any] | None] = mapped_column(JSON)


class Cta(Versioned, Base):
    __tablename__ = "ctas"
    __mapper_args__: dict[str, Any] = {"version_id_col": Versioned.version}
    # the work queue's filters: mine / my team, and due dates (migration 0010)
    __table_args__ = (Index("ix_ctas_status_owner", "status", "owner"),
                      Index("ix_ctas_status_due_on", "status", "due_on"))
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(300))
    module: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(20))  # rule | manual
    rule: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)  # open | closed
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    critical_at: Mapped[datetime | None] = mapped_column(DateTime)  # when it turned critical
    playbook: Mapped[str | None] = mapped_column(String(100))
    due_on: Mapped[date | None] = mapped_column(Date)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    opened_by: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str | None] = mapped_column(String(300))
    snoozed_until: Mapped[date | None] = mapped_column(Date)
    snooze_reason: Mapped[str | None] = mapped_column(String(300))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    decision: Mapped[str | None] = mapped_column(Text)  # what the last review meeting decided
    tasks: Mapped[list[Task]] = relationship(back_populates="cta", order_by="Task.id")


class Task(Versioned, Base):
    __tablename__ = "tasks"
    __mapper_args__: dict[str, Any] = {"version_id_col": Versioned.version}
    __table_args__ = (Index("ix_tasks_status_due_on", "status", "due_on"),)  # My day (migration 0010)
    id: Mapped[int] = mapped_column(primary_key=True)
    cta_id: Mapped[int | None] = mapped_column(ForeignKey("ctas.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("success_plans.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    instructions: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(50))
    side: Mapped[str] = mapped_column(String(20), default="ours")  # ours | customer
    owner: Mapped[str | None] = mapped_column(String(100))
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | done | skipped
    done_at: Mapped[datetime | None] = mapped_column(DateTime)
    done_by: Mapped[str | None] = mapped_column(String(100))
    cta: Mapped[Cta | None] = relationship(back_populates="tasks")


class Escalation(Base):
    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(primary_key=True)
    cta_id: Mapped[int] = mapped_column(ForeignKey("ctas.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    to: Mapped[str] = mapped_column(String(100))
    holder: Mapped[str | None] = mapped_column(String(100))  # the person who holds 'to'
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)


class Override(Versioned, Base):
    __tablename__ = "overrides"
    # versions are set by the workflow (an account's override version counts on across the
    # rows that replace each other); the store still checks them on every update
    __mapper_args__: dict[str, Any] = {"version_id_col": Versioned.version,
                                       "version_id_generator": False}
    # at most one open override per account: the database refuses a second (migration 0004)
    __table_args__ = (Index("one_open_override", "account_id", unique=True,
                            postgresql_where=text("ended_at IS NULL"),
                            sqlite_where=text("ended_at IS NULL")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    band: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)
    reason_code: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(Text)
    expires_on: Mapped[date] = mapped_column(Date)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(DateTime)
    # what the system said when the override was set: validation can later tell who was right
    system_score: Mapped[float | None] = mapped_column(Float)
    system_band: Mapped[str | None] = mapped_column(String(50))
    as_of: Mapped[date | None] = mapped_column(Date)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))
    end_reason: Mapped[str | None] = mapped_column(String(50))  # cleared | lapsed | replaced


MARK_COLOURS = ("red", "yellow", "green")  # a CSM's mark of a module (seed 002)


class ModuleMark(Versioned, Base):
    """A CSM's judgement of one module of an account: its colour until the expiry, whatever
    the module's score and CTAs say (seed 002: the CSM may always mark a module)."""

    __tablename__ = "module_marks"
    # like overrides: a module's mark version counts on across the rows that replace each
    # other (set by the workflow, checked by the store on every update)
    __mapper_args__: dict[str, Any] = {"version_id_col": Versioned.version,
                                       "version_id_generator": False}
    # at most one open mark per account and module: the database refuses a second (0005)
    __table_args__ = (Index("one_open_mark", "account_id", "module", unique=True,
                            postgresql_where=text("ended_at IS NULL"),
                            sqlite_where=text("ended_at IS NULL")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    module: Mapped[str] = mapped_column(String(100))
    colour: Mapped[str] = mapped_column(String(10))
    reason_code: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(Text)
    expires_on: Mapped[date] = mapped_column(Date)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(DateTime)
    system_colour: Mapped[str | None] = mapped_column(String(50))  # the module's colour then
    as_of: Mapped[date | None] = mapped_column(Date)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))
    end_reason: Mapped[str | None] = mapped_column(String(50))  # cleared | lapsed | replaced


class ManualValue(Base):
    """A value a CSM entered for a manual measure (sentiment 1-5, 'EBR refused'...): kept,
    never changed; the measure reads the latest one until it is older than its max_age."""

    __tablename__ = "manual_values"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    measure: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    entered_by: Mapped[str] = mapped_column(String(100))
    entered_at: Mapped[datetime] = mapped_column(DateTime)


class SavedView(Base):
    """A user's saved view of a list page: its filters, sort and scope as a query string."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("owner", "page", "name", name="uq_saved_views_owner_page_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    page: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class TimelineEntry(Base):
    __tablename__ = "timeline"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Audit(Base):
    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_entity_entity_id", "entity", "entity_id"),)  # a CTA's history (0010)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SuccessPlan(Versioned, Base):
    __tablename__ = "success_plans"
    __mapper_args__: dict[str, Any] = {"version_id_col": Versioned.version}
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(String(300))
    template: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    # roles, reporting (cadence, audience), communication, education, tools
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    goals: Mapped[list[Goal]] = relationship(order_by="Goal.id")
    milestones: Mapped[list[Milestone]] = relationship(order_by="Milestone.id")
    criteria: Mapped[list[Criterion]] = relationship(order_by="Criterion.id")
    tasks: Mapped[list[Task]] = relationship(order_by="Task.id")


class Goal(Base):
    __tablename__ = "plan_goals"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("success_plans.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20), default="goal")  # goal | initiative
    status: Mapped[str] = mapped_column(String(20), default="open")


class Milestone(Base):
    __tablename__ = "plan_milestones"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("success_plans.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    due_on: Mapped[date | None] = mapped_column(Date)
    done_on: Mapped[date | None] = mapped_column(Date)


class Criterion(Base):
    __tablename__ = "plan_criteria"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("success_plans.id"), index=True)
    measure: Mapped[str] = mapped_column(String(100))
    op: Mapped[str] = mapped_column(String(4))  # >=, <=, >, <, =
    target: Mapped[float] = mapped_column(Float)
    due_on: Mapped[date] = mapped_column(Date)
    value: Mapped[float | None] = mapped_column(Float)
    checked_on: Mapped[date | None] = mapped_column(Date)
    met: Mapped[bool | None] = mapped_column(Boolean)


class AppliedRun(Base):
    """The snapshot date whose plan was last applied: band changes are counted from it."""

    __tablename__ = "applied_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(DateTime)
    by: Mapped[str] = mapped_column(String(100))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Notification(Base):
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    user: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))  # webhook | email
    event: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # sent | failed | queued (digest)
    error: Mapped[str | None] = mapped_column(Text)


class InboxItem(Base):
    """A notification in the app: what happened, the account and CTA it is about, and when
    the user read it (None: unread)."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_user_read", "user", "read_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(DateTime)
    event: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(String(100))
    cta_id: Mapped[int | None] = mapped_column(Integer)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)


class ApiToken(Base):
    """A REST API token: only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(String(100), index=True)
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id whose SHA-256 is the key here."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(100), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
