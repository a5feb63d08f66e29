"""The ``keraslab`` application: commands, language selection and error handling.

The language is chosen before Click parses anything (from ``--lang``,
``KERASLAB_LANG`` or the locale) because help texts are rendered during
parsing. Help texts are written in English in the code and translated in
place on the Click command tree. Errors from Click and from the core are
printed in that language with their exit code (usage 2, runtime 1,
interrupted 130), never as a traceback.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from typer import _click

from keraslab_cli import __version__
from keraslab_cli.cli.console import describe_click_error, error_console, print_error
from keraslab_cli.cli.options import Language, LangOption
from keraslab_cli.core.errors import KeraslabError
from keraslab_cli.core.i18n import N_, _, resolve_language, set_language

APP_HELP = N_(
    "keraslab: build, train and look at small neural networks with Keras (PyTorch backend), "
    "following the lab on networks with hand-set weights and on function approximation."
)
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Strings of typer's help screens (typer 0.29.2 rich_utils and core), translated per language.
TYPER_TEXTS = {
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "ABORTED_TEXT": N_("Aborted."),
    "DEFAULT_STRING": N_("[default: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
HELP_OPTION_TEXT = N_("Show this message and exit.")


def scan_language(args: list[str]) -> Optional[str]:
    """Find ``--lang X`` or ``--lang=X`` among the arguments, before parsing."""
    for index, argument in enumerate(args):
        if argument == "--lang" and index + 1 < len(args):
            return args[index + 1]
        if argument.startswith("--lang="):
            return argument.split("=", 1)[1]
    return None


def apply_language(command: _click.Command) -> None:
    """Translate the help of a command tree and typer's own texts in place."""
    from typer import core as typer_core
    from typer import rich_utils

    for key, text in TYPER_TEXTS.items():
        setattr(rich_utils, key, _(text))
    typer_core._ = _
    for item in _walk(command):
        _translate_help_option(item)
        original = item.__dict__.setdefault("_english_help", item.help)
        if original:
            item.help = _(original)
            # The list of commands in the root help shows only the first sentence.
            item.short_help = first_sentence(item.help)
        panel = getattr(item, "rich_help_panel", None)
        if panel:
            item.__dict__.setdefault("_english_panel", panel)
            item.rich_help_panel = _(item.__dict__["_english_panel"])
        for parameter in getattr(item, "params", []):
            english = parameter.__dict__.setdefault("_english_help", getattr(parameter, "help", None))
            if english:
                parameter.help = escape(_(english))
            panel = getattr(parameter, "rich_help_panel", None)
            if panel:
                parameter.__dict__.setdefault("_english_panel", panel)
                parameter.rich_help_panel = _(parameter.__dict__["_english_panel"])


def first_sentence(text: str) -> str:
    """Return the first sentence of a help text: up to the first '.' or ':' outside brackets."""
    depth = 0
    for index, character in enumerate(text):
        if character in "([":
            depth += 1
        elif character in ")]":
            depth = max(depth - 1, 0)
        elif character in ".:" and depth == 0 and (index + 1 == len(text) or text[index + 1].isspace()):
            return text[:index].rstrip() + "."
    return text


def _translate_help_option(command: _click.Command) -> None:
    """Make the command's --help option describe itself in the selected language.

    Click creates that option lazily, with an English help text, the first
    time the command needs it, so its getter is wrapped.
    """
    if "get_help_option" in command.__dict__:
        return
    create = command.get_help_option

    def get_help_option(ctx):
        option = create(ctx)
        if option is not None:
            option.help = _(HELP_OPTION_TEXT)
        return option

    command.get_help_option = get_help_option


def _walk(command: _click.Command):
    yield command
    for child in getattr(command, "commands", {}).values():
        yield from _walk(child)


def _translated_usage_prefix(self, prog: str, args: str = "", prefix: str | None = None) -> None:
    return _original_write_usage(self, prog, args, _("Usage: ") if prefix is None else prefix)


_original_write_usage = _click.formatting.HelpFormatter.write_usage
_click.formatting.HelpFormatter.write_usage = _translated_usage_prefix


class KeraslabGroup(typer.core.TyperGroup):
    """The root group: selects the language, then runs Click and reports errors."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra: Any):
        args = list(sys.argv[1:] if args is None else args)
        set_language(resolve_language(scan_language(args)))
        apply_language(self)
        try:
            result = super().main(args=args, prog_name=prog_name or "keraslab", complete_var=complete_var, standalone_mode=False, **extra)
            exit_code = result if isinstance(result, int) else 0
        except _click.exceptions.NoArgsIsHelpError:
            # Building this error rendered the help already (typer's rich
            # formatter prints as it formats), so it is not printed again.
            exit_code = EXIT_USAGE
        except _click.exceptions.UsageError as error:
            _print_usage_error(error)
            exit_code = EXIT_USAGE
        except KeraslabError as error:
            print_error(error)
            exit_code = error.exit_code
        except typer.Abort:
            # typer turns Ctrl-C into exit code 130 itself, so only an Abort
            # (end of input at a prompt) reaches this branch.
            error_console().print(_("Interrupted."))
            exit_code = EXIT_INTERRUPTED
        except _click.exceptions.ClickException as error:
            print_error(describe_click_error(error))
            exit_code = error.exit_code
        if standalone_mode:
            sys.exit(exit_code)
        return exit_code


def _print_usage_error(error: _click.exceptions.UsageError) -> None:
    console = error_console()
    context = error.ctx
    if context is not None:
        console.print(escape(context.get_usage()))
        console.print(_("Try '{command} --help' for help.").format(command=context.command_path), style="dim")
    print_error(describe_click_error(error), console)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"keraslab {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[bool, typer.Option("--version", help=N_("Print the version and exit."), callback=version_callback, is_eager=True)] = False,
    lang: LangOption = None,
) -> None:
    """Run a command of the neural-network lab."""


def create_app() -> typer.Typer:
    """Assemble the Typer application with every command."""
    from keraslab_cli.cli import approx, handnet, noisy, predict, smallest, sweep

    app = typer.Typer(
        cls=KeraslabGroup,
        help=APP_HELP,
        add_completion=False,
        no_args_is_help=True,
        rich_markup_mode="rich",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    # The order here is the order of the commands in --help: the handout's order.
    for module in (handnet, predict, approx, noisy, sweep, smallest):
        module.register(app)
    return app


app = create_app()


def main() -> None:
    """Run keraslab as a console script."""
    command = typer.main.get_command(app)
    command.main(prog_name="keraslab")


__all__ = ["app", "create_app", "main", "Language"]
