"""``keraslab noisy``: learn f from noisy samples and watch for overfitting."""

from __future__ import annotations

import typer

from keraslab_cli.cli.options import common_parameters, options_for, typer_parameter, with_signature
from keraslab_cli.core.i18n import N_

HELP = N_(
    "Train the same network on N = 60 samples of f with Gaussian noise (mean 0, standard deviation 0.3), "
    "holding out a validation share, so that overfitting becomes visible: the validation loss rises "
    "while the training loss keeps falling. Takes every flag of approx, plus the noise and validation flags."
)


def noisy(**values) -> None:
    """Run the noisy command with the parsed option values."""
    from keraslab_cli.cli.training_command import run_training_command

    run_training_command("noisy", values)


def register(app: typer.Typer) -> None:
    """Add the noisy command to the application."""
    parameters = [typer_parameter(option) for option in options_for("noisy")] + common_parameters()
    app.command("noisy", help=HELP)(with_signature(noisy, parameters))
