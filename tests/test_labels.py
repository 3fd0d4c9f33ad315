"""A group's or measure's YAML ``label:``: one text or one per language; shown in the reader's
language, else English, else the one text, else the id; labels change no scorecard version."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthscore import Project
from healthscore.config.labels import LANGUAGES, pick_label, resolve_label
from healthscore.web.i18n import LANGUAGES as APP_LANGUAGES
from tests.projects import write_project

MEASURE = ("logins_30: {type: count, entity: usage_events, filter: \"event = 'login'\", window: 30d, "
           "scheme: {type: linear, low: 0, high: 2}LABEL}\n")


def test_labels_are_written_in_the_apps_languages() -> None:
    assert LANGUAGES == tuple(APP_LANGUAGES)


@pytest.mark.parametrize(("label", "lang", "shown"), [
    ({"en": "Logins", "pl": "Logowania"}, "pl", "Logowania"),  # the reader's language
    ({"en": "Logins", "pl": "Logowania"}, "zh", "Logins"),  # else English
    ({"pl": "Logowania"}, "ru", "logins_30"),  # else the default: here the id
    ("Logins", "ru", "Logins"),  # one text: every language
    (None, "pl", "logins_30"),
])
def test_a_label_falls_back_to_english_then_the_text_then_the_id(label: object, lang: str,
                                                                 shown: str) -> None:
    default, labels = resolve_label(label, "m.yml: logins_30.label")  # type: ignore[arg-type]
    assert pick_label(labels, default or "logins_30", lang) == shown


def _load(root: Path, group_label: str, measure_label: str) -> Project:
    write_project(root, {
        "scorecards/default.yml":
            f"groups: {{usage: {{weight: 100{group_label}, measures: {{logins_30: 100}}}}}}\n",
        "measures/usage.yml": MEASURE.replace("LABEL", measure_label)})
    return Project.load(root)


def test_labels_per_language_resolve_and_leave_the_version_alone(tmp_path: Path) -> None:
    plain = _load(tmp_path / "a", ", label: Usage", "")
    mapped = _load(tmp_path / "b", ", label: {en: Usage, pl: Użycie, zh: 使用}",
                   ", label: {en: Logins, ru: Входы}")
    (group,) = mapped.config.scorecards[0].groups
    assert (group.label, group.labels) == ("Usage", (("en", "Usage"), ("pl", "Użycie"), ("zh", "使用")))
    measure = mapped.config.measures["logins_30"]
    assert (measure.label, measure.labels) == ("Logins", (("en", "Logins"), ("ru", "Входы")))
    assert plain.config.scorecards[0].groups[0].labels == ()
    sc = {p: p.config.scorecards[0] for p in (plain, mapped)}
    assert sc[plain].version(plain.config.measures) == sc[mapped].version(mapped.config.measures)
