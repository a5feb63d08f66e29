"""``keraslab sweep approx|noisy``: a parameter study from lists of flag values."""

from __future__ import annotations

import inspect
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperCommand
from rich.table import Table

from keraslab_cli.cli.console import make_console, print_error
from keraslab_cli.cli.options import LangOption, common_parameters, options_for, typer_parameter, with_signature
from keraslab_cli.cli.training_command import exit_code_for
from keraslab_cli.core.i18n import N_, _, format_number

HELP = N_(
    "Run a parameter study: every combination of the values given to the flags of approx or noisy. "
    "Each flag takes a list (--p 2,5,10), an inclusive range (--p 2:10:2) or, for on/off flags, "
    "true,false or both (--normalize both; --normalize alone means true). Prints a table ranked by "
    "final loss (sweep noisy: by MSE of F against f) and saves sweep.csv, "
    "losses.png (every loss curve) and fits.png (one small fit plot per configuration) in outputs/sweep/NAME. "
    "Intervals are written \"0 5,-1 1\". Runs already made with identical parameters are reused, so an interrupted sweep resumes."
)
COMMAND_HELP = {
    "approx": N_("Sweep the flags of approx. Example: keraslab sweep approx --p 2,5,10 --epochs 1000,4000 --optimizer sgd,adam --normalize both"),
    "noisy": N_("Sweep the flags of noisy. Example: keraslab sweep noisy --sigma 0.1,0.3 --epochs 1000,4000 --repeat 3"),
}
SWEEP = N_("Sweep")
EXIT_FAILED = 1

RepeatOption = Annotated[int, typer.Option("--repeat", min=1, help=N_("Runs per configuration, with seeds --seed, --seed + 1, …; the table shows mean ± standard deviation."), rich_help_panel=SWEEP)]
JobsOption = Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help=N_("Worker processes training in parallel, each with one torch thread. Default: the number of cores."), rich_help_panel=SWEEP)]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help=N_("List the runs (and which are reused) without training."), rich_help_panel=SWEEP)]
ForceOption = Annotated[bool, typer.Option("--force", help=N_("Train again even the runs whose identical configuration already exists."), rich_help_panel=SWEEP)]


class SweepCommand(TyperCommand):
    """A sweep command where an on/off flag given alone means ``true``.

    Every sweep flag takes a value, so ``--normalize --p 2`` would read
    ``--p`` as the value of ``--normalize``. The vendored Click has no
    option with an optional value, so ``true`` is inserted after a bare
    on/off flag: one that is last or followed by another option.
    """

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, supply_flag_values(args, on_off_flags(self.params)))


def on_off_flags(params) -> set[str]:
    """Return the flags of the on/off training options (``--normalize``, ``--nesterov``)."""
    from keraslab_cli.cli.options import TRAINING_OPTIONS

    fields = {option.field for option in TRAINING_OPTIONS if option.type is bool}
    return {flag for param in params if param.name in fields for flag in param.opts}


def supply_flag_values(args: list[str], flags: set[str]) -> list[str]:
    """Insert ``true`` after each flag of ``flags`` that has no value, before ``--`` ends the options."""
    supplied: list[str] = []
    for position, argument in enumerate(args):
        if argument == "--":
            return supplied + args[position:]
        supplied.append(argument)
        following = args[position + 1] if position + 1 < len(args) else None
        if argument in flags and (following is None or following.startswith("-")):
            supplied.append("true")
    return supplied


