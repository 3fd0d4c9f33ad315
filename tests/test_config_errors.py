"""The exact text of every ConfigError a project's YAML can raise (Project.load only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from healthscore import Project
from healthscore.errors import ConfigError
from tests.projects import (
    AS_OF,
    MEASURES_YML,
    PROJECT_YML,
    SCORECARD_YML,
    project_yml,
    write_project,
)

P, M, S = "healthscore.yml", "measures/usage.yml", "scorecards/default.yml"
SRC = "accounts: {path: data/accounts.csv}\nusage_events: {path: data/usage_events.csv}\n"
LINEAR = "scheme: {type: linear, low: 0, high: 2}"
HINT = "Write a number and a unit, e.g. '30d', '12 weeks', '3 months', '1 quarter', or 'all'."
ALLOWED = ("Use comparisons (=, !=, <, >, in, is null, like), and/or/not, arithmetic and "
           "coalesce, greatest, least, abs, nullif, floor (and % for the remainder).")
ACCOUNT_COLUMNS = ("account_id, name, segment, industry, plan, region, arr, mrr, csm, start_date, "
                   "renewal_date, churn_date, lifecycle_stage, licensed_seats, modules_purchased")
ENTITIES = ("accounts, account_history, contacts, usage_events, activities, tickets, invoices, "
            "surveys, advocacy, milestones, business_outcomes, subscriptions, outcomes, ctas, "
            "touches, module_marks, manual_values")


def logins(extra: str = "", scheme: str = LINEAR, entity: str = "usage_events",
           window: str = "30d") -> dict[str, str]:
    """measures/usage.yml with logins_30 changed."""
    return {M: f"logins_30: {{type: count, entity: {entity}, filter: \"event = 'login'\", "
               f"window: {window}, {scheme}{extra}}}\n"}


def sources(extra: str, scorecards: str = "scorecards: [default]") -> dict[str, str]:
    return {P: project_yml(SRC + extra, scorecards)}


def with_tickets(measure: str) -> dict[str, str]:
    return {P: project_yml(SRC + "tickets: {path: data/tickets.csv}\n"),
            M: MEASURES_YML + measure}


def entry(body: str) -> dict[str, str]:
    """scorecards/default.yml whose only entry is logins_30: <body>."""
    return {S: f"groups: {{usage: {{weight: 100, measures: {{logins_30: {body}}}}}}}\n"}


def load_error(root: Path, files: dict[str, Any]) -> ConfigError:
    write_project(root, files)
    with pytest.raises(ConfigError) as excinfo:
        Project.load(root)
    return excinfo.value


CASES: list[tuple[str, dict[str, Any], str]] = [
    # ------------------------------------------------------------------ files and YAML
    ("invalid-yaml-flow", {P: "name: mini\nsources:\n  accounts: {path: data/a.csv\n  x: 1\n"},
     "healthscore.yml: line 4: invalid YAML: expected ',' or '}', but got ':'. Check "
     "indentation and quoting."),
    ("invalid-yaml-indent", {P: "name: mini\nsources:\n  accounts:\n    path: a.csv\n   bad: 1\n"},
     "healthscore.yml: line 5: invalid YAML: expected <block end>, but found '<block mapping "
     "start>'. Check indentation and quoting."),
    ("invalid-yaml-tab", {M: "logins_30:\n\ttype: count\n"},
     "measures/usage.yml: line 2: invalid YAML: found character '\\t' that cannot start any "
     "token. Check indentation and quoting."),
    ("top-level-not-mapping", {P: "- accounts\n- usage_events\n"},
     "healthscore.yml: (top level): must be a mapping of keys to values."),
    ("measures-not-mapping", {M: "- logins_30\n"},
     "measures/usage.yml: (top level): must be a mapping of keys to values."),
    ("scorecard-not-mapping", {S: "- usage\n"},
     "scorecards/default.yml: (top level): must be a mapping of keys to values."),
    ("unreadable-file", {"measures/more.yml": lambda p: p.mkdir(parents=True)},
     "measures/more.yml: cannot be read (Is a directory)."),
    ("duplicate-measure-name", {"measures/more.yml": MEASURES_YML},
     "measures/usage.yml: logins_30: is also defined in measures/more.yml. Give one of them "
     "another name."),
    # ------------------------------------------------------------------ healthscore.yml
    ("unknown-key", {P: PROJECT_YML + "colour: red\n"},
     "healthscore.yml: colour: unknown key. Check the spelling; see the docs for the valid keys. "
     "Got 'red'."),
    ("unknown-key-in-source", sources("invoices: {path: data/i.csv, sheat: Invoices}\n"),
     "healthscore.yml: sources.invoices.sheat: unknown key. Check the spelling; see the docs for "
     "the valid keys. Got 'Invoices'."),
    ("unknown-key-in-settings", {P: PROJECT_YML + "settings: {min_coverag: 5}\n"},
     "healthscore.yml: settings.min_coverag: unknown key. Check the spelling; see the docs for "
     "the valid keys. Got 5."),
    ("several-problems", {P: PROJECT_YML + "colour: red\nengine: polars\n"},
     "healthscore.yml: engine: must be one of 'duckdb' or 'spark'. Got 'polars'.\n"
     "  - healthscore.yml: colour: unknown key. Check the spelling; see the docs for the valid "
     "keys. Got 'red'."),
    ("spark-master-and-remote",
     {P: PROJECT_YML + "spark: {master: 'spark://h:7077', remote: 'sc://h:15002'}\n"},
     "healthscore.yml: spark: give exactly one of 'master' (e.g. spark://host:7077) or 'remote' "
     "(Spark Connect, e.g. sc://host:15002). Got both."),
    ("spark-master-bad-scheme", {P: PROJECT_YML + "spark: {master: 'http://h:7077'}\n"},
     "healthscore.yml: spark.master: must be a Spark master: local[N], spark://HOST:7077, yarn or "
     "k8s://https://HOST:443. Got 'http://h:7077'."),
    ("spark-remote-bad-scheme", {P: PROJECT_YML + "spark: {remote: 'grpc://h:15002'}\n"},
     "healthscore.yml: spark.remote: must be a Spark Connect URL: sc://HOST:15002. Got "
     "'grpc://h:15002'."),
    ("spark-executor-memory", {P: PROJECT_YML + "spark: {executor: {memory: 1.5GB}}\n"},
     "healthscore.yml: spark.executor.memory: must be a whole size Spark reads, such as 512m, 4g "
     "or 1500MB. Got '1.5GB'."),
    ("spark-executor-cores", {P: PROJECT_YML + "spark: {executor: {cores: 0}}\n"},
     "healthscore.yml: spark.executor.cores: must be at least 1. Got 0."),
    ("spark-remote-and-executor",
     {P: PROJECT_YML + "spark: {remote: 'sc://h', executor: {memory: 4g}}\n"},
     "healthscore.yml: spark: the Spark Connect server sizes its executors: remove 'executor', "
     "or give 'master' instead of 'remote'. Got remote and executor."),
    ("spark-conf-not-spark", {P: PROJECT_YML + "spark: {conf: {sql.shuffle.partitions: 8}}\n"},
     "healthscore.yml: spark.conf: keys are Spark settings, which start with 'spark.'. Got "
     "'sql.shuffle.partitions'."),
    ("spark-conf-own-key", {P: PROJECT_YML + "spark: {conf: {spark.executor.memory: 4g}}\n"},
     "healthscore.yml: spark.conf: 'spark.executor.memory' has its own key: write 'executor: "
     "{memory: ...}' under spark: instead. Got 'spark.executor.memory'."),
    ("spark-conf-fixed", {P: PROJECT_YML + "spark: {conf: {spark.sql.session.timeZone: CET}}\n"},
     "healthscore.yml: spark.conf: 'spark.sql.session.timeZone' is set by healthscore (dates are "
     "UTC, a bad cast gives no value): remove it. Got 'spark.sql.session.timeZone'."),
    ("spark-unknown-key", {P: PROJECT_YML + "spark: {masters: 'yarn'}\n"},
     "healthscore.yml: spark.masters: unknown key. Check the spelling; see the docs for the valid "
     "keys. Got 'yarn'."),
    ("missing-name", {P: "sources:\n  accounts: {path: data/accounts.csv}\n"},
     "healthscore.yml: name: is required but missing. Add it."),
    ("sources-not-mapping", {P: "name: mini\nsources: [accounts]\n"},
     "healthscore.yml: sources: must be a mapping of keys to values. Got a list."),
    ("min-coverage-out-of-range", {P: PROJECT_YML + "settings: {min_coverage: 150}\n"},
     "healthscore.yml: settings.min_coverage: must be a number between 0 and 100. Got 150."),
    ("no-accounts-source", {P: project_yml("usage_events: {path: data/usage_events.csv}\n")},
     "healthscore.yml: sources: has no 'accounts' source. Every project needs one: add "
     "'accounts: {path: data/accounts.csv}' under sources."),
    ("unknown-entity-source", sources("users: {path: data/users.csv}\n"),
     f"healthscore.yml: sources.users: unknown entity 'users'. Valid entities: {ENTITIES}."),
    ("path-and-url", sources("tickets: {path: data/t.csv, url: 'sqlite:///t.db', table: t}\n"),
     "healthscore.yml: sources.tickets: give exactly one of 'path' (a file) or 'url' "
     "(a database)."),
    ("neither-path-nor-url", sources("tickets: {table: t}\n"),
     "healthscore.yml: sources.tickets: give exactly one of 'path' (a file) or 'url' "
     "(a database)."),
    ("unknown-mapped-column", sources("tickets: {path: data/t.csv, columns: {id: Key}}\n"),
     "healthscore.yml: sources.tickets.columns.id: tickets has no column 'id'. Valid columns: "
     "ticket_id, account_id, priority, type, status, opened_at, closed_at, sla_due_at."),
    ("unknown-format", sources("tickets: {path: data/tickets.txt}\n"),
     "healthscore.yml: sources.tickets.path: cannot tell the format of 'data/tickets.txt'. Add "
     "'format: csv' (or parquet, excel, duckdb)."),
    ("invalid-format", sources("tickets: {path: data/tickets.txt, format: tsv}\n"),
     "healthscore.yml: sources.tickets.format: must be one of 'csv', 'parquet', 'excel', "
     "'duckdb', 'sql', 'query' or 'workflow'. Got 'tsv'."),
    ("database-without-table", sources("tickets: {url: 'sqlite:///crm.db'}\n"),
     "healthscore.yml: sources.tickets: a database source needs 'table' or 'query'."),
    ("bad-refresh", sources("tickets: {path: data/t.csv, refresh: sometimes}\n"),
     f"healthscore.yml: sources.tickets.refresh: is not a duration: 'sometimes'. {HINT}"),
    ("scorecard-file-missing", sources("", "scorecards: [enterprise, default]"),
     "healthscore.yml: scorecards: no file scorecards/enterprise.yml. Scorecards in the "
     "project: default."),
    ("also-file-missing", sources("", "scorecards: [default]\nalso: [risk]"),
     "healthscore.yml: also: no file scorecards/risk.yml. Scorecards in the project: default."),
    ("scorecard-order-missing", {**sources("", "scorecards: []"),
                                 "scorecards/enterprise.yml": SCORECARD_YML},
     "healthscore.yml: scorecards: list the scorecards in the order they are tried, the default "
     "last, e.g. 'scorecards: [enterprise, default]'."),
    # unclear: with no scorecard file at all it should say so (see the report)
    ("no-scorecard-at-all", {**sources("", "scorecards: []"), S: None},
     "healthscore.yml: scorecards: list the scorecards in the order they are tried, the default "
     "last, e.g. 'scorecards: [enterprise, default]'."),
    # ------------------------------------------------------------------ measures
    ("unknown-measure-type", {M: "logins_30: {type: counter, entity: usage_events}\n"},
     "measures/usage.yml: logins_30: unknown type 'counter'. Valid types: 'count', "
     "'count_distinct', 'sum', 'avg', 'min', 'max', 'latest', 'days_since', 'ratio', 'change', "
     "'tenure', 'attribute', 'manual', 'expression'."),
    ("unknown-key-in-measure", logins(", windw: 90d"),
     "measures/usage.yml: logins_30.windw: unknown key. Check the spelling; see the docs for the "
     "valid keys. Got '90d'."),
    ("measure-not-mapping", {M: "logins_30: 5\n"},
     "measures/usage.yml: logins_30: must be a mapping of keys to values. Got 5."),
    ("invalid-unit", {M: MEASURES_YML + "t: {type: tenure, unit: weeks}\n"},
     "measures/usage.yml: t.unit: must be one of 'days', 'months' or 'years'. Got 'weeks'."),
    ("unknown-entity", logins(entity="usage"),
     f"measures/usage.yml: logins_30.entity: unknown entity 'usage'. Valid entities: {ENTITIES}."),
    ("entity-without-source", {M: f"open_t: {{type: count, entity: tickets, {LINEAR}}}\n"
                                  + MEASURES_YML},
     "measures/usage.yml: open_t.entity: the project has no source for 'tickets'. Add 'tickets:' "
     "under sources in healthscore.yml, or remove this measure."),
    ("unknown-column", {M: MEASURES_YML + "users: {type: count_distinct, entity: usage_events, "
                                          "column: user}\n"},
     "measures/usage.yml: users.column: usage_events has no column 'user'. Valid columns: "
     "account_id, user_id, event, module, timestamp, value."),
    ("time-not-a-date", logins(", time: event"),
     "measures/usage.yml: logins_30.time: usage_events.event is not a date or time."),
    ("open-mode-needs-an-end", logins(", mode: open"),
     "measures/usage.yml: logins_30.mode: 'open' needs an entity whose rows close (tickets, "
     "invoices, milestones, contacts); usage_events has none. Use mode: events."),
    ("filter-unknown-column", {M: f"logins_30: {{type: count, entity: usage_events, filter: "
                                  f"\"evnt = 'login'\", {LINEAR}}}\n"},
     "measures/usage.yml: logins_30.filter: unknown usage_events column 'evnt' in \"evnt = "
     "'login'\". Valid: account_id, event, module, timestamp, user_id, value."),
    ("filter-subquery", {M: f"logins_30: {{type: count, entity: usage_events, filter: \"event in "
                            f"(select event from t)\", {LINEAR}}}\n"},
     f"measures/usage.yml: logins_30.filter: SUBQUERY is not allowed in 'event in (select event "
     f"from t)'. {ALLOWED}"),
    ("filter-function", {M: f"logins_30: {{type: count, entity: usage_events, filter: "
                            f"\"lower(event) = 'login'\", {LINEAR}}}\n"},
     f"measures/usage.yml: logins_30.filter: LOWER(event) is not allowed in \"lower(event) = "
     f"'login'\". {ALLOWED}"),
    # unclear: sqlglot's own words (see the report)
    ("filter-unparseable", {M: f"logins_30: {{type: count, entity: usage_events, filter: "
                               f"\"event = = 'login'\", {LINEAR}}}\n"},
     "measures/usage.yml: logins_30.filter: cannot parse \"event = = 'login'\": Required keyword: "
     "'expression' missing for <class 'sqlglot.expressions.EQ'>. Line 1, Col: 9."),
    ("filter-current-state", with_tickets(f"open_t: {{type: count, entity: tickets, filter: "
                                          f"\"status = 'open'\", {LINEAR}}}\n"),
     "measures/usage.yml: open_t.filter: tickets.status is the status today, so a score for a "
     "past date would see the future. Use 'mode: open' (open between opened_at and closed_at) "
     "instead of filtering on status."),
    ("bad-window", logins(window="30 dayz"),
     f"measures/usage.yml: logins_30.window: is not a duration: '30 dayz'. {HINT}"),
    # unclear: '0d' is a duration, just an empty one (see the report)
    ("zero-window", logins(window="0d"),
     f"measures/usage.yml: logins_30.window: is not a duration: '0d'. {HINT}"),
    ("window-not-text", logins(window="30"),
     "measures/usage.yml: logins_30.window: must be text. Got 30."),
    ("measures-in-a-loop", {M: MEASURES_YML + "a: {type: expression, expr: 'b + 1'}\n"
                                              "b: {type: ratio, numerator: logins_30, "
                                              "denominator: a}\n"},
     "measures/usage.yml: a: measures refer to each other in a loop (a -> b -> a)."),
    ("measure-refers-to-itself", {M: MEASURES_YML + "a: {type: expression, expr: 'a * 2'}\n"},
     "measures/usage.yml: a: measures refer to each other in a loop (a -> a)."),
    ("unknown-dependency", {M: MEASURES_YML + "r: {type: ratio, numerator: logins_30, "
                                              "denominator: logouts_30}\n"},
     "measures/usage.yml: r: refers to unknown measure 'logouts_30'. Define it under measures/ "
     "or use one of the built-in measures (healthscore measures)."),
    ("change-without-window", {M: MEASURES_YML + "all_logins: {type: count, entity: usage_events}"
                                                 "\nchg: {type: change, of: all_logins}\n"},
     "measures/usage.yml: chg.of: 'all_logins' has no window, so there is no previous window to "
     "compare with. Give it a window such as '30d'."),
    ("change-of-wrong-type", {M: MEASURES_YML + "last_value: {type: latest, entity: usage_events, "
                                                "column: value}\nchg: {type: change, "
                                                "of: last_value}\n"},
     "measures/usage.yml: chg.of: 'change' needs a windowed count, count_distinct or sum measure "
     "over events. Got 'last_value' of type 'latest'."),
    # ------------------------------------------------------------------ schemes
    ("unknown-scheme-type", logins(scheme="scheme: {type: lin}"),
     "measures/usage.yml: logins_30.scheme: unknown type 'lin'. Valid types: 'thresholds', "
     "'linear', 'percentile', 'boolean', 'category'."),
    ("scheme-key-missing", logins(scheme="scheme: {type: linear, low: 0}"),
     "measures/usage.yml: logins_30.scheme.high: is required but missing. Add it."),
    # unclear: shows 5.0 and 2.0 for what was written 5 and 2 (see the report)
    ("cuts-not-increasing", logins(scheme="scheme: {type: thresholds, cuts: [5, 2], "
                                          "scores: [0, 50, 100]}"),
     "measures/usage.yml: logins_30.scheme.cuts: must be in increasing order. Got [5.0, 2.0]."),
    ("cuts-repeated", logins(scheme="scheme: {type: thresholds, cuts: [2, 2], "
                                    "scores: [0, 50, 100]}"),
     "measures/usage.yml: logins_30.scheme.cuts: must be in increasing order. Got [2.0, 2.0]."),
    ("wrong-number-of-scores", logins(scheme="scheme: {type: thresholds, cuts: [1, 2], "
                                             "scores: [0, 100]}"),
     "measures/usage.yml: logins_30.scheme.scores: needs one score more than there are cuts (3). "
     "Got 2."),
    ("wrong-number-of-scores-in-scorecard",
     entry("{weight: 100, scheme: {type: thresholds, cuts: [1], scores: [0, 50, 100]}}"),
     "scorecards/default.yml: groups.usage.measures.logins_30.scheme.scores: needs one score more "
     "than there are cuts (2). Got 3."),
    ("linear-low-equals-high", logins(scheme="scheme: {type: linear, low: 2, high: 2}"),
     "measures/usage.yml: logins_30.scheme: low and high must differ. Got 2.0 for both."),
    ("category-score-out-of-range", logins(scheme="scheme: {type: category, map: {a: 120}}"),
     "measures/usage.yml: logins_30.scheme.map.a: must be a number between 0 and 100. Got 120."),
    ("percentile-by-unknown-column",
     entry("{weight: 100, scheme: {type: percentile, by: tier}}"),
     f"scorecards/default.yml: groups.usage.measures.logins_30.scheme.by: accounts has no column "
     f"'tier'. Valid: {ACCOUNT_COLUMNS}."),
    # ------------------------------------------------------------------ scorecards
    ("unknown-key-in-scorecard", {S: "groups: {usage: {weight: 100, measure: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups.usage.measure: unknown key. Check the spelling; see the docs "
     "for the valid keys. Got a mapping."),
    ("group-weight-not-a-number", {S: "groups: {usage: {weight: '30%', measures: {logins_30: 100}}}"
                                      "\n"},
     "scorecards/default.yml: groups.usage.weight: must be a number. Got '30%'."),
    ("group-weight-above-100", {S: "groups: {usage: {weight: 130, measures: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups.usage.weight: must be a number between 0 and 100. Got 130."),
    ("group-weight-missing", {S: "groups: {usage: {measures: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups.usage.weight: is required but missing. Add it."),
    ("group-weights-do-not-add-up", {S: "groups: {usage: {weight: 60, measures: {logins_30: 100}}"
                                        ", more: {weight: 30, measures: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups: weights must add up to 100. Got 90 (usage 60, more 30)."),
    ("group-label-unknown-language",
     {S: "groups: {usage: {weight: 100, label: {en: Usage, de: Nutzung}, measures: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups.usage.label: unknown language 'de'. Languages: en, pl, ru, zh."),
    ("group-label-empty-text",
     {S: "groups: {usage: {weight: 100, label: {en: Usage, pl: ' '}, measures: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups.usage.label.pl: empty text. Write the pl label, or leave pl out."),
    ("group-label-no-language",
     {S: "groups: {usage: {weight: 100, label: {}, measures: {logins_30: 100}}}\n"},
     "scorecards/default.yml: groups.usage.label: no language given. Write one text, or one per "
     "language, e.g. {en: Logins, pl: Logowania}."),
    ("measure-label-unknown-language", logins(", label: {EN: Logins}"),
     "measures/usage.yml: logins_30.label: unknown language 'EN'. Languages: en, pl, ru, zh."),
    ("measure-label-empty-text", logins(", label: {en: Logins, zh: ''}"),
     "measures/usage.yml: logins_30.label.zh: empty text. Write the zh label, or leave zh out."),
    ("measure-label-not-text", logins(", label: [Logins]"),
     "measures/usage.yml: logins_30.label: must be text. Got a list."),
    ("entry-weights-do-not-add-up", entry("60, days_since_last_use: 30"),
     "scorecards/default.yml: groups.usage: weights must add up to 100. Got 90 (logins_30 60, "
     "days_since_last_use 30)."),
    ("nested-weights-do-not-add-up",
     {S: "groups: {usage: {weight: 100, groups: {a: {weight: 50, measures: {logins_30: 100}}, "
         "b: {weight: 50, measures: {logins_30: 90}}}}}\n"},
     "scorecards/default.yml: groups.usage.groups.b: weights must add up to 100. Got 90 "
     "(logins_30 90)."),
    ("empty-group", {S: "groups: {usage: {weight: 100}}\n"},
     "scorecards/default.yml: groups.usage: is empty. Give it measures or groups."),
    # unclear: "Got a mapping." for an empty mapping (see the report)
    ("no-groups", {S: "groups: {}\n"},
     "scorecards/default.yml: groups: a scorecard needs at least one group. Got a mapping."),
    ("measure-and-group-clash",
     {S: "groups: {usage: {weight: 100, measures: {logins_30: 50}, groups: {logins_30: "
         "{weight: 50, measures: {logins_30: 100}}}}}\n"},
     "scorecards/default.yml: groups.usage: 'logins_30' is both a measure and a group. Rename the "
     "group."),
    ("unknown-measure-in-scorecard", {S: "groups: {usage: {weight: 100, measures: {logins_31: 100}"
                                         "}}\n"},
     "scorecards/default.yml: groups.usage.measures.logins_31: unknown measure 'logins_31'. "
     "Define it in measures/*.yml or pick a built-in one ('healthscore measures' lists them)."),
    ("measure-without-scheme", {M: "logins_30: {type: count, entity: usage_events, window: 30d}\n"},
     "scorecards/default.yml: groups.usage.measures.logins_30: measure 'logins_30' has no scoring "
     "scheme. Add 'scheme:' here or in measures/usage.yml, e.g. 'scheme: {type: linear, low: 0, "
     "high: 10}'."),
    ("bands-not-starting-at-0", {S: SCORECARD_YML + "bands: [{name: red, min: 10}, "
                                                    "{name: green, min: 70}]\n"},
     "scorecards/default.yml: bands: must start at min 0 and go up, lowest band first. Got mins "
     "[10.0, 70.0]."),
    ("bands-not-increasing", {S: SCORECARD_YML + "bands: [{name: red, min: 0}, {name: green, "
                                                 "min: 70}, {name: yellow, min: 40}]\n"},
     "scorecards/default.yml: bands: must start at min 0 and go up, lowest band first. Got mins "
     "[0.0, 70.0, 40.0]."),
    ("no-bands", {S: SCORECARD_YML + "bands: []\n"},
     "scorecards/default.yml: bands: must start at min 0 and go up, lowest band first. Got mins "
     "[]."),
    ("grades-not-starting-at-0", {S: SCORECARD_YML + "grades: [{grade: A, min: 80}, "
                                                     "{grade: B, min: 50}]\n"},
     "scorecards/default.yml: grades: the lowest grade must have min 0 so every score gets a "
     "grade."),
    ("min-coverage-above-100", {S: SCORECARD_YML + "min_coverage: 120\n"},
     "scorecards/default.yml: min_coverage: must be a number between 0 and 100. Got 120."),
    ("last-scorecard-with-when", {S: SCORECARD_YML + "when: \"segment = 'SMB'\"\n"},
     "scorecards/default.yml: when: the last scorecard in the list is the default and must have "
     "no 'when:' condition, so that every account gets one."),
    ("when-unknown-column", {**sources("", "scorecards: [smb, default]"),
                             "scorecards/smb.yml": SCORECARD_YML + "when: \"tier = 'SMB'\"\n"},
     "scorecards/smb.yml: when: unknown account column 'tier' in \"tier = 'SMB'\". Valid: "
     "account_id, arr, churn_date, csm, industry, licensed_seats, lifecycle_stage, "
     "modules_purchased, mrr, name, plan, region, renewal_date, segment, start_date."),
    ("when-forbidden-syntax", {**sources("", "scorecards: [smb, default]"),
                               "scorecards/smb.yml": SCORECARD_YML + "when: \"upper(segment) = "
                                                                     "'SMB'\"\n"},
     f"scorecards/smb.yml: when: UPPER(segment) is not allowed in \"upper(segment) = 'SMB'\". "
     f"{ALLOWED}"),
]


@pytest.mark.parametrize(("files", "expected"),
                         [pytest.param(f, e, id=i) for i, f, e in CASES])
def test_config_error_text(tmp_path: Path, files: dict[str, Any], expected: str) -> None:
    assert str(load_error(tmp_path, files)) == expected


def test_case_ids_are_unique() -> None:
    ids = [i for i, _, _ in CASES]
    assert len(ids) == len(set(ids))


def test_missing_project_file(tmp_path: Path) -> None:
    err = load_error(tmp_path, {P: None})
    assert str(err) == (
        f"{tmp_path}: no healthscore.yml here. Create a project with 'healthscore init "
        f"{tmp_path}' or pass the project folder."
    )
    assert err.message == str(err) and err.details == []


def test_mini_project_loads(tmp_path: Path) -> None:
    write_project(tmp_path)
    config = Project.load(tmp_path).config
    assert [sc.name for sc in config.scorecards] == ["default"]
    assert "logins_30" in config.measures


# ----------------------------------------------------------------------------- message details



def test_yaml_file_not_utf8(tmp_path: Path) -> None:
    err = load_error(tmp_path, {P: PROJECT_YML.replace("mini", "caf\xe9").encode("latin-1")})
    assert str(err).startswith("healthscore.yml: ")


@pytest.mark.parametrize(("files", "first_type"), [
    ({M: "logins_30: {entity: usage_events}\n"}, "'count'"),
    (logins(scheme="scheme: {low: 0, high: 2}"), "'thresholds'"),
], ids=["measure", "scheme"])
def test_missing_type_lists_valid_types(tmp_path: Path, files: dict[str, str],
                                        first_type: str) -> None:
    assert f"needs a 'type:' key. Valid types: {first_type}" in str(load_error(tmp_path, files))


@pytest.mark.parametrize("weight", ["'30%'", "130"])
def test_bare_entry_weight_says_number(tmp_path: Path, weight: str) -> None:
    message = str(load_error(tmp_path, entry(weight)))
    assert message.startswith("scorecards/default.yml: groups.usage.measures.logins_30: must be a "
                              "number between 0 and 100")


@pytest.mark.parametrize(("body", "problem"), [
    ("{weight: '30%'}", "must be a number. Got '30%'."),
    ("{weight: -5}", "must be a number between 0 and 100. Got -5."),
], ids=["not-a-number", "below-0"])
def test_entry_weight_in_a_mapping(tmp_path: Path, body: str, problem: str) -> None:
    err = load_error(tmp_path, entry(body))
    assert err.message == (
        f"scorecards/default.yml: groups.usage.measures.logins_30.weight: {problem}")


@pytest.mark.parametrize("body", ["{weight: '30%'}", "{weight: -5}"],
                         ids=["not-a-number", "below-0"])
def test_entry_weight_error_has_no_second_line(tmp_path: Path, body: str) -> None:
    assert load_error(tmp_path, entry(body)).details == []


def test_max_rejected_share_range(tmp_path: Path) -> None:
    message = str(load_error(tmp_path, sources("tickets: {path: t.csv, max_rejected_share: 5}\n")))
    assert "between 0 and 1." in message


def test_location_keeps_keys_named_like_types(tmp_path: Path) -> None:
    err = load_error(tmp_path, {S: SCORECARD_YML + "bands: [{name: red, min: 0}, "
                                                   "{name: green, min: 120}]\n"})
    assert str(err).startswith("scorecards/default.yml: bands.1.min: ")


def test_bad_stale_after_names_stale_after(tmp_path: Path) -> None:
    err = load_error(tmp_path, sources("tickets: {path: t.csv, stale_after: soon}\n"))
    assert str(err).startswith("healthscore.yml: sources.tickets.stale_after: ")


@pytest.mark.parametrize(("files", "key"), [
    (with_tickets(f"open_t: {{type: count, entity: tickets, mode: open, open_after: soon, "
                  f"{LINEAR}}}\n"), "open_t.open_after"),
    ({M: MEASURES_YML + f"sentiment: {{type: manual, max_age: ages, {LINEAR}}}\n"},
     "sentiment.max_age"),
], ids=["open_after", "max_age"])
def test_bad_duration_names_its_key(tmp_path: Path, files: dict[str, str], key: str) -> None:
    assert str(load_error(tmp_path, files)).startswith(f"measures/usage.yml: {key}: ")


def test_finite_duration_hint_does_not_offer_all(tmp_path: Path) -> None:
    err = load_error(tmp_path, with_tickets(f"open_t: {{type: count, entity: tickets, mode: open, "
                                            f"open_after: all, {LINEAR}}}\n"))
    assert not str(err).endswith("or 'all'.")


@pytest.mark.parametrize("expr", ["'logins_30 +'", "'lower(logins_30)'"], ids=["parse", "syntax"])
def test_expression_error_names_the_file(tmp_path: Path, expr: str) -> None:
    err = load_error(tmp_path, {M: MEASURES_YML + f"e: {{type: expression, expr: {expr}}}\n"})
    assert str(err).startswith("measures/usage.yml: e.expr: ")


def test_percentile_by_error_names_the_measure_file(tmp_path: Path) -> None:
    err = load_error(tmp_path, logins(scheme="scheme: {type: percentile, by: tier}"))
    assert str(err).startswith("measures/usage.yml: logins_30.scheme.by: ")


def test_library_measure_without_source_names_the_scorecard(tmp_path: Path) -> None:
    err = load_error(tmp_path, {M: "", S: "groups: {usage: {weight: 100, measures: "
                                          "{touches_90d: 100}}}\n"})
    assert str(err).startswith("scorecards/default.yml: groups.usage.measures.touches_90d: ")


def test_bad_missing_mentions_numbers(tmp_path: Path) -> None:
    assert "0 and 100" in str(load_error(tmp_path, logins(", missing: none")))


@pytest.mark.parametrize("measure", [
    "r: {type: ratio, numerator: logins_30, denominator: accounts.seats, "
    "scheme: {type: linear, low: 0, high: 1}}",
    "r: {type: attribute, column: tier, scheme: {type: category, map: {a: 100}}}",
], ids=["ratio", "attribute"])
def test_unknown_account_column_or_source_is_a_config_error(tmp_path: Path, measure: str) -> None:
    write_project(tmp_path, {M: MEASURES_YML + measure + "\n",
                             S: "groups: {usage: {weight: 100, measures: {r: 100}}}\n"})
    with pytest.raises(ConfigError):
        Project.load(tmp_path).run(as_of=AS_OF)


def test_duplicate_key_in_one_file(tmp_path: Path) -> None:
    body = MEASURES_YML + MEASURES_YML
    err = load_error(tmp_path, {M: body})
    assert str(err) == (
        "measures/usage.yml: line 2: invalid YAML: duplicate key 'logins_30' (the first one "
        "would be ignored). Check indentation and quoting."
    )


CHECK_ONLY = [
    ("validation-horizon", {"healthscore.yml": PROJECT_YML + "validation: {horizon: 0d}\n"},
     "healthscore.yml: validation.horizon: must be at least one day. Got None."),
    ("validation-from-after-to", {"healthscore.yml": PROJECT_YML
                                  + "validation: {from: 2026-05-31, to: 2026-01-31}\n"},
     "healthscore.yml: validation.from: 2026-05-31 is after validation.to (2026-01-31). Swap them."),
    ("temperature", {"healthscore.yml": PROJECT_YML + "workflow: {temperature: gmv_90d}\n"},
     "healthscore.yml: workflow.temperature: 'gmv_90d' is not a measure of the scorecards. Add it "
     "to a scorecard (an 'also' scorecard will do) or pick another."),
    ("playbook-offset", {"playbooks/x.yml": "p:\n  tasks: [{title: t, offset_days: 1000000000000}]\n"},
     "playbooks/x.yml: p.tasks.0.offset_days: must be at most 3650. Got 1000000000000."),
    ("milestone-due", {"success_plans/x.yml": "t:\n  milestones: [{title: m, due_in: soon}]\n"},
     "success_plans/x.yml: t.milestones[0].due_in: is not a duration: 'soon'. Write a number and "
     "a unit, e.g. '30d', '12 weeks', '3 months', '1 quarter', or 'all'."),
]


@pytest.mark.parametrize(("case", "files", "message"), CHECK_ONLY, ids=[c[0] for c in CHECK_ONLY])
def test_check_validates_what_only_some_commands_read(tmp_path: Path, case: str, files: dict,
                                                     message: str) -> None:
    from healthscore.errors import ConfigError
    from healthscore.project import Project

    write_project(tmp_path, files)
    with pytest.raises(ConfigError) as err:
        Project.load(tmp_path).check()
    assert err.value.message == message


NONSENSE = [
    ("twice", "scorecards: [default, default]",
     "healthscore.yml: scorecards: 'default' is listed twice. List each scorecard once."),
    ("primary-and-also", "scorecards: [default]\nalso: [default]",
     "healthscore.yml: also: 'default' is also a primary scorecard (in 'scorecards'). Keep it in "
     "one of the two."),
    ("memory", "scorecards: [default]\nsettings: {memory_limit: lots}",
     "healthscore.yml: settings.memory_limit: must be a size such as 1500MB or 2GB. Got 'lots'."),
    ("threads", "scorecards: [default]\nsettings: {threads: -1}",
     "healthscore.yml: settings.threads: must be at least 1. Got -1."),
    ("threads-huge", "scorecards: [default]\nsettings: {threads: 1000000}",
     "healthscore.yml: settings.threads: must be at most 256. Got 1000000."),
    ("state-dir", "scorecards: [default]\nstate_dir: ''",
     "healthscore.yml: state_dir: must name a folder, e.g. .healthscore. Got ''."),
]


@pytest.mark.parametrize(("case", "extra", "message"), NONSENSE, ids=[c[0] for c in NONSENSE])
def test_nonsense_in_healthscore_yml_is_refused(tmp_path: Path, case: str, extra: str,
                                                message: str) -> None:
    from healthscore.errors import ConfigError
    from healthscore.project import Project

    write_project(tmp_path, {"healthscore.yml": PROJECT_YML.replace("scorecards: [default]", extra)})
    with pytest.raises(ConfigError) as err:
        Project.load(tmp_path)
    assert err.value.message.startswith(message), err.value.message
