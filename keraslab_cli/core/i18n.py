"""Message translation (gettext catalogs) and language selection.

Messages are written in English in the code and marked with ``_()`` (translate
now) or ``N_()`` (mark for extraction, translate later). French translations
live in standard ``.po`` files under ``keraslab_cli/locale/fr/LC_MESSAGES/``.
They are read with Babel when first needed, so no compiled ``.mo`` file is
committed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "fr")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGE_VARIABLE = "KERASLAB_LANG"

_state = {"language": "en"}


def resolve_language(flag: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Choose the language: the flag, then KERASLAB_LANG, then the locale, then English.

    An invalid flag is skipped, so that the error Click then reports about it
    is in the language of the environment.

    Args:
        flag: value of ``--lang``, or None when it was not given.
        environ: environment to read, default ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    if flag in LANGUAGES:
        return flag
    explicit = environ.get(LANGUAGE_VARIABLE, "").strip().lower()
    if explicit in LANGUAGES:
        return explicit
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable, "")
        if value:
            # The first locale variable that is set decides, as in POSIX.
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def set_language(language: str) -> None:
    """Select the language of every message from now on."""
    _state["language"] = language if language in LANGUAGES else "en"


def get_language() -> str:
    """Return the selected language code."""
    return _state["language"]


@cache
def load_catalog(language: str) -> dict[str, str]:
    """Read every ``.po`` file of a language into a msgid -> msgstr mapping."""
    from babel.messages.pofile import read_po

    catalog: dict[str, str] = {}
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    for po_path in sorted(folder.glob("*.po")):
        with po_path.open("rb") as handle:
            for message in read_po(handle):
                if message.id and message.string and not message.fuzzy:
                    catalog[str(message.id)] = str(message.string)
    return catalog


def _(message: str) -> str:
    """Translate a message into the selected language."""
    language = get_language()
    if language == "en" or not message:
        return message
    return load_catalog(language).get(message, message)


def plural(count: int, singular: str, plural_form: str) -> str:
    """Translate the singular or the plural message, whichever ``count`` takes.

    French uses the singular for 0 and 1, English for 1 only. Mark both
    messages with ``N_()`` so they are extracted.
    """
    use_singular = count in (0, 1) if get_language() == "fr" else count == 1
    return _(singular if use_singular else plural_form)


def N_(message: str) -> str:
    """Mark a message for extraction without translating it yet."""
    return message


def format_number(
    value: float | int | None,
    digits: int = 4,
    *,
    scientific_below: float = 1e-3,
    decimal_comma: bool | None = None,
) -> str:
    """Format a number for a table: a decimal comma in French, a point in English.

    Args:
        value: the number; None gives an em dash.
        digits: significant digits, default 4.
        scientific_below: magnitudes below this (but not 0) use scientific notation, default 1e-3.
        decimal_comma: force the separator; default None follows the language.
    """
    french = get_language() == "fr" if decimal_comma is None else decimal_comma
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace(",", "\u202f" if french else ",")
    if value != value:
        return "NaN"
    if value != 0 and abs(value) < scientific_below:
        text = f"{value:.{max(digits - 1, 1)}e}"
    else:
        text = f"{value:.{digits}g}"
    if french:
        text = text.replace(".", ",")
    return text


def format_plot_number(value: float | int | None, digits: int = 4) -> str:
    """Format a number for a figure: always a decimal point, like the axis ticks.

    Decimal commas appear in French tables only; figures keep Matplotlib's point
    so that titles and tick labels agree.
    """
    return format_number(value, digits, decimal_comma=False)
