"""``keraslab handnet``: a network with hand-set weights, shown, evaluated, drawn and saved."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keraslab_cli.cli.options import DEFAULT_OUTPUTS, JsonOption, LangOption, NameOption, OutputsOption, QuietOption
from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.i18n import N_, _, format_number, get_language

HELP = N_(
    "Build a network with weights set by hand, evaluate F at points and draw it. NETWORK is a built-in "
    "network of the lab or a .toml or .json file with one entry per neuron (its weights and its bias). "
    "Shows the weights as neurons and as Keras's get_weights() layout. Saves model.keras, F.png and "
    "run.json in outputs/handnet/NAME/. Exit code 1 when --expect fails."
)
EVALUATION = N_("Evaluation")
PLOT = N_("Plot")
DEFAULT_TOLERANCE = 0.0005  # agreement to three decimals, the precision the handout gives (F(7, −5) ≃ 0.123)
MAX_GRID_POINTS = 1000  # per axis; a finer grid draws the same picture more slowly
EXIT_EXPECT_FAILED = 1
VALUE_DIGITS = 6  # significant digits of F and of the trace in tables

NetworkArgument = Annotated[Optional[str], typer.Argument(help=N_("A built-in network (relu-1d, sigmoid-2d; see --list), a .toml or .json network file, or a .keras model of Dense layers."), metavar="NETWORK", show_default=False)]
ListOption = Annotated[bool, typer.Option("--list", help=N_("List the built-in networks and exit."))]
AtOption = Annotated[Optional[list[str]], typer.Option("--at", help=N_("Evaluate F at this point: one number per input, separated by commas (--at 3, --at 7,-5). Repeat for several points. Default: the handout's points for a built-in network."), metavar="X[,Y...]", rich_help_panel=EVALUATION)]
TraceOption = Annotated[bool, typer.Option("--trace", help=N_("Also print each neuron's weighted sum z = w·x + b and its activation g(z) at each point."), rich_help_panel=EVALUATION)]
ExpectOption = Annotated[Optional[float], typer.Option("--expect", help=N_("Expected value of F at every --at point; exit with code 1, printing both numbers, when F differs by more than --tol."), metavar="V", rich_help_panel=EVALUATION)]
TolOption = Annotated[float, typer.Option("--tol", help=N_("Largest accepted difference between F and --expect (default: three decimals)."), min=0.0, metavar="T", rich_help_panel=EVALUATION)]
RangeOption = Annotated[Optional[tuple[float, float]], typer.Option("--range", help=N_("Bounds A B of the plot on each input axis (negative values are accepted: --range -2 3). Default: [-2, 3] for one input, [-5, 5] for two, as in the handout."), metavar="A B", rich_help_panel=PLOT, show_default=False)]
GridOption = Annotated[Optional[int], typer.Option("--grid", help=N_("Points per axis of the plot. Default: 100 for one input, 20 for two, as in the handout."), min=2, max=MAX_GRID_POINTS, metavar="N", rich_help_panel=PLOT, show_default=False)]


def handnet(
    network: NetworkArgument = None,
    list_networks: ListOption = False,
    at: AtOption = None,
    trace: TraceOption = False,
    expect: ExpectOption = None,
    tol: TolOption = DEFAULT_TOLERANCE,
    plot_range: RangeOption = None,
    grid: GridOption = None,
    outputs: OutputsOption = DEFAULT_OUTPUTS,
    name: NameOption = None,
    quiet: QuietOption = False,
    json_output: JsonOption = False,
    lang: LangOption = None,
) -> None:
    from keraslab_cli.cli.console import make_console

    console = make_console(quiet=quiet or json_output)
    if list_networks:
        print_builtins(console, json_output)
        return
    if network is None:
        raise typer.BadParameter(_("give a built-in network (see --list), a .toml or .json network file or a .keras model."), param_hint="NETWORK")

    from keraslab_cli.core import handnet as core
    from keraslab_cli.core.experiment import check_name
    from keraslab_cli.core.function_plots import default_points, default_range
    from keraslab_cli.core.loading import parse_point
    from keraslab_cli.core.outputs import append_index, prepare_folder

    check_name(name)
    check_range(plot_range)
    described = read_network(network)
    points = [parse_point(text, described.inputs) for text in at] if at else list(described.points)
    if expect is not None and not at:
        raise InvalidValue("expect", expect, _("a value to compare with F at the --at points; give at least one --at"))
    folder = prepare_folder(Path(outputs) / "handnet" / (name or described.name))

    model = core.build_model(described)
    evaluation = core.evaluate_points(model, points, described.inputs, with_trace=trace)
    plot_settings = (plot_interval(plot_range, default_range(described.inputs), points), grid or default_points(described.inputs))
    files = core.save_run(folder, described, model, evaluation, plot_settings, ["keraslab", *sys.argv[1:]])
    append_index(Path(outputs), {"command": "handnet", "status": "completed", "folder": str(folder), "trainable_params": described.trainable_parameters, "parameters": {"network": network}})

    if json_output:
        typer.echo(json.dumps(handnet_document(described, evaluation, folder, files), ensure_ascii=False))
    else:
        print_network(console, described, model)
        print_evaluation(console, evaluation, described)
        console.print(_("Saved in {folder}: {files}").format(folder=escape(str(folder)), files=", ".join(Path(path).name for path in files.values())))
    if expect is not None:
        check_expectation(console, evaluation, expect, tol)


def check_range(plot_range: tuple[float, float] | None) -> None:
    """Reject a plot interval whose bounds are not increasing and finite."""
    if plot_range is not None and not (plot_range[0] < plot_range[1] and all(abs(bound) < float("inf") for bound in plot_range)):
        raise InvalidValue("range", f"{plot_range[0]:g} {plot_range[1]:g}", _("two finite bounds A < B, for example --range -2 3"))


def plot_interval(plot_range: tuple[float, float] | None, default: tuple[float, float], points) -> tuple[float, float]:
    """Return the interval to draw F over.

    Without --range, the default grows to show every evaluated point. With
    --range, the points outside it are left off the plot and named in a warning.
    """
    from keraslab_cli.core.function_plots import points_outside, range_covering

    if plot_range is None:
        return range_covering(default, points)
    outside = points_outside(plot_range, points)
    if outside:
        print_warning(_("Left off the plot, outside --range {interval}: {points}. Widen --range to see them.").format(
            interval=interval_text(plot_range), points=points_text(outside)))
    return plot_range


def print_warning(text: str) -> None:
    """Print a warning line on stderr, so that --json and --csv output stays clean."""
    from keraslab_cli.cli.console import error_console

    error_console().print(f"[bold yellow]{escape(_('Warning:'))}[/] {escape(text)}")


def _separator() -> str:
    # French writes decimals with a comma, so it separates numbers with a semicolon.
    return " ; " if get_language() == "fr" else ", "


def interval_text(interval: tuple[float, float]) -> str:
    """Return an interval as [a, b] in English, [a ; b] in French."""
    return "[" + _separator().join(format_number(float(bound)) for bound in interval) + "]"


def points_text(points) -> str:
    """Return points for a message: ``7, 8`` for one input, ``(7, -5), (1, -1)`` for more."""
    if all(len(point) == 1 for point in points):
        return _separator().join(format_number(float(point[0])) for point in points)
    return ", ".join("(" + _separator().join(format_number(float(value)) for value in point) + ")" for point in points)


def read_network(reference: str):
    """Return the network a reference names: built-in, network file, .keras file or run folder."""
    from keraslab_cli.core.handnet import BUILTIN_NETWORKS, is_network_file, load_network, network_from_model

    path = Path(reference)
    if (reference in BUILTIN_NETWORKS and not path.exists()) or is_network_file(reference):
        return load_network(reference)
    from keraslab_cli.core.loading import load_model

    loaded = load_model(reference)
    return network_from_model(loaded.model, loaded.name, reference)


def handnet_document(network, evaluation, folder: Path, files: dict[str, str]) -> dict:
    """Return the JSON document printed by ``handnet --json``."""
    from keraslab_cli.core.handnet import keras_document

    return {
        "command": "handnet",
        "network": network.name,
        "architecture": network.architecture(),
        "inputs": network.inputs,
        "outputs": network.outputs,
        "trainable_params": network.trainable_parameters,
        "config": network.to_dict(),
        "keras_weights": [keras_document(layer) for layer in network.layers],
        "points": evaluation.to_list(),
        "folder": str(folder),
        "files": files,
    }


def print_builtins(console: Console, json_output: bool) -> None:
    """Print the built-in networks: name, architecture, description."""
    from keraslab_cli.core.handnet import BUILTIN_NETWORKS

    if json_output:
        typer.echo(json.dumps([{"name": name, "architecture": network.architecture(), "description": _(network.description)} for name, network in BUILTIN_NETWORKS.items()], ensure_ascii=False))
        return
    table = Table(title=_("Built-in networks"), title_justify="left")
    table.add_column(_("name"), style="bold")
    table.add_column(_("architecture"))
    table.add_column(_("description"))
    for name, network in BUILTIN_NETWORKS.items():
        table.add_row(name, network.architecture(), _(network.description))
    console.print(table)


def print_network(console: Console, network, model) -> None:
    """Print the architecture table, then each layer's weights as neurons and as Keras stores them."""
    from keraslab_cli.cli.render import architecture_table
    from keraslab_cli.core.models import describe_layers

    console.print(architecture_table(describe_layers(model)))
    console.print(_("{name}: {architecture}, {count} trainable parameters (weights and biases).").format(name=escape(network.name), architecture=network.architecture(), count=network.trainable_parameters))
    fan_in = network.inputs
    for index, layer in enumerate(network.layers):
        console.print()
        console.print(_("Layer {number} (model.layers[{index}]): neurons: {units}, activation: {activation}, inputs per neuron: {inputs}").format(
            number=index + 1, index=index, units=layer.units, activation=layer.activation, inputs=fan_in), style="bold")
        console.print(Columns([neuron_table(layer, fan_in), keras_table(layer, index)], padding=(0, 4)))
        console.print(shapes_text(layer), soft_wrap=True)
        console.print(escape(set_weights_code(layer, index)), style="dim", soft_wrap=True)
        fan_in = layer.units


