"""What a group (a module) or a measure is called: the YAML ``label:``, one text or one per
language (``label: {en: Logins, pl: Logowania}``). Shown in the reader's language, else in
English, else the one text, else the id."""

from __future__ import annotations

from collections.abc import Mapping

from healthscore.errors import ConfigError

# the languages a label may be written in: the web app's (healthscore.web.i18n.LANGUAGES)
LANGUAGES = ("en", "pl", "ru", "zh")

Labels = tuple[tuple[str, str], ...]  # (language, text), in LANGUAGES' order


def resolve_label(label: str | Mapping[str, str] | None, where: str) -> tuple[str | None, Labels]:
    """``label`` as the text to show by default (the English one of a mapping; None when there
    is none) and the text per language; a mapping with an unknown language or an empty text
    is refused (``where`` names its file and key)."""
    if label is None or isinstance(label, str):
        return label or None, ()
    if not label:
        raise ConfigError(f"{where}: no language given. Write one text, or one per language, e.g. "
                          f"{{en: Logins, pl: Logowania}}.")
    for lang, text in label.items():
        if lang not in LANGUAGES:
            raise ConfigError(f"{where}: unknown language {lang!r}. Languages: {', '.join(LANGUAGES)}.")
        if not text.strip():
            raise ConfigError(f"{where}.{lang}: empty text. Write the {lang} label, or leave {lang} out.")
    return label.get("en"), tuple((lang, label[lang]) for lang in LANGUAGES if lang in label)


def pick_label(labels: Labels | Mapping[str, str], default: str, lang: str) -> str:
    """The label in ``lang``, else the English one, else ``default`` (the one text or the id)."""
    by_lang = dict(labels)
    return by_lang.get(lang) or by_lang.get("en") or default
