"""``keraslab predict``: evaluate a saved model, a network file or a built-in network at points."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from keraslab_cli.cli.handnet import GridOption, RangeOption, check_range, evaluation_table, interval_text, plot_interval, points_text, print_warning
from keraslab_cli.cli.options import DEFAULT_OUTPUTS, OUTPUT, JsonOption, LangOption, OutputsOption, QuietOption
from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.i18n import N_, _

HELP = N_(
    "Evaluate F, the function of a model, at points. MODEL is a .keras file, a run folder of any command "
    "(its model.keras), a .toml or .json network file or a built-in network (relu-1d, sigmoid-2d). Points "
    "come as values after MODEL (negative values need no '--': predict relu-1d -1 2), with --at X,Y, or "
    "from a CSV file (--input FILE, or - for stdin). Models load with Keras's safe mode on."
)
INPUTS = N_("Inputs")
PLOT_PANEL = N_("Plot")

ModelArgument = Annotated[str, typer.Argument(help=N_("A .keras file, a run folder, a .toml or .json network file, or a built-in network name."), metavar="MODEL", show_default=False)]
ValuesArgument = Annotated[Optional[list[str]], typer.Argument(help=N_("Input values: taken as many at a time as the model has inputs, or one point per X,Y word."), metavar="X...", show_default=False)]
AtOption = Annotated[Optional[list[str]], typer.Option("--at", help=N_("A point: one number per input, separated by commas (--at 7,-5). Repeat for several points."), metavar="X[,Y...]", rich_help_panel=INPUTS)]
InputOption = Annotated[Optional[str], typer.Option("--input", help=N_("CSV file of points, one per line with one column per input (a header line is skipped; ';' with decimal commas works too). '-' reads stdin."), metavar="FILE", rich_help_panel=INPUTS)]
CsvOption = Annotated[bool, typer.Option("--csv", help=N_("Print only CSV on stdout: a header, then one row per point with its inputs followed by its outputs."), rich_help_panel=OUTPUT)]
PlotOption = Annotated[bool, typer.Option("--plot", help=N_("Also draw F over --range (a curve for one input, a surface and contour map for two) in OUTPUTS/predict/NAME.png. Without --range, a trained model is drawn over its training interval, beside its target f."), rich_help_panel=PLOT_PANEL)]
PlotNameOption = Annotated[Optional[str], typer.Option("--name", help=N_("Name of the plot file, without .png. Default: the model's name."), rich_help_panel=OUTPUT)]


def predict(
    model: ModelArgument,
    values: ValuesArgument = None,
    at: AtOption = None,
    input_file: InputOption = None,
    csv_output: CsvOption = False,
    json_output: JsonOption = False,
    plot: PlotOption = False,
    plot_range: RangeOption = None,
    grid: GridOption = None,
    outputs: OutputsOption = DEFAULT_OUTPUTS,
    name: PlotNameOption = None,
    quiet: QuietOption = False,
    lang: LangOption = None,
) -> None:
    from keraslab_cli.core.experiment import check_name

    if csv_output and json_output:
        raise InvalidValue("csv", "--csv --json", _("only one of --csv and --json"))
    check_name(name)
    check_range(plot_range)

    from keraslab_cli.core.handnet import evaluate
    from keraslab_cli.core.loading import load_model

    loaded = load_model(model)
    points = gather_points(loaded.inputs, values or [], at or [], input_file)
    if not points and not plot:
        from keraslab_cli.core.loading import InvalidInputs

        raise InvalidInputs(_("No point to evaluate: give values after MODEL (predict {model} 3), --at X,Y, --input FILE, or --plot.").format(model=model))
    results = evaluate(loaded.model, points) if points else None
    plot_path = draw(loaded, points, plot_range, grid, Path(outputs), name) if plot else None

    print_results(loaded, points, results, plot_path, json_output, csv_output, quiet)
    warn_extrapolation(loaded, points)


def print_results(loaded, points, results, plot_path: Path | None, json_output: bool, csv_output: bool, quiet: bool) -> None:
    """Print the results as JSON, CSV or a table, the only output on stdout."""
    from keraslab_cli.cli.console import make_console

    if json_output:
        document = {"model": loaded.name, "inputs": loaded.inputs, "outputs": loaded.outputs,
                    "points": [{"inputs": list(point), "outputs": row.tolist()} for point, row in zip(points, results if results is not None else [])]}
        if plot_path:
            document["plot"] = str(plot_path)
        typer.echo(json.dumps(document))
    elif csv_output:
        typer.echo(csv_text(loaded.inputs, loaded.outputs, points, results), nl=False)
    else:
        console = make_console(quiet=quiet)
        console.print(_("Model {name}: inputs: {inputs}, outputs: {outputs}").format(name=escape(loaded.name), inputs=loaded.inputs, outputs=loaded.outputs), style="bold")
        if points:
            import numpy as np

            console.print(evaluation_table(np.asarray(points, dtype=float), results))
        if plot_path:
            console.print(_("Plot saved in {path}").format(path=escape(str(plot_path))))


def gather_points(inputs: int, values: list[str], at: list[str], input_file: str | None) -> list[tuple[float, ...]]:
    """Collect the points from the values after MODEL, --at and --input, in that order.

    Raises:
        InvalidInputs, InvalidValue, InvalidFile: a value or a line that is not a point of the model's inputs.
    """
    from keraslab_cli.core.loading import parse_point, points_from_values, read_points_csv

    from keraslab_cli.core.errors import InvalidFile
    from keraslab_cli.core.loading import InvalidInputs

    points = points_from_values(values, inputs)
    points += [parse_point(text, inputs) for text in at]
    if input_file == "-":
        try:
            points += read_points_csv(read_input(input_file), "-", inputs)
        except InvalidFile as error:
            raise InvalidInputs(_("Cannot read the points from standard input: {problem}").format(problem=error.problem)) from None
    elif input_file is not None:
        points += read_points_csv(read_input(input_file), input_file, inputs)
    return points


def read_input(source: str) -> str:
    """Return the text of a CSV file, or of stdin for '-'."""
    from keraslab_cli.core.errors import InvalidFile

    if source == "-":
        try:
            return sys.stdin.read()
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidFile(source, _("the text is not readable as UTF-8: {reason}.").format(reason=error)) from None
    path = Path(source)
    if not path.is_file():
        raise InvalidFile(source, _("file not found. Give a CSV file of points, one per line, or - to read them from stdin."))
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidFile(source, _("the file cannot be read as UTF-8 text: {reason}.").format(reason=error)) from None


def csv_text(inputs: int, outputs: int, points, results) -> str:
    """Return the CSV of the results: header, then each point's inputs followed by its outputs."""
    from keraslab_cli.core.function_plots import input_labels, output_labels

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(input_labels(inputs) + output_labels(outputs))
    for point, row in zip(points, results if results is not None else []):
        writer.writerow([repr(float(value)) for value in point] + [repr(float(value)) for value in row])
    return buffer.getvalue()


