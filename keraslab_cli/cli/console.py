"""Console creation and error display, shared by every command."""

from __future__ import annotations

import re
import sys

from rich.console import Console
from rich.markup import escape

from keraslab_cli.core.errors import InvalidFile, InvalidValue, KeraslabError
from keraslab_cli.core.i18n import N_, _
from keraslab_cli.cli.options import flag_for


def make_console(stderr: bool = False, quiet: bool = False) -> Console:
    """Create the console a command writes to (stdout by default)."""
    return Console(stderr=stderr, quiet=quiet, highlight=False, soft_wrap=False)


def error_console() -> Console:
    """Create the console errors are printed to (stderr)."""
    return Console(stderr=True, highlight=False)


def describe_error(error: KeraslabError) -> str:
    """Return the translated one-paragraph text of a keraslab error."""
    if isinstance(error, InvalidValue):
        return _("Invalid value for {flag}: {value}. Expected {expected}.").format(
            flag=flag_for(error.field), value=_show(error.value), expected=error.expected
        )
    if isinstance(error, InvalidFile):
        return _("Cannot use the file {path}: {problem}").format(path=error.path, problem=error.problem)
    return str(error)


def print_error(error: KeraslabError | str, console: Console | None = None) -> None:
    """Print an error on stderr, prefixed with 'Error:' in the user's language."""
    console = console or error_console()
    text = error if isinstance(error, str) else describe_error(error)
    console.print(f"[bold red]{escape(_('Error:'))}[/] {escape(text)}")


def _show(value) -> str:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or not value else value
    return str(value)


# Click's usage errors are plain English f-strings in typer's vendored Click,
# so they are translated here by their shape (typer 0.29.2).
CLICK_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^No such option: (?P<name>\S+)(?: Did you mean (?P<suggestion>\S+)\?)?", N_("No such option: {name}.")),
    (r"^No such command '(?P<name>[^']*)'\.", N_("No such command '{name}'.")),
    (r"^Missing option '(?P<name>[^']*)'\.", N_("Missing option '{name}'.")),
    (r"^Missing argument '(?P<name>[^']*)'\.", N_("Missing argument '{name}'.")),
    (r"^Missing parameter: (?P<name>\S+)", N_("Missing parameter: {name}.")),
    (r"^Option '(?P<name>[^']*)' requires an argument\.", N_("Option '{name}' requires a value.")),
    (r"^Option '(?P<name>[^']*)' requires (?P<count>\d+) arguments\.", N_("Option '{name}' requires {count} values.")),
    (r"^Got unexpected extra arguments? \((?P<name>.*)\)", N_("Unexpected extra argument: {name}.")),
    (r"^Invalid value for (?P<name>[^:]+): '(?P<value>.*)' is not a valid integer\.", N_("Invalid value for {name}: '{value}' is not a whole number.")),
    (r"^Invalid value for (?P<name>[^:]+): '(?P<value>.*)' is not a valid float\.", N_("Invalid value for {name}: '{value}' is not a number.")),
    (r"^Invalid value for (?P<name>[^:]+): '(?P<value>.*)' is not a valid boolean\.", N_("Invalid value for {name}: '{value}' is not true or false.")),
    (r"^Invalid value for (?P<name>[^:]+): '(?P<value>.*)' is not one of (?P<choices>.*)\.", N_("Invalid value for {name}: '{value}' is not one of {choices}.")),
    (r"^Invalid value for (?P<name>[^:]+): (?P<value>.*) is not in the range (?P<range>.*)\.", N_("Invalid value for {name}: {value} is not in the range {range}.")),
    (r"^Invalid value for (?P<name>[^:]+): (?P<value>.*?) does not exist\.", N_("Invalid value for {name}: {value} does not exist.")),
)


def translate_click_message(message: str) -> str:
    """Translate one of Click's usage error messages, or return it unchanged."""
    for pattern, template in CLICK_PATTERNS:
        match = re.match(pattern, message, flags=re.DOTALL)
        if match:
            text = _(template).format(**{key: value or "" for key, value in match.groupdict().items()})
            suggestion = match.groupdict().get("suggestion")
            if suggestion:
                text += " " + _("Did you mean {name}?").format(name=suggestion)
            return text
    return message


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
