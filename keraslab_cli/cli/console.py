"""Console creation and error display, shared by every command."""

from __future__ import annotations

import difflib
import re
import sys

from rich.console import Console
from rich.markup import escape
from typer._click import exceptions as click_exceptions

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
    label = _("Error:")
    console.print(f"[bold red]{escape(label)}[/] {escape(text)}")


def _show(value) -> str:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, str):
        return repr(value) if value.strip() != value or not value else value
    return str(value)


# Click's usage errors are plain English f-strings in typer's vendored Click
# (typer 0.29.2). describe_click_error rebuilds the common ones from the
# exception's fields (the option, the value received, the valid choices), and
# translate_click_message recognizes the others by the shape of their text.
NO_SUCH_COMMAND = r"^No such command '(?P<name>[^']*)'\."
CLICK_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^No such option: (?P<name>\S+?)\.?$", N_("No such option: {name}.")),
    (NO_SUCH_COMMAND, N_("No such command '{name}'.")),
    (r"^Missing command\.", N_("Missing command: give one of the commands listed by --help.")),
    (r"^Missing option (?P<name>'.*?')(?:\.|$)", N_("Missing option {name}.")),
    (r"^Missing argument (?P<name>'.*?')(?:\.|$)", N_("Missing argument {name}.")),
    (r"^Missing parameter: (?P<name>\S+)", N_("Missing parameter {name}.")),
    (r"^Option '(?P<name>[^']*)' requires an argument\.", N_("Option {name} requires a value.")),
    (r"^Option '(?P<name>[^']*)' requires (?P<count>\d+) arguments\.", N_("Option {name} requires {count} values.")),
    (r"^Option '(?P<name>[^']*)' does not take a value\.", N_("Option {name} does not take a value.")),
    (r"^Got unexpected extra argument(?:s|\(s\))? \((?P<name>.*)\)", N_("Unexpected extra argument: {name}.")),
)

# Reasons of typer's path checks, after "Invalid value for '--flag': ".
PATH_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^(?:file|dir|path) '(?P<value>.*)' does not exist\.$", N_("Invalid value for {flag}: '{value}' does not exist.")),
    (r"^(?:file|dir|path) '(?P<value>.*)' is a file\.$", N_("Invalid value for {flag}: '{value}' is a file, not a folder.")),
    (r"^(?:file|dir|path) '(?P<value>.*)' is a directory\.$", N_("Invalid value for {flag}: '{value}' is a folder, not a file.")),
    (r"^(?:file|dir|path) '(?P<value>.*)' is not readable\.$", N_("Invalid value for {flag}: '{value}' is not readable.")),
    (r"^(?:file|dir|path) '(?P<value>.*)' is not writable\.$", N_("Invalid value for {flag}: '{value}' is not writable.")),
)

# Pydantic error types of typer's value coercion, by the kind of value expected.
VALUE_TEMPLATES = {
    "int_parsing": N_("Invalid value for {flag}: '{value}' is not an integer."),
    "int_from_float": N_("Invalid value for {flag}: '{value}' is not an integer."),
    "int_type": N_("Invalid value for {flag}: '{value}' is not an integer."),
    "float_parsing": N_("Invalid value for {flag}: '{value}' is not a number."),
    "float_type": N_("Invalid value for {flag}: '{value}' is not a number."),
    "bool_parsing": N_("Invalid value for {flag}: '{value}' is not a boolean (true or false)."),
    "greater_than_equal": N_("Invalid value for {flag}: {value} is below the minimum {limit}."),
    "greater_than": N_("Invalid value for {flag}: {value} must be greater than {limit}."),
    "less_than_equal": N_("Invalid value for {flag}: {value} is above the maximum {limit}."),
    "less_than": N_("Invalid value for {flag}: {value} must be less than {limit}."),
}
LIMIT_OF_TYPE = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}
DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")


def describe_click_error(error: click_exceptions.ClickException) -> str:
    """Return a Click usage error as a sentence in the selected language that names the flag."""
    if isinstance(error, click_exceptions.NoSuchOption):
        return _unknown_option(error)
    if isinstance(error, click_exceptions.BadParameter) and not isinstance(error, click_exceptions.MissingParameter):
        text = _invalid_value(error)
        if text:
            return text
    text = translate_click_message(error.format_message())
    match = re.match(NO_SUCH_COMMAND, error.format_message())
    if match and isinstance(error, click_exceptions.UsageError):
        text += _suggestion(match["name"], _command_names(error.ctx))
    return text


def translate_click_message(message: str) -> str:
    """Translate one of Click's usage error messages by its shape, or return it unchanged."""
    for pattern, template in CLICK_PATTERNS:
        match = re.match(pattern, message, flags=re.DOTALL)
        if match:
            # Click quotes names ('--p' / '--units'); the templates add quotes where they want them.
            fields = {key: (value or "").replace("'", "") for key, value in match.groupdict().items()}
            return _(template).format(**fields)
    return message


def _unknown_option(error: click_exceptions.NoSuchOption) -> str:
    text = _("No such option: {name}.").format(name=_printable(error.option_name))
    return text + _suggestion(error.option_name, error.possibilities or [])


def _suggestion(name: str, candidates) -> str:
    """Return " Did you mean X?" for the candidates closest to a mistyped name, or ""."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.7)
    if not close:
        return ""
    return " " + _("Did you mean {names}?").format(names=", ".join(close))


def _command_names(context) -> list[str]:
    group = getattr(context, "command", None)
    if context is None or not hasattr(group, "list_commands"):
        return []
    return list(group.list_commands(context))


def _invalid_value(error: click_exceptions.BadParameter) -> str | None:
    """Describe a value that typer could not convert, from the pydantic error behind it."""
    if error.param is None:
        return None
    flag = error.param.get_error_hint().replace("'", "")
    for pattern, template in PATH_PATTERNS:
        match = re.match(pattern, error.message)
        if match:
            return _(template).format(flag=flag, value=match["value"])
    details = _validation_details(error.__cause__)
    if details is None:
        return None
    kind, value = details["type"], _printable(details.get("input"))
    if kind == "value_error":
        reason = str((details.get("ctx") or {}).get("error", ""))
        choices = re.search(r"is not one of (?P<choices>.*)\.$", reason)
        if choices:
            return _("Invalid value for {flag}: '{value}' is not one of {choices}.").format(
                flag=flag, value=value, choices=choices["choices"].replace("'", "")
            )
        return None
    if kind not in VALUE_TEMPLATES:
        # pydantic's own reason stays in English, but the flag and the value are shown.
        return _("Invalid value for {flag}: '{value}' ({reason}).").format(flag=flag, value=value, reason=_printable(details.get("msg", "")))
    limit = (details.get("ctx") or {}).get(LIMIT_OF_TYPE.get(kind, ""), "")
    text = _(VALUE_TEMPLATES[kind]).format(flag=flag, value=value, limit=limit)
    if kind.startswith("float") and isinstance(value, str) and DECIMAL_COMMA.match(value):
        text += " " + _("Write decimals with a point: {value}.").format(value=value.replace(",", "."))
    return text


def _printable(value) -> str:
    """Return a value as text with control characters escaped, so it cannot drive the terminal."""
    text = str(value)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _validation_details(cause) -> dict | None:
    """Return the first error of a pydantic ValidationError, or None for any other cause."""
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return None
    try:
        found = errors()
    except TypeError:
        return None
    return found[0] if found else None


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