def neuron_table(layer, fan_in: int) -> Table:
    """Build the natural view of a layer: one row per neuron, its weights then its bias."""
    table = Table(title=_("As neurons"), title_justify="left")
    table.add_column(_("neuron"), justify="right")
    for input_number in range(1, fan_in + 1):
        table.add_column(_("weight {number}").format(number=input_number), justify="right")
    table.add_column(_("bias"), justify="right")
    for number, neuron in enumerate(layer.neurons, start=1):
        table.add_row(str(number), *(format_number(weight) for weight in neuron.weights), format_number(neuron.bias))
    return table


def keras_table(layer, index: int) -> Table:
    """Build Keras's view of the same layer: the kernel, one row per input, then the bias."""
    from keraslab_cli.core.handnet import keras_weights

    kernel, bias = keras_weights(layer)
    table = Table(title=_("As Keras stores them: get_weights()"), title_justify="left")
    table.add_column("")
    for unit in range(kernel.shape[1]):
        table.add_column(_("neuron {number}").format(number=unit + 1), justify="right")
    for row in range(kernel.shape[0]):
        table.add_row(_("kernel[{row}]: input {number}").format(row=row, number=row + 1), *(format_number(float(value)) for value in kernel[row]))
    table.add_row(_("bias"), *(format_number(float(value)) for value in bias), style="italic")
    return table