def sweep_parameters(command: str) -> list[inspect.Parameter]:
    """Return the options of ``sweep COMMAND``: every training flag as text, then the sweep's own."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    return (
        [typer_parameter(option, as_text=True) for option in options_for(command)]
        + [
            inspect.Parameter("repeat", keyword, default=1, annotation=RepeatOption),
            inspect.Parameter("jobs", keyword, default=None, annotation=JobsOption),
            inspect.Parameter("dry_run", keyword, default=False, annotation=DryRunOption),
            inspect.Parameter("force", keyword, default=False, annotation=ForceOption),
        ]
        + common_parameters()
    )


def run_sweep_command(command: str, values: dict) -> None:
    """Plan the sweep, run it (or list it with --dry-run), report it; exit 1 if a run failed."""
    from keraslab_cli.core.sweep import plan_sweep, run_sweep, summarize, sweep_document, write_sweep_outputs

    json_output = values["json_output"]
    console = make_console(quiet=values["quiet"] or json_output)
    texts = {option.field: values[option.field] for option in options_for(command) if values[option.field] is not None}
    plan = plan_sweep(command, texts, Path(values["outputs"]), values["repeat"], values["name"], values["force"])
    if values["dry_run"]:
        if json_output:
            typer.echo(json.dumps(plan_document(plan), ensure_ascii=False))
        console.print(plan_table(plan))
        return

    engine = getattr(values["engine"], "value", values["engine"])
    with RunReporter(console, plan) as reporter, stop_on_signals(plan, reporter):
        outcomes = run_sweep(plan, values["jobs"], engine, ["keraslab", *sys.argv[1:]], on_outcome=reporter.report)
    summaries = summarize(plan, outcomes)
    files = write_sweep_outputs(plan, summaries, outcomes)
    if json_output:
        typer.echo(json.dumps(sweep_document(plan, summaries, outcomes, files), ensure_ascii=False, default=str))
    console.print(ranked_table(plan, summaries))
    console.print(_("Sweep folder: {folder} (sweep.csv, losses.png, fits.png)").format(folder=escape(str(plan.folder))))

    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    for outcome in failed:
        print_error(_("Run {run} failed: {reason}").format(run=outcome.index + 1, reason=outcome.error))
    if failed:
        raise typer.Exit(EXIT_FAILED)


@contextmanager
def stop_on_signals(plan, reporter: "RunReporter"):
    """Stop the sweep on SIGINT or SIGTERM, say how far it got, and exit 130 or 143.

    The SIGINT handler of ``keraslab_cli.entry`` exits at once without a
    message, so the sweep installs its own for the time it runs.
    """
    def interrupt(number, _frame):
        reporter.signal_number = number
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        from keraslab_cli.core.i18n import plural

        total = len(plan.runs)
        done = plural(total, N_("Sweep interrupted: {done} of {total} run finished."), N_("Sweep interrupted: {done} of {total} runs finished."))
        print_error(done.format(done=reporter.done, total=total) + " " + _("Run the same command again to resume: it reuses the finished runs and trains the others."))
        raise typer.Exit(exit_code_for(reporter.signal_number)) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class RunReporter:
    """Prints one line per finished run, under a progress bar on a terminal."""

    def __init__(self, console, plan) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.plan = plan
        self.done = 0
        self.signal_number: int | None = None
        self.progress = Progress(TextColumn(_("Sweep")), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=not console.is_terminal)
        self.task = None

    def __enter__(self) -> "RunReporter":
        self.progress.start()
        self.task = self.progress.add_task("", total=len(self.plan.runs))
        from keraslab_cli.core.i18n import plural

        runs = plural(len(self.plan.runs), N_("{count} run"), N_("{count} runs")).format(count=len(self.plan.runs))
        if self.plan.repeat > 1:
            configurations = plural(len(self.plan.configurations), N_("{count} configuration"), N_("{count} configurations")).format(count=len(self.plan.configurations))
            self.console.print(_("{runs}: {configurations} × {repeat} seeds").format(runs=runs, configurations=configurations, repeat=self.plan.repeat))
        else:
            self.console.print(_("{runs}, one per configuration").format(runs=runs))
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def report(self, run, outcome) -> None:
        from keraslab_cli.core.sweep import describe_values, varying_fields

        self.done += 1
        self.progress.update(self.task, completed=self.done)
        label = describe_values(run.spec, [*varying_fields(self.plan), *(["seed"] if self.plan.repeat > 1 else [])]) or run.folder.name
        if outcome.status == "failed":
            result = f"[red]{escape(_('failed'))}[/]"
        else:
            from keraslab_cli.cli.render import status_label

            result = _("final loss {loss}").format(loss=format_number(outcome.metrics.get("final_loss"), 4))
            result += " · " + (_("reused") if outcome.reused else _("{seconds} s").format(seconds=format_number(outcome.metrics.get("total_seconds"), 3)))
            if outcome.status not in ("completed", "early_stopped"):
                result += f" · [red]{escape(status_label(outcome.status))}[/]"
        self.console.print(f"[{self.done}/{len(self.plan.runs)}] {escape(label)}: {result}")


def plan_table(plan) -> Table:
    """Build the table of a dry run: every run, its seed and whether it is reused."""
    from keraslab_cli.core.i18n import plural
    from keraslab_cli.core.sweep import display_label, format_value, varying_fields

    varying = varying_fields(plan)
    title = plural(len(plan.runs), N_("Sweep {command}: {runs} run planned, none trained (--dry-run)"), N_("Sweep {command}: {runs} runs planned, none trained (--dry-run)"))
    table = Table(title=title.format(command=plan.command, runs=len(plan.runs)), title_justify="left")
    table.add_column("#", justify="right")
    for name in varying:
        table.add_column(display_label(name))
    table.add_column(_("seed"), justify="right")
    table.add_column(_("action"))
    table.add_column(_("run folder in {folder}").format(folder=escape(str(plan.outputs / plan.command))), overflow="fold")
    for run in plan.runs:
        action = _("reuse") if run.reusable else _("train")
        table.add_row(str(run.index + 1), *(format_value(name, getattr(run.spec, name), run.spec) for name in varying), str(run.spec.seed), action, escape(run.folder.name))
    return table


def plan_document(plan) -> dict:
    """Return the JSON document of a dry run."""
    return {
        "command": plan.command,
        "folder": str(plan.folder),
        "runs": [{"run": run.index + 1, "configuration": run.configuration + 1, "config": run.spec.to_dict(), "folder": str(run.folder), "reuse": run.reusable} for run in plan.runs],
    }


def ranked_table(plan, summaries) -> Table:
    """Build the table of configurations ranked by final loss (noisy: by MSE(F, f)), failures last."""
    from keraslab_cli.cli.render import status_label
    from keraslab_cli.core.i18n import plural
    from keraslab_cli.core.sweep import display_label, format_value, varying_fields

    varying = varying_fields(plan)
    from keraslab_cli.core.sweep import ranking_metric

    if ranking_metric(plan) == "dense_mse":
        title = plural(len(summaries), N_("Sweep {command}: {count} configuration ranked by MSE(F, f) on the interval"), N_("Sweep {command}: {count} configurations ranked by MSE(F, f) on the interval"))
    else:
        title = plural(len(summaries), N_("Sweep {command}: {count} configuration ranked by final loss"), N_("Sweep {command}: {count} configurations ranked by final loss"))
    title = title.format(command=plan.command, count=len(summaries))
    if plan.repeat > 1:
        title += " " + _("(mean ± standard deviation over {count} seeds)").format(count=plan.repeat)
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    for name in varying:
        table.add_column(display_label(name))
    with_validation = any(summary.val_loss is not None for summary in summaries)
    with_epochs = "epochs" not in varying
    headers = [_("final loss")] + ([_("validation loss")] if with_validation else []) + [_("MSE(F, f)"), _("parameters")] + ([_("epochs")] if with_epochs else []) + [_("ms per epoch"), _("time (s)")]
    for header in headers:
        table.add_column(header, justify="right")
    table.add_column(_("status"), no_wrap=True)
    for summary in summaries:
        style = None if summary.status == "completed" else "red"
        table.add_row(
            str(summary.rank),
            *(format_value(name, getattr(summary.spec, name), summary.spec) for name in varying),
            _with_std(summary.final_loss, summary.final_loss_std),
            *([_with_std(summary.val_loss, summary.val_loss_std)] if with_validation else []),
            _with_std(summary.dense_mse, summary.dense_mse_std),
            format_number(summary.trainable_params),
            *([format_number(summary.spec.epochs)] if with_epochs else []),
            format_number(summary.ms_per_epoch, 3),
            format_number(summary.seconds, 3),
            status_label(summary.status),
            style=style,
        )
    return table


def _with_std(mean: float | None, std: float | None) -> str:
    text = format_number(mean, 4)
    return text if std is None else f"{text} ± {format_number(std, 2)}"


def register(app: typer.Typer) -> None:
    """Add ``sweep approx`` and ``sweep noisy`` to the application."""
    sweep_app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode="rich")
    # The group takes --lang too, so that `sweep --help --lang fr` parses; the
    # language itself is chosen before parsing, in KeraslabGroup.main.
    sweep_app.callback()(_sweep_group)
    for command in ("approx", "noisy"):
        sweep_app.command(command, help=COMMAND_HELP[command], cls=SweepCommand)(with_signature(_command_for(command), sweep_parameters(command)))
    app.add_typer(sweep_app, name="sweep", help=HELP)


def _sweep_group(lang: LangOption = None) -> None:
    """Run a parameter study over the flags of approx or noisy."""


def _command_for(command: str):
    def sweep_command(**values) -> None:
        run_sweep_command(command, values)

    sweep_command.__name__ = f"sweep_{command}"
    return sweep_command
