"""The shared body of the approx and noisy commands: run, report, exit."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape

from keraslab_cli.cli.console import make_console, print_error
from keraslab_cli.cli.options import options_for
from keraslab_cli.cli.render import EpochProgress, architecture_table, summary_table
from keraslab_cli.core.i18n import _
from keraslab_cli.core.outputs import strict_json
from keraslab_cli.core.spec import ExperimentSpec

EXIT_DIVERGED = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


CASE_INSENSITIVE_FIELDS = ("optimizer", "activation", "loss", "lr_schedule")


def spec_from_values(command: str, values: dict) -> ExperimentSpec:
    """Build the specification of a command from its parsed option values."""
    fields = {option.field: values[option.field] for option in options_for(command)}
    if "interval" in fields:
        fields["interval"] = tuple(float(bound) for bound in fields["interval"])
    # Keras names are lower case; the handout writes optimizers.SGD, so SGD is accepted.
    for name in CASE_INSENSITIVE_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = fields[name].lower()
    return ExperimentSpec(command=command, **fields)


class StopNow(BaseException):
    """Stop request that cannot wait for the end of the epoch.

    It derives from BaseException, as KeyboardInterrupt does, so that no
    ``except Exception`` in Keras or torch catches it.
    """

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


class SignalHandler:
    """Handles SIGINT and SIGTERM during a run.

    Once an epoch has finished, the first signal sets the stop request, so
    training stops after the current epoch and the partial run is saved.
    A signal before the first epoch ends (nothing to save yet) or a second
    signal raises ``StopNow`` at once. Atomic writes then leave no partial file.
    """

    def __init__(self) -> None:
        # Set once keras is imported, because StopRequest lives in core.training.
        self.stop = None
        self.epochs_done = 0

    def on_epoch(self, epoch: int, _logs: dict) -> None:
        self.epochs_done = epoch

    def __call__(self, signal_number, _frame) -> None:
        if self.stop is None or self.stop.requested or self.epochs_done == 0:
            raise StopNow(signal_number)
        self.stop.signal_number = signal_number


def exit_code_for(signal_number: int | None) -> int:
    """Return the shell's exit code for a run stopped by a signal: 143 for SIGTERM, else 130."""
    return EXIT_SIGTERM if signal_number == signal.SIGTERM else EXIT_SIGINT


@contextmanager
def stop_on_signals():
    """Install ``SignalHandler`` for SIGINT and SIGTERM while training runs."""
    handler = SignalHandler()
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, handler)
    try:
        yield handler
    finally:
        for number, previous_handler in previous.items():
            signal.signal(number, previous_handler)


def _chain(*callbacks):
    def call(epoch: int, logs: dict) -> None:
        for callback in callbacks:
            callback(epoch, logs)

    return call


def run_training_command(command: str, values: dict) -> None:
    """Validate, train, write the run folder and report it; exit non-zero on failure."""
    from keraslab_cli.core.experiment import prepare_run

    quiet, json_output = values["quiet"], values["json_output"]
    console = make_console(quiet=quiet or json_output)
    spec = spec_from_values(command, values)
    prepared = prepare_run(spec, Path(values["outputs"]), values["name"])

    show_progress = console.is_terminal and not (quiet or json_output)
    try:
        # The handlers come before the keras import, because that import takes seconds.
        with stop_on_signals() as handler:
            from keraslab_cli.core.experiment import run_experiment
            from keraslab_cli.core.training import StopRequest

            stop = handler.stop = StopRequest()
            with EpochProgress(console, spec.epochs, show_progress) as progress:
                result = run_experiment(
                    spec,
                    Path(values["outputs"]),
                    values["name"],
                    on_epoch=_chain(handler.on_epoch, progress.update),
                    stop=stop,
                    engine=values["engine"].value if hasattr(values["engine"], "value") else values["engine"],
                    command_line=["keraslab", *sys.argv[1:]],
                    prepared=prepared,
                )
    except StopNow as stopped:
        print_error(_("Interrupted; the run was stopped at once, so {folder} may lack some files and has no run.json.").format(folder=prepared[1]))
        raise typer.Exit(exit_code_for(stopped.signal_number)) from None

    if json_output:
        typer.echo(strict_json(result_document(result)))
    else:
        console.print(architecture_table(result.layers))
        console.print(summary_table(result))
        from keraslab_cli.cli.noisy_report import print_noisy_report

        if spec.command == "noisy":
            print_noisy_report(console, result)
        # The table folds long paths; this line keeps the folder whole for copy and paste.
        console.print(_("Outputs saved in {folder}").format(folder=escape(str(result.folder))), soft_wrap=True)

    if result.status == "diverged":
        print_error(
            _("Training diverged at epoch {epoch}: the loss became NaN or infinite. Try a lower learning rate (--lr), normalized inputs (--normalize) or another optimizer (--optimizer adam). The loss plot and history up to that epoch are in {folder}.").format(
                epoch=result.stopped_epoch, folder=result.folder
            )
        )
        raise typer.Exit(EXIT_DIVERGED)
    if result.status == "interrupted":
        print_error(_("Interrupted at epoch {epoch}; the partial run is saved in {folder}.").format(epoch=result.stopped_epoch, folder=result.folder))
        raise typer.Exit(exit_code_for(result.signal_number))
    if stop.requested:
        print_error(_("Interrupted after the last epoch; the complete run is saved in {folder}.").format(folder=result.folder))
        raise typer.Exit(exit_code_for(stop.signal_number))


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