def shapes_text(layer) -> str:
    """Return the shapes of Keras's kernel and bias for a layer."""
    from keraslab_cli.core.handnet import keras_weights

    kernel, bias = keras_weights(layer)
    return _("kernel: shape {kernel} = (inputs, neurons); bias: shape {bias}").format(kernel=tuple(kernel.shape), bias=tuple(bias.shape))


def set_weights_code(layer, index: int) -> str:
    """Return the Python line that sets this layer's weights with Keras, as in the handout."""
    from keraslab_cli.core.handnet import keras_weights

    kernel, bias = keras_weights(layer)
    kernel_text = "[" + ", ".join("[" + ", ".join(_code_number(value) for value in row) + "]" for row in kernel) + "]"
    bias_text = "[" + ", ".join(_code_number(value) for value in bias) + "]"
    return f"model.layers[{index}].set_weights([np.array({kernel_text}), np.array({bias_text})])"


def _code_number(value) -> str:
    return repr(round(float(value), 6))


def point_text(point) -> str:
    """Return a point as F's argument list, for example ``7, -5``."""
    return ", ".join(format_number(float(value)) for value in point)


def evaluation_table(points, outputs) -> Table:
    """Build the table of inputs and outputs: one row per point."""
    from keraslab_cli.core.function_plots import input_labels, output_labels

    table = Table()
    for label in input_labels(points.shape[1]):
        table.add_column(label, justify="right")
    for label in output_labels(outputs.shape[1]):
        table.add_column(label, justify="right", style="bold")
    for point, values in zip(points, outputs):
        table.add_row(*(format_number(float(value)) for value in point), *(format_number(float(value), VALUE_DIGITS) for value in values))
    return table


