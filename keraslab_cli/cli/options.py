"""Declarations of the training flags shared by approx, noisy and sweep.

Each flag is declared once, as a row of ``TRAINING_OPTIONS``, and turned into
a Typer option by ``command_signature``. approx and noisy use the rows with
their own defaults, and sweep uses the same rows with string values so that
every flag accepts lists (``--p 2,5,10``) and ranges (``--p 2:10:2``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from keraslab_cli.core import defaults
from keraslab_cli.core.commands import COMMAND_DEFAULTS
from keraslab_cli.core.i18n import N_

NETWORK = N_("Network")
TRAINING = N_("Training")
DATA = N_("Data")
NOISE = N_("Noise and validation")
REGULARIZATION = N_("Schedules and regularization")
OUTPUT = N_("Output")


class Language(str, Enum):
    """Languages of the interface."""

    en = "en"
    fr = "fr"


class Engine(str, Enum):
    """Training engines: keraslab's fast loop, or Keras's model.fit."""

    auto = "auto"
    fast = "fast"
    fit = "fit"


@dataclass(frozen=True)
class TrainingOption:
    """One training flag: the spec field it sets, its flags, type, default and help."""

    field: str
    flags: tuple[str, ...]
    type: Any
    default: Any
    help: str
    panel: str
    commands: tuple[str, ...] = ("approx", "noisy")
    metavar: str | None = None
    extra: dict = field(default_factory=dict)


TRAINING_OPTIONS: tuple[TrainingOption, ...] = (
    TrainingOption("layers", ("--layers",), int, defaults.LAYERS, N_("Number of hidden layers."), NETWORK),
    TrainingOption("units", ("--p", "--units"), int, defaults.UNITS, N_("Neurons per hidden layer (p in the handout)."), NETWORK),
    TrainingOption("activation", ("--activation",), str, defaults.ACTIVATION, N_("Activation of the hidden layers: relu, sigmoid, tanh, linear, elu, selu, gelu, softplus, softsign, swish, silu, mish, leaky_relu, relu6, hard_sigmoid, hard_swish or exponential. The output neuron is always linear."), NETWORK),
    TrainingOption("epochs", ("--epochs",), int, defaults.EPOCHS, N_("Number of epochs (passes over the training data)."), TRAINING),
    TrainingOption("optimizer", ("--optimizer",), str, defaults.OPTIMIZER, N_("Keras optimizer: rmsprop (what compile() uses by default), sgd, adam, adamw, adagrad, adadelta or nadam."), TRAINING),
    TrainingOption("learning_rate", ("--lr", "--learning-rate"), Optional[float], None, N_("Learning rate. Default: the optimizer's Keras default (0.001 for rmsprop and adam, 0.01 for sgd)."), TRAINING),
    TrainingOption("momentum", ("--momentum",), float, 0.0, N_("Momentum of the sgd optimizer, in [0, 1)."), TRAINING),
    TrainingOption("nesterov", ("--nesterov",), bool, False, N_("Use Nesterov momentum with sgd."), TRAINING),
    TrainingOption("batch_size", ("--batch-size",), Optional[int], None, N_("Samples per gradient step. Default: the whole data set (plain gradient descent, as in the handout)."), TRAINING),
    TrainingOption("seed", ("--seed",), int, defaults.SEED, N_("Random seed: the same flags and seed give identical numbers."), TRAINING),
    TrainingOption("loss", ("--loss",), str, defaults.LOSS, N_("Loss function: mse (mean squared error, as in the handout), mae (mean absolute error) or huber (Keras's Huber loss, delta = 1)."), TRAINING),
    TrainingOption("lr_schedule", ("--lr-schedule",), str, "constant", N_("Learning-rate schedule: constant, exponential (times --lr-decay every 1000 epochs), cosine (from --lr down to --lr-min at the end of training) or plateau (times --lr-decay when the loss stalls for --patience epochs)."), REGULARIZATION),
    TrainingOption("lr_decay", ("--lr-decay",), float, 0.5, N_("Decay factor of the exponential and plateau schedules, in (0, 1]."), REGULARIZATION),
    TrainingOption("lr_min", ("--lr-min",), float, 0.0, N_("Lowest learning rate of the cosine and plateau schedules."), REGULARIZATION),
    TrainingOption("patience", ("--patience",), int, 100, N_("Epochs without improvement before the plateau schedule lowers the learning rate."), REGULARIZATION),
    TrainingOption("l1", ("--l1",), float, 0.0, N_("L1 penalty on the hidden layers' kernels (0: none)."), REGULARIZATION),
    TrainingOption("l2", ("--l2",), float, 0.0, N_("L2 penalty on the hidden layers' kernels (0: none)."), REGULARIZATION),
    TrainingOption("dropout", ("--dropout",), float, 0.0, N_("Dropout rate after each hidden layer, in [0, 1) (0: none)."), REGULARIZATION),
    TrainingOption("n", ("--n",), int, defaults.N, N_("Number of points evenly spaced on the interval."), DATA),
    TrainingOption("interval", ("--interval",), tuple[float, float], defaults.INTERVAL, N_("Bounds A B of the interval (negative values are accepted: --interval -1 1)."), DATA, metavar="A B"),
    TrainingOption("normalize", ("--normalize/--no-normalize",), bool, False, N_("Centre and reduce x with the training mean and standard deviation; the saved model keeps them, so it takes raw x."), DATA),
    TrainingOption("function", ("--function",), str, defaults.LAB_FUNCTION, N_("Target function f(x): numbers, x, pi, e, + - * / ** % and sin, cos, tan, exp, log, sqrt, abs, tanh... (np.cos is accepted too)."), DATA),
    TrainingOption("sigma", ("--sigma",), float, defaults.SIGMA, N_("Standard deviation of the Gaussian noise added to f."), NOISE, commands=("noisy",)),
    TrainingOption("mu", ("--mu",), float, defaults.MU, N_("Mean of the Gaussian noise."), NOISE, commands=("noisy",)),
    TrainingOption("noise_seed", ("--noise-seed",), Optional[int], None, N_("Seed of the noise and of the validation split. Default: --seed."), NOISE, commands=("noisy",)),
    TrainingOption("val_split", ("--val-split",), float, defaults.VAL_SPLIT, N_("Share of the noisy samples held out at random for validation, never trained on (0: none)."), NOISE, commands=("noisy",)),
    TrainingOption("early_stopping", ("--early-stopping",), Optional[int], None, N_("Stop when the validation loss has not improved for this many epochs, and restore the best weights."), NOISE, commands=("noisy",)),
)

FLAG_OF_FIELD = {option.field: option.flags[0].split("/")[0] for option in TRAINING_OPTIONS}
FLAG_OF_FIELD.update({"name": "--name", "outputs": "--outputs"})


def flag_for(field_name: str) -> str:
    """Return the flag a user types for a spec field (``learning_rate`` -> ``--lr``)."""
    return FLAG_OF_FIELD.get(field_name, "--" + field_name.replace("_", "-"))


def options_for(command: str) -> list[TrainingOption]:
    """Return the training options of a command, with that command's defaults."""
    overrides = COMMAND_DEFAULTS.get(command, {})
    selected = []
    for option in TRAINING_OPTIONS:
        if command in option.commands:
            if option.field in overrides:
                option = TrainingOption(**{**option.__dict__, "default": overrides[option.field]})
            selected.append(option)
    return selected


