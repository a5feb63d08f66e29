"""``keraslab approx``: train an MLP to approximate f on an interval."""

from __future__ import annotations

import typer

from keraslab_cli.cli.options import common_parameters, options_for, typer_parameter, with_signature
from keraslab_cli.core.i18n import N_

HELP = N_(
    "Train a multilayer perceptron to approximate f(x) = cos(2x) + x·sin(3x) + √x − 2 on [0, 5] "
    "(or --function on --interval), print a summary table and save fit.png, loss.png, history.csv, "
    "model.keras and run.json in a run folder. The defaults are the handout's program: "
    "4 hidden layers of 10 tanh neurons, rmsprop, 4000 epochs, 100 points."
)


def approx(**values) -> None:
    """Run the approx command with the parsed option values."""
    from keraslab_cli.cli.training_command import run_training_command

    run_training_command("approx", values)


def register(app: typer.Typer) -> None:
    """Add the approx command to the application."""
    parameters = [typer_parameter(option) for option in options_for("approx")] + common_parameters()
    app.command("approx", help=HELP)(with_signature(approx, parameters))
