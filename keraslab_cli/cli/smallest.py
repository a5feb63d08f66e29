"""``keraslab smallest``: the smallest network whose F stays close to f on the whole interval."""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from keraslab_cli.cli.console import make_console, print_error
from keraslab_cli.cli.options import TrainingOption, common_parameters, options_for, typer_parameter, with_signature
from keraslab_cli.core.i18n import N_, _, format_number
from keraslab_cli.core.smallest import DEFAULT_MAX_LAYERS, DEFAULT_MAX_UNITS, DEFAULT_TARGET_MSE, FIXED_DEFAULTS

HELP = N_(
    "Find the smallest network that reproduces f on the whole interval: the fewest trainable parameters, "
    "then the fewest epochs, whose MSE of F against f (on 1000 points of the interval) is below --target-mse. "
    "The search does not train every network. It tries architectures of L hidden layers × p neurons "
    "(up to --max-layers × --max-units) in order of parameter count, (L−1)·p² + (L+2)·p + 1, each once "
    "for --epochs epochs while measuring the MSE after every epoch; the first that goes below the target wins, "
    "since every smaller one failed. The fewest epochs is then read from that training (a run of e epochs "
    "equals the first e epochs of a longer one with the same seed), and the winner is trained again to save "
    "its run folder and fit plot. The other flags stay fixed; by default Adam, learning rate 0.01 and "
    "normalized x, the best training of exercise 2. The same flags and seed give the same result."
)
SEARCH = N_("Search")
EXIT_NOT_FOUND = 1

TargetOption = Annotated[float, typer.Option("--target-mse", help=N_("MSE of F against f on the interval to go below."), rich_help_panel=SEARCH)]
MaxLayersOption = Annotated[int, typer.Option("--max-layers", min=1, help=N_("Most hidden layers tried."), rich_help_panel=SEARCH)]
MaxUnitsOption = Annotated[int, typer.Option("--max-units", min=1, help=N_("Most neurons per hidden layer tried."), rich_help_panel=SEARCH)]
EpochsOption = Annotated[int, typer.Option("--epochs", min=1, help=N_("Most epochs each network is trained for."), rich_help_panel=SEARCH)]
JobsOption = Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help=N_("Worker processes training candidates in parallel (the result does not depend on it). Default: the number of cores."), rich_help_panel=SEARCH)]
SEARCHED_FIELDS = ("layers", "units", "epochs")
# Help of the flags whose default differs from approx's, where approx's help states its own default.
FIXED_HELP = {"learning_rate": N_("Learning rate of the optimizer. Default here: 0.01 with Adam, the best training of exercise 2.")}


def fixed_options() -> list[TrainingOption]:
    """Return the approx flags that stay fixed during the search, with smallest's defaults."""
    selected = []
    for option in options_for("approx"):
        if option.field in SEARCHED_FIELDS:
            continue
        if option.field in FIXED_DEFAULTS:
            option = TrainingOption(**{**option.__dict__, "default": FIXED_DEFAULTS[option.field], "help": FIXED_HELP.get(option.field, option.help)})
        selected.append(option)
    return selected


def smallest_parameters() -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("target_mse", keyword, default=DEFAULT_TARGET_MSE, annotation=TargetOption),
        inspect.Parameter("max_layers", keyword, default=DEFAULT_MAX_LAYERS, annotation=MaxLayersOption),
        inspect.Parameter("max_units", keyword, default=DEFAULT_MAX_UNITS, annotation=MaxUnitsOption),
        inspect.Parameter("epochs", keyword, default=4000, annotation=EpochsOption),
        inspect.Parameter("jobs", keyword, default=None, annotation=JobsOption),
        *(typer_parameter(option) for option in fixed_options()),
        *common_parameters(),
    ]


