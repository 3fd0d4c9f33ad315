"""The canonical entities a project can read, with their columns and types.

Each source maps its own column names onto one of these entities. Only ``accounts`` is
mandatory. ``time`` names the column that places a row in time (a measure as of D sees a
row only when this is on or before D); ``end`` names the column that closes a row's
interval (a ticket's close, an invoice's payment), which the as-of logic hides while it
lies after D.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Column types: string, int, float, bool, date, timestamp.


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    doc: str = ""
    values: tuple[str, ...] = ()  # the values measures expect (compared ignoring case)
    closed: bool = False  # only these values are meaningful: others are reported by check


@dataclass(frozen=True)
class Entity:
    name: str
    doc: str
    columns: tuple[Column, ...]
    key: str | None = None
    time: str | None = None
    end: str | None = None
    nonnegative: tuple[str, ...] = ()
    # columns whose value is "as of today" and must not be used in point-in-time filters
    current_state: tuple[str, ...] = field(default=())

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, type_: str, required: bool = False, doc: str = "",
       values: tuple[str, ...] = (), closed: bool = True) -> Column:
    return Column(name, type_, required, doc, values, closed and bool(values))


# account columns whose past values an account_history source can give
HISTORY_ATTRIBUTES = (
    ("name", "string"), ("segment", "string"), ("industry", "string"), ("plan", "string"),
    ("region", "string"), ("arr", "float"), ("mrr", "float"), ("csm", "string"),
    ("renewal_date", "date"), ("lifecycle_stage", "string"), ("licensed_seats", "int"),
    ("modules_purchased", "int"),
)

# a project's own account columns (contract type, payment method...): their types, and the
# entities that carry them (accounts, and account_history for their values on each date)
ATTRIBUTE_TYPES = ("string", "int", "float", "bool", "date")
ATTRIBUTE_ENTITIES = ("accounts", "account_history")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# names the scored rows already use: an attribute may not take them
RESERVED = frozenset({"as_of", "k", "scorecard", "version", "is_primary", "score", "coverage",
                      "band", "grade", "valid_from", "label", "event_date"})


def with_attributes(entity: Entity, attributes: Mapping[str, str]) -> Entity:
    """accounts (or account_history) with the project's own attribute columns added, optional
    and typed as declared; any other entity unchanged."""
    if not attributes or entity.name not in ATTRIBUTE_ENTITIES:
        return entity
    extra = tuple(Column(name, type_, doc="the project's own attribute")
                  for name, type_ in attributes.items())
    return dataclasses.replace(entity, columns=entity.columns + extra)


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in [
        Entity(
            "accounts",
            "One row per customer account.",
            (
                _c("account_id", "string", True, "unique account key"),
                _c("name", "string"),
                _c("segment", "string", doc="e.g. SMB, Mid-Market, Enterprise"),
                _c("industry", "string"),
                _c("plan", "string"),
                _c("region", "string"),
                _c("arr", "float", doc="annual recurring revenue"),
                _c("mrr", "float"),
                _c("csm", "string", doc="owner (customer success manager)"),
                _c("start_date", "date", True, "first day as a customer"),
                _c("renewal_date", "date"),
                _c("churn_date", "date", doc="day the account left, if it did"),
                _c("lifecycle_stage", "string", doc="onboarding, adoption, renewal..."),
                _c("licensed_seats", "int"),
                _c("modules_purchased", "int"),
            ),
            key="account_id",
            nonnegative=("arr", "mrr", "licensed_seats", "modules_purchased"),
        ),
        Entity(
            "account_history",
            "How account attributes changed: a row per change, valid from its date until the "
            "account's next row. A blank cell means unchanged. With it, segment, plan, seats, "
            "stage, CSM... are read as they were on each as-of date, not as they are today.",
            (
                _c("account_id", "string", True),
                _c("valid_from", "date", True, "first day the row's values held"),
                *(_c(name, type_) for name, type_ in HISTORY_ATTRIBUTES),
            ),
            time="valid_from",
            nonnegative=("arr", "mrr", "licensed_seats", "modules_purchased"),
        ),
        Entity(
            "contacts",
            "People at the customer: users, sponsors, champions.",
            (
                _c("contact_id", "string", True),
                _c("account_id", "string", True),
                _c("name", "string"),
                _c("email", "string"),
                _c("role", "string"),
                _c("seniority", "string", doc="e.g. c-level, vp, manager, individual"),
                _c("is_key_stakeholder", "bool"),
                _c("is_sponsor", "bool"),
                _c("is_champion", "bool"),
                _c("created_at", "timestamp", True),
                _c("departed_at", "timestamp", doc="when the person left; empty if still there"),
            ),
            key="contact_id",
            time="created_at",
            end="departed_at",
        ),
        Entity(
            "usage_events",
            "Product usage: one row per event.",
            (
                _c("account_id", "string", True),
                _c("user_id", "string"),
                _c("event", "string", True, "event or feature name, e.g. login, report_export",
                   values=("login",), closed=False),
                _c("module", "string"),
                _c("timestamp", "timestamp", True),
                _c("value", "float", doc="optional duration or amount"),
            ),
            time="timestamp",
        ),
        Entity(
            "activities",
            "Engagement activities: calls, emails, chats, meetings, EBR/QBR.",
            (
                _c("activity_id", "string"),
                _c("account_id", "string", True),
                _c("contact_id", "string"),
                _c("type", "string", True, "call, email, chat, meeting, ebr, qbr",
                   values=("call", "email", "chat", "meeting", "ebr", "qbr")),
                _c("initiated_by", "string", doc="cs or customer", values=("cs", "customer")),
                _c("timestamp", "timestamp", True),
                _c("with_key_stakeholder", "bool"),
            ),
            key="activity_id",
            time="timestamp",
        ),
        Entity(
            "tickets",
            "Support tickets, including bugs and product requests.",
            (
                _c("ticket_id", "string", True),
                _c("account_id", "string", True),
                _c("priority", "string", doc="P1 (highest) .. P4", values=("P1", "P2", "P3", "P4")),
                _c("type", "string", doc="question, incident, bug, product_request",
                   values=("question", "incident", "bug", "product_request")),
                _c("status", "string", doc="status today (not point-in-time)"),
                _c("opened_at", "timestamp", True),
                _c("closed_at", "timestamp"),
                _c("sla_due_at", "timestamp"),
            ),
            key="ticket_id",
            time="opened_at",
            end="closed_at",
            current_state=("status",),
        ),
        Entity(
            "invoices",
            "Invoices and their payment.",
            (
                _c("invoice_id", "string", True),
                _c("account_id", "string", True),
                _c("issued_at", "timestamp", True),
                _c("due_at", "timestamp", True),
                _c("paid_at", "timestamp", doc="empty while unpaid"),
                _c("amount", "float", True),
                _c("status", "string", doc="status today (not point-in-time)"),
            ),
            key="invoice_id",
            time="issued_at",
            end="paid_at",
            nonnegative=("amount",),
            current_state=("status",),
        ),
        Entity(
            "surveys",
            "Survey responses: NPS (0-10), CSAT (1-5).",
            (
                _c("response_id", "string"),
                _c("account_id", "string", True),
                _c("contact_id", "string"),
                _c("kind", "string", True, "nps or csat", values=("nps", "csat")),
                _c("score", "float", True),
                _c("comment", "string"),
                _c("responded_at", "timestamp", True),
            ),
            key="response_id",
            time="responded_at",
        ),
        Entity(
            "advocacy",
            "Advocacy: referrals, reviews, case studies, references.",
            (
                _c("advocacy_id", "string"),
                _c("account_id", "string", True),
                _c("kind", "string", True, "referral, review, case_study, reference",
                   values=("referral", "review", "case_study", "reference")),
                _c("occurred_at", "timestamp", True),
            ),
            key="advocacy_id",
            time="occurred_at",
        ),
        Entity(
            "milestones",
            "Onboarding milestones with due and completion dates.",
            (
                _c("milestone_id", "string"),
                _c("account_id", "string", True),
                _c("name", "string", True),
                _c("due_at", "timestamp", True),
                _c("completed_at", "timestamp"),
            ),
            key="milestone_id",
            time="due_at",
            end="completed_at",
        ),
        Entity(
            "business_outcomes",
            "The result the customer bought the product for (GMV, closed leads): 'temperature'.",
            (
                _c("account_id", "string", True),
                _c("metric", "string", True),
                _c("timestamp", "timestamp", True),
                _c("value", "float", True),
            ),
            time="timestamp",
        ),
        Entity(
            "subscriptions",
            "Subscription or contract periods (one row per billing period or contract term). "
            "Accounts without a start or churn date get them from here.",
            (
                _c("subscription_id", "string"),
                _c("account_id", "string", True),
                _c("product", "string"),
                _c("start_date", "timestamp", True, "first day of the period"),
                _c("end_date", "timestamp", doc="day the period ends; empty if open-ended"),
                _c("mrr", "float", doc="monthly recurring revenue of the period"),
                _c("quantity", "float", doc="seats or units"),
                _c("discount", "float", doc="the period's discount, as your billing records it "
                   "(an amount or a share of the list price)"),
                _c("billing_period", "string", doc="how often the period is billed: monthly, "
                   "quarterly, annual...", values=("monthly", "quarterly", "annual"), closed=False),
            ),
            key="subscription_id",
            time="start_date",
            end="end_date",
            nonnegative=("mrr", "quantity", "discount"),
        ),
        Entity(
            "outcomes",
            "What happened to the account: churn, renewal, expansion, contraction.",
            (
                _c("account_id", "string", True),
                _c("kind", "string", True, "churn, renewal, expansion, contraction",
                   values=("churn", "renewal", "expansion", "contraction")),
                _c("occurred_at", "timestamp", True),
                _c("arr_change", "float"),
            ),
            time="occurred_at",
        ),
        Entity(
            "ctas",
            "Calls to action from the project's workflow store (source 'format: workflow'): a "
            "module's colour can be derived from its CTAs (none: green, open: yellow, "
            "critical: red; count with 'mode: open, open_from: critical_at') and feed a scorecard.",
            (
                _c("cta_id", "string", True),
                _c("account_id", "string", True),
                _c("type", "string", doc="risk, opportunity, lifecycle, activity"),
                _c("module", "string", doc="the risk module the CTA belongs to"),
                _c("priority", "string"),
                _c("critical_at", "timestamp", doc="when the CSM marked it critical"),
                _c("flagged", "bool"),
                _c("opened_at", "timestamp", True),
                _c("closed_at", "timestamp"),
            ),
            key="cta_id",
            time="opened_at",
            end="closed_at",
            current_state=("priority",),
        ),
        Entity(
            "touches",
            "Calls, meetings, emails and notes logged in the workflow (source 'format: workflow').",
            (
                _c("touch_id", "string", True),
                _c("account_id", "string", True),
                _c("type", "string", True, "call, meeting, email or note"),
                _c("logged_by", "string"),
                _c("timestamp", "timestamp", True),
            ),
            key="touch_id",
            time="timestamp",
        ),
        Entity(
            "module_marks",
            "A CSM's marks of an account's modules (red, yellow or green, with a reason and an "
            "expiry) from the workflow store (source 'format: workflow'). Every scorecard reads "
            "them for its modules' colours, listed here or not.",
            (
                _c("mark_id", "string", True),
                _c("account_id", "string", True),
                _c("module", "string", True, doc="the group the mark colours"),
                _c("colour", "string", True, "red, yellow or green",
                   values=("red", "yellow", "green")),
                _c("reason_code", "string"),
                _c("set_at", "timestamp", True),
                _c("expires_on", "date", True, doc="the mark holds until this day"),
                _c("ended_at", "timestamp", doc="when it was cleared or replaced"),
            ),
            key="mark_id",
            time="set_at",
            end="ended_at",
        ),
        Entity(
            "manual_values",
            "Values entered by CSMs (e.g. sentiment 1-5), each with the measure it feeds.",
            (
                _c("account_id", "string", True),
                _c("measure", "string", True),
                _c("value", "float", True),
                _c("entered_at", "timestamp", True),
                _c("entered_by", "string"),
            ),
            time="entered_at",
        ),
    ]
}
