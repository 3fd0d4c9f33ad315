"""Subscriptions keep their discount and billing period: measures read them point-in-time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from healthscore.project import Project

from .projects import csv_text, write_project

# (account_id, start_date, end_date, mrr, discount, billing_period)
SUBS = [
    ("A1", "2024-01-01", "2024-02-01", 100, 0, "monthly"),
    ("A1", "2024-02-01", "2025-02-01", 80, 0.2, "annual"),  # the annual term's 20% off
    ("A2", "2024-01-15", "2024-07-15", 50, None, "Quarterly"),
    ("A3", "2024-01-01", "2024-04-01", 10, -5, "monthly"),  # a negative discount: rejected
]


def test_discount_and_billing_period_feed_measures_as_of_each_date(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": "name: subs\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  subscriptions: {path: data/subs.csv, max_rejected_share: 0.5}\n"
                           "scorecards: [default]\n",
        "measures/billing.yml": """\
            discount_now: {type: sum, entity: subscriptions, column: discount, mode: open,
                           scheme: {type: linear, low: 0.5, high: 0}}
            annual_terms: {type: count, entity: subscriptions, mode: open,
                           filter: "billing_period in ('annual', 'quarterly')",
                           scheme: {type: linear, low: 0, high: 1}}
            """,
        "scorecards/default.yml": "groups: {billing: {weight: 100, measures: {discount_now: 50, "
                                  "annual_terms: 50}}}\n",
        "data/accounts.csv": csv_text(["account_id", "name"], [("A1", "x"), ("A2", "y"), ("A3", "z")]),
        "data/subs.csv": csv_text(["account_id", "start_date", "end_date", "mrr", "discount",
                                   "billing_period"], SUBS),
        "data/usage_events.csv": None,
    }, base=False)
    project = Project.load(tmp_path)
    result = project.run(dates=[date(2024, 1, 20), date(2024, 3, 1)], apply_rules=False)
    assert result.health["subscriptions"].reasons == {"negative discount": 1}
    scores = result.to_pandas()
    seen = {(r.account_id, r.as_of.isoformat()): (r.m__discount_now, r.m__annual_terms)
            for r in scores.itertuples()}
    # A1: monthly without discount in January, the annual term at 20% off from February;
    # A2's quarterly term has no discount recorded; A3's only period was rejected
    assert seen == {("A1", "2024-01-20"): (0.0, 0.0), ("A2", "2024-01-20"): (0.0, 1.0),
                    ("A1", "2024-03-01"): (0.2, 1.0), ("A2", "2024-03-01"): (0.0, 1.0)}