def smallest(**values) -> None:
    """Run the search, print what it tried and the winner; exit 1 when nothing meets the target."""
    from keraslab_cli.cli.training_command import spec_from_values
    from keraslab_cli.core.smallest import met_target, search_document, search_name, search_smallest, write_search_outputs
    from keraslab_cli.core.sweep import default_jobs

    json_output = values["json_output"]
    console = make_console(quiet=values["quiet"] or json_output)
    base = replace(spec_from_values("approx", {**values, "layers": 1, "units": 1}), epochs=values["epochs"])
    outputs = Path(values["outputs"])
    console.print(_("Searching networks up to {layers} × {units} for an MSE of F against f below {target}…").format(
        layers=values["max_layers"], units=values["max_units"], target=format_number(values["target_mse"])))
    result = search_smallest(
        base, values["target_mse"], outputs, values["max_layers"], values["max_units"], values["jobs"] or default_jobs(),
        on_probe=lambda found: console.print(probe_line(found, values["target_mse"])),
        engine=getattr(values["engine"], "value", values["engine"]), command_line=["keraslab", *sys.argv[1:]],
    )
    folder = outputs / "smallest" / (values["name"] or search_name(result, values["max_layers"], values["max_units"]))
    files = write_search_outputs(result, folder)
    if json_output:
        typer.echo(json.dumps(search_document(result, files), ensure_ascii=False, default=str))
    console.print(probes_table(result))
    if not met_target(result):
        print_error(_("No network up to {layers} × {units} went below an MSE of {target} within {epochs} epochs. Try more epochs (--epochs), larger networks (--max-units, --max-layers) or a larger --target-mse.").format(
            layers=values["max_layers"], units=values["max_units"], target=values["target_mse"], epochs=values["epochs"]))
        raise typer.Exit(EXIT_NOT_FOUND)
    console.print(winner_text(result, folder))


def probe_line(found, target_mse: float) -> str:
    """Return the line printed after each training of the search."""
    network = _("{layers} × {units} ({params} parameters)").format(layers=found.layers, units=found.units, params=found.trainable_params)
    if found.phase == "epochs":
        network += " · " + epochs_text(found.epochs)
    best = _("lowest MSE {value}").format(value=format_number(found.best_mse, 3))
    verdict = _("below the target at epoch {epoch}").format(epoch=found.first_epoch_below) if found.first_epoch_below else _("not below the target")
    return f"{escape(network)}: {best} · {verdict}"


def probes_table(result) -> Table:
    """Build the table of every training of the search, in the order tried."""
    table = Table(title=_("Networks tried for MSE(F, f) < {target}").format(target=format_number(result.target_mse)), title_justify="left")
    for header, justify in (("#", "right"), (_("layers"), "right"), ("p", "right"), (_("parameters"), "right"), (_("epochs"), "right"),
                            (_("lowest MSE(F, f)"), "right"), (_("first epoch below"), "right"), (_("time (s)"), "right")):
        table.add_column(header, justify=justify)
    for step, found in enumerate(result.probes, start=1):
        style = "green" if found.first_epoch_below else None
        table.add_row(str(step), str(found.layers), str(found.units), format_number(found.trainable_params), format_number(found.epochs),
                      format_number(found.best_mse, 3), str(found.first_epoch_below or "—"), format_number(found.seconds, 3), style=style)
    if result.skipped:
        from keraslab_cli.core.i18n import plural

        caption = plural(result.skipped, N_("{count} larger architecture was not trained."), N_("{count} larger architectures were not trained."))
        table.caption = caption.format(count=result.skipped)
    return table


def winner_text(result, folder: Path) -> str:
    """Return the sentence that states the smallest network and where its fit plot is.

    The MSE gets 6 significant digits because it is often just below the
    target, which 3 digits would round to the target itself.
    """
    from keraslab_cli.core.i18n import plural

    winner = result.winner
    layers = plural(winner.spec.layers, N_("{count} hidden layer"), N_("{count} hidden layers")).format(count=winner.spec.layers)
    units = plural(winner.spec.units, N_("{count} neuron"), N_("{count} neurons")).format(count=winner.spec.units)
    return _("Smallest network: {layers} × {units}, {params} trainable parameters, {epochs}: MSE(F, f) = {mse} < {target}. Fit plot: {fit}").format(
        layers=layers, units=units, params=winner.metrics["trainable_params"], epochs=epochs_text(winner.spec.epochs),
        mse=format_number(winner.metrics.get("dense_mse"), 6), target=format_number(result.target_mse), fit=escape(str(folder / "fit.png")))


def epochs_text(epochs: int) -> str:
    """Return ``1 epoch`` or ``4000 epochs`` in the selected language."""
    from keraslab_cli.core.i18n import plural

    return plural(epochs, N_("{count} epoch"), N_("{count} epochs")).format(count=epochs)


def register(app: typer.Typer) -> None:
    """Add the smallest command to the application."""
    app.command("smallest", help=HELP)(with_signature(smallest, smallest_parameters()))
