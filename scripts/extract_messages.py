"""Extract every translatable message of keraslab into a gettext template.

Messages are the string literals passed to ``_()`` and ``N_()`` in the
package's Python files. The template ``keraslab_cli/locale/keraslab.pot`` is
what translators merge into their catalogs with the usual tools:

    .venv/bin/python scripts/extract_messages.py
    msgmerge --update keraslab_cli/locale/fr/LC_MESSAGES/keraslab.po keraslab_cli/locale/keraslab.pot

(``pybabel update -i keraslab_cli/locale/keraslab.pot -o <file.po> -l fr``
does the same as msgmerge.) The template contains the messages of every
command, so a merged catalog also lists those that another catalog
translates. keraslab skips empty and fuzzy entries, so they do no harm.
``pybabel extract -k _ -k N_ --no-default-keywords -o
keraslab_cli/locale/keraslab.pot keraslab_cli`` extracts the same messages,
except a ``_('...')`` written inside an f-string, which only this script finds.
"""

from __future__ import annotations

import re
import sys
import tokenize
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keraslab_cli"
TEMPLATE = PACKAGE / "locale" / "keraslab.pot"
KEYWORDS = {"_": None, "N_": None}
METHOD_MAP = [("**.py", "python")]
# Python 3.11 tokenizes an f-string as one string, so Babel does not see a
# _('...') call written inside one. This pattern finds them in its text.
CALL_IN_FSTRING = re.compile(r"""\bN?_\((?P<quote>['"])(?P<message>.+?)(?P=quote)\)""")


def extract_messages(package: Path = PACKAGE) -> list[tuple[str, int, str]]:
    """Return (file relative to the repository, line, msgid) for every marked message."""
    found = []
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(package), method_map=METHOD_MAP, keywords=KEYWORDS
    ):
        if isinstance(message, str) and message:
            relative = (package / filename).relative_to(package.parent).as_posix()
            found.append((relative, lineno, message))
    return found + _calls_in_fstrings(package)


def _calls_in_fstrings(package: Path) -> list[tuple[str, int, str]]:
    found = []
    for source in sorted(package.rglob("*.py")):
        relative = source.relative_to(package.parent).as_posix()
        with source.open("rb") as handle:
            for token in tokenize.tokenize(handle.readline):
                prefix = token.string[: len(token.string) - len(token.string.lstrip("rRbBuUfF"))]
                if token.type == tokenize.STRING and "f" in prefix.lower():
                    for match in CALL_IN_FSTRING.finditer(token.string):
                        found.append((relative, token.start[0], match["message"]))
    return found


def build_template(messages: list[tuple[str, int, str]]) -> Catalog:
    """Build a gettext template with one entry per msgid and all its locations."""
    catalog = Catalog(project="keraslab", charset="utf-8", fuzzy=False)
    for filename, lineno, message in messages:
        catalog.add(message, locations=[(filename, lineno)], flags=_flags(message))
    return catalog


def _flags(message: str) -> tuple[str, ...]:
    # msgfmt --check verifies that a translation keeps the {fields} of a message with this flag.
    return ("python-brace-format",) if "{" in message else ()


def main() -> int:
    messages = extract_messages()
    with TEMPLATE.open("wb") as handle:
        write_po(handle, build_template(messages), width=100, omit_header=False, sort_output=False)
    print(f"{len(set(message for _f, _l, message in messages))} messages written to {TEMPLATE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