def warn_extrapolation(loaded, points) -> None:
    """Warn on stderr about the points outside the interval a trained model learned from."""
    outside = loaded.training.points_outside(points) if loaded.training is not None else []
    if outside:
        print_warning(_("Extrapolation at x = {points}: the model was trained on x in {interval} only, so F there is not what it learned.").format(
            points=points_text(outside), interval=interval_text(loaded.training.interval)))


def draw(loaded, points, plot_range, grid, outputs: Path, name: str | None) -> Path:
    """Draw F in OUTPUTS/predict/NAME.png and return the path.

    Without --range, a trained model is drawn over its training interval with
    its target f, and the range grows to show every evaluated point.
    """
    from keraslab_cli.core.expression import parse_expression
    from keraslab_cli.core.function_plots import default_points, default_range, function_data, plot_function
    from keraslab_cli.core.handnet import evaluate
    from keraslab_cli.core.outputs import prepare_folder

    training = loaded.training
    interval = plot_interval(plot_range, training.interval if training else default_range(loaded.inputs), points)
    target = None
    if training is not None and training.function is not None:
        try:
            target = (training.function, parse_expression(training.function))
        except InvalidValue:
            target = None  # a run.json edited by hand; F is still worth drawing alone
    folder = prepare_folder(outputs / "predict")
    data = function_data(lambda batch: evaluate(loaded.model, batch), loaded.inputs, interval, grid or default_points(loaded.inputs), points or None,
                         target=target, training_interval=training.interval if training else None)
    return plot_function(folder / f"{name or loaded.name}.png", data, loaded.name)


def register(app: typer.Typer) -> None:
    """Add the predict command; unknown options pass through so that negative values need no '--'."""
    app.command("predict", help=HELP, context_settings={"ignore_unknown_options": True})(predict)