def typer_parameter(option: TrainingOption, as_text: bool = False) -> inspect.Parameter:
    """Turn an option row into a keyword parameter that Typer reads as an option."""
    annotation = option.type
    default = option.default
    if as_text:
        annotation = Optional[str]
        default = None
    flags = option.flags
    metavar = option.metavar if not as_text else None
    if as_text and "/" in flags[0]:
        # In a sweep a boolean takes values: --normalize true,false or both, and
        # alone means true (cli/sweep.py supplies the value).
        flags = (flags[0].split("/")[0],)
    if as_text and option.type is bool:
        metavar = "[true|false|both]"
    info = typer.Option(*flags, help=option.help, rich_help_panel=option.panel, metavar=metavar, show_default=not as_text)
    return inspect.Parameter(option.field, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, info])


OutputsOption = Annotated[Path, typer.Option("--outputs", help=N_("Folder where runs are saved."), rich_help_panel=OUTPUT)]
NameOption = Annotated[Optional[str], typer.Option("--name", help=N_("Name of the run folder. Default: built from the parameters."), rich_help_panel=OUTPUT)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help=N_("Print nothing but errors."), rich_help_panel=OUTPUT)]
JsonOption = Annotated[bool, typer.Option("--json", help=N_("Print one JSON object on stdout and nothing else."), rich_help_panel=OUTPUT)]
LangOption = Annotated[Optional[Language], typer.Option("--lang", help=N_("Language of messages, tables and plots: en or fr. Default: KERASLAB_LANG, then the locale."), rich_help_panel=OUTPUT)]
EngineOption = Annotated[Engine, typer.Option("--engine", help=N_("Training loop: auto (keraslab's fast loop when the model allows it), fast, or fit (Keras's model.fit, slower, same numbers)."), rich_help_panel=TRAINING)]

DEFAULT_OUTPUTS = Path("outputs")


def common_parameters() -> list[inspect.Parameter]:
    """Return the output and language parameters every training command takes."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("engine", keyword, default=Engine.auto, annotation=EngineOption),
        inspect.Parameter("outputs", keyword, default=DEFAULT_OUTPUTS, annotation=OutputsOption),
        inspect.Parameter("name", keyword, default=None, annotation=NameOption),
        inspect.Parameter("quiet", keyword, default=False, annotation=QuietOption),
        inspect.Parameter("json_output", keyword, default=False, annotation=JsonOption),
        inspect.Parameter("lang", keyword, default=None, annotation=LangOption),
    ]


def with_signature(function: Callable, parameters: list[inspect.Parameter]) -> Callable:
    """Give ``function(**values)`` an explicit signature that Typer turns into options."""
    function.__signature__ = inspect.Signature(parameters)
    function.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return function
