"""The shared body of the approx and noisy commands: run, report, exit."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import typer

from keraslab_cli.cli.console import make_console, print_error
from keraslab_cli.cli.options import options_for
from keraslab_cli.cli.render import EpochProgress, architecture_table, summary_table
from keraslab_cli.core.i18n import _
from keraslab_cli.core.spec import ExperimentSpec

EXIT_DIVERGED = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def spec_from_values(command: str, values: dict) -> ExperimentSpec:
    """Build the specification of a command from its parsed option values."""
    fields = {option.field: values[option.field] for option in options_for(command)}
    if "interval" in fields:
        fields["interval"] = tuple(float(bound) for bound in fields["interval"])
    return ExperimentSpec(command=command, **fields)


@contextmanager
def stop_on_signals(stop):
    """Turn SIGINT and SIGTERM into a stop request while training runs."""
    def request(signal_number, _frame):
        stop.signal_number = signal_number

    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, request)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_training_command(command: str, values: dict) -> None:
    """Validate, train, write the run folder and report it; exit non-zero on failure."""
    from keraslab_cli.core.experiment import prepare_run

    quiet, json_output = values["quiet"], values["json_output"]
    console = make_console(quiet=quiet or json_output)
    spec = spec_from_values(command, values)
    prepared = prepare_run(spec, Path(values["outputs"]), values["name"])

    from keraslab_cli.core.experiment import run_experiment
    from keraslab_cli.core.training import StopRequest

    show_progress = console.is_terminal and not (quiet or json_output)
    with stop_on_signals(StopRequest()) as stop, EpochProgress(console, spec.epochs, show_progress) as progress:
        result = run_experiment(
            spec,
            Path(values["outputs"]),
            values["name"],
            on_epoch=progress.update,
            stop=stop,
            engine=values["engine"].value if hasattr(values["engine"], "value") else values["engine"],
            command_line=["keraslab", *sys.argv[1:]],
            prepared=prepared,
        )

    if json_output:
        typer.echo(json.dumps(result_document(result), ensure_ascii=False, default=str))
    else:
        console.print(architecture_table(result.layers))
        console.print(summary_table(result))
        from keraslab_cli.cli.noisy_report import print_noisy_report

        if spec.command == "noisy":
            print_noisy_report(console, result)

    if result.status == "diverged":
        print_error(
            _("Training diverged at epoch {epoch}: the loss became NaN or infinite. Try a lower learning rate (--lr), normalized inputs (--normalize) or another optimizer (--optimizer adam). The loss plot and history up to that epoch are in {folder}.").format(
                epoch=result.stopped_epoch, folder=result.folder
            )
        )
        raise typer.Exit(EXIT_DIVERGED)
    if result.status == "interrupted":
        print_error(_("Interrupted at epoch {epoch}; the partial run is saved in {folder}.").format(epoch=result.stopped_epoch, folder=result.folder))
        raise typer.Exit(EXIT_SIGTERM if result.signal_number == signal.SIGTERM else EXIT_SIGINT)


def result_document(result) -> dict:
    """Return the JSON document of a run printed by ``--json``."""
    return {
        "command": result.spec.command,
        "status": result.status,
        "folder": str(result.folder),
        "config": result.spec.to_dict(),
        "metrics": result.metrics,
        "engine": result.engine,
        "engine_note": result.engine_note,
        "files": result.files,
    }