def print_evaluation(console: Console, evaluation, network) -> None:
    """Print F at the points and, with --trace, every neuron's weighted sum and activation."""
    if not len(evaluation.points):
        return
    console.print()
    console.print(_("F at the requested points"), style="bold")
    console.print(evaluation_table(evaluation.points, evaluation.outputs))
    for index, point in enumerate(evaluation.points if evaluation.traces is not None else []):
        console.print(trace_table(network, evaluation, index, point))


def trace_table(network, evaluation, index: int, point) -> Table:
    """Build the trace of one point: each neuron's weighted sum, written out, and its activation."""
    table = Table(title=_("Trace of F({point})").format(point=point_text(point)), title_justify="left", min_width=60)
    for header in (_("layer"), _("neuron"), _("weighted sum z = w·x + b"), "z", _("activation g(z)")):
        table.add_column(header, justify="right" if header != _("weighted sum z = w·x + b") else "left")
    layer_inputs = point
    for number, (layer, values) in enumerate(zip(network.layers, evaluation.traces), start=1):
        for unit, neuron in enumerate(layer.neurons):
            table.add_row(str(number), str(unit + 1), _written_sum(neuron, layer_inputs), format_number(values.weighted_sums[index][unit], VALUE_DIGITS),
                          f"{layer.activation}(z) = {format_number(values.activations[index][unit], VALUE_DIGITS)}")
        layer_inputs = values.activations[index]
    return table


def _written_sum(neuron, inputs) -> str:
    """Write z = w·x + b with the numbers, for example ``3·7 - 4·(-5) + 0``."""
    # Beyond four inputs the written-out sum no longer fits a table cell.
    if len(neuron.weights) > 4:
        return "…"
    text = ""
    for weight, value in zip(neuron.weights, inputs):
        term = f"{format_number(abs(weight))}·{_parenthesized(value)}"
        text = _append_term(text, term, weight < 0)
    return _append_term(text, format_number(abs(neuron.bias)), neuron.bias < 0)


def _append_term(text: str, term: str, negative: bool) -> str:
    if not text:
        return f"-{term}" if negative else term
    return f"{text} {'-' if negative else '+'} {term}"


def _parenthesized(value) -> str:
    text = format_number(float(value), 4)
    return f"({text})" if text.startswith("-") else text


def check_expectation(console: Console, evaluation, expected: float, tolerance: float) -> None:
    """Compare F at every point with the expected value; exit with code 1 when one differs by more than the tolerance."""
    from keraslab_cli.cli.console import print_error

    failures = []
    for point, values in zip(evaluation.points, evaluation.outputs):
        for value in values:
            difference = abs(float(value) - expected)
            if not difference <= tolerance:
                failures.append((point, float(value), difference))
    if not failures:
        console.print(_("Check passed: F equals {expected} within {tolerance} at every point.").format(expected=format_number(expected, VALUE_DIGITS), tolerance=format_number(tolerance, scientific_below=1e-12)), style="green")
        return
    for point, value, difference in failures:
        print_error(_("F({point}) = {value} differs from the expected {expected} by {difference}, more than --tol {tolerance}.").format(
            point=point_text(point), value=format_number(value, VALUE_DIGITS), expected=format_number(expected, VALUE_DIGITS), difference=format_number(difference, 3), tolerance=format_number(tolerance, scientific_below=1e-12)))
    raise typer.Exit(EXIT_EXPECT_FAILED)


def register(app: typer.Typer) -> None:
    """Add the handnet command to the application."""
    app.command("handnet", help=HELP)(handnet)
