"""Loading a model to evaluate: a ``.keras`` file, a run folder, a network file or a built-in.

Model files may come from anyone, so they are checked before Keras reads
them: the file must be a zip archive with Keras's ``config.json``, every
object in that configuration must be one of Keras's own classes (or
keraslab's registered heaviside activation), and Keras then loads it with
``safe_mode=True``, which also rejects Python lambdas. Legacy ``.h5`` files
and pickles are rejected without being opened by Keras, because loading
them can run code.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keraslab_cli.core.defaults import HAND_ACTIVATIONS
from keraslab_cli.core.errors import InvalidFile, InvalidValue, KeraslabError
from keraslab_cli.core.handnet import BUILTIN_NETWORKS, Network, build_model, is_network_file, load_network
from keraslab_cli.core.i18n import _
from keraslab_cli.core.spec import is_finite_number

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
KERAS_ARCHIVE_FILES = ("config.json", "model.weights.h5")
# The models of this lab weigh kilobytes; this bound only stops zip bombs.
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
MAX_CONFIG_BYTES = 16 * 1024 * 1024
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin")
LEGACY_SUFFIXES = (".h5", ".hdf5")
# Keras layer classes that carry Python code or a pickled object.
CODE_CLASSES = {"Lambda", "__lambda__", "TorchModuleWrapper"}
# Functions that Keras stores under the module "builtins": activations, and
# keraslab's own registered heaviside.
SAFE_FUNCTIONS = set(HAND_ACTIVATIONS) | {"keraslab>heaviside"}
# A number written with a decimal comma, as in French: 2,5 or -0,75.
DECIMAL_COMMA_NUMBER = re.compile(r"[+-]?\d+,\d+")


@dataclass(frozen=True)
class TrainingRun:
    """The training data of a run, as recorded in the run.json beside its model.

    Attributes:
        interval: the bounds [a, b] of x the model was trained on.
        function: the text of the target f(x), or None when the run has none.
    """

    interval: tuple[float, float]
    function: str | None = None

    def points_outside(self, points) -> list[tuple[float, ...]]:
        """Return the points whose x lies outside the training interval."""
        low, high = self.interval
        return [tuple(point) for point in points if not low <= point[0] <= high]


@dataclass
class LoadedModel:
    """A model ready to evaluate, with where it came from.

    Attributes:
        model: the Keras model.
        name: a short name for tables and plot files (built-in name, file stem or folder name).
        source: what the user gave.
        inputs: number of inputs of F.
        outputs: number of outputs of F.
        network: the natural view when the model came from a network description.
        training: the training data of the run the model comes from, for a
            one-input model with a run.json beside it; None otherwise.
    """

    model: Any
    name: str
    source: str
    inputs: int
    outputs: int
    network: Network | None = None
    training: TrainingRun | None = None


def load_model(reference: str) -> LoadedModel:
    """Load a model from a built-in name, a network file, a run folder or a ``.keras`` file.

    Raises:
        InvalidFile: the reference is missing, unsafe, corrupt or not a Keras model.
    """
    path = Path(reference)
    if (reference in BUILTIN_NETWORKS and not path.exists()) or is_network_file(reference):
        network = load_network(reference)
        return LoadedModel(build_model(network), network.name, reference, network.inputs, network.outputs, network)
    if path.is_dir():
        path = path / MODEL_FILE
        if not path.is_file():
            raise InvalidFile(str(reference), _("this folder has no {file}. Give a run folder that contains one (a run that diverged saves none) or the path of a .keras file.").format(file=MODEL_FILE))
    model = load_keras_file(path)
    inputs, outputs = model_shape(model, str(path))
    training = read_training_run(path.parent / RUN_FILE) if inputs == 1 else None
    return LoadedModel(model, model_name(path), reference, inputs, outputs, training=training)


def model_name(path: Path) -> str:
    """Return a model's short name: its run folder's name for a model.keras, else the file's stem."""
    folder = path.resolve().parent.name
    return folder if path.name == MODEL_FILE and folder else path.stem


def read_training_run(path: Path) -> TrainingRun | None:
    """Read the training interval and target f(x) from a run.json, or return None.

    A run.json that is missing, unreadable or without a valid
    ``config.interval`` gives None: the model is then evaluated like any other.
    """
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    config = document.get("config") if isinstance(document, dict) else None
    interval = config.get("interval") if isinstance(config, dict) else None
    if not isinstance(interval, list) or len(interval) != 2 or not all(is_finite_number(bound) for bound in interval):
        return None
    if not interval[0] < interval[1]:
        return None
    function = config.get("function")
    return TrainingRun((float(interval[0]), float(interval[1])), function if isinstance(function, str) and function.strip() else None)


def load_keras_file(path: Path):
    """Check a ``.keras`` file and load it with Keras's safe mode on."""
    check_keras_file(path)
    from keraslab_cli.core.backend import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except ValueError as error:
        if "safe_mode" in str(error) or "arbitrary code" in str(error):
            raise InvalidFile(str(path), _unsafe_message()) from None
        raise InvalidFile(str(path), _("Keras cannot load this model: {reason}").format(reason=_first_line(error))) from None
    # An archive from an unknown source can fail anywhere inside Keras or h5py,
    # so every other failure is reported as an unusable file, never a traceback.
    except Exception as error:  # noqa: BLE001
        raise InvalidFile(str(path), _("Keras cannot load this model: {reason}").format(reason=_first_line(error))) from None


def check_keras_file(path: Path) -> None:
    """Reject what is not a safe Keras 3 archive, before Keras opens it.

    Raises:
        InvalidFile: missing file, legacy HDF5, pickle, text, corrupt zip,
            missing Keras entries, or a configuration naming code or a class
            outside Keras.
    """
    text = str(path)
    if not path.is_file():
        raise InvalidFile(text, _("file not found. Give a .keras file, a run folder, a .toml or .json network file or a built-in network: {names}.").format(names=", ".join(BUILTIN_NETWORKS)))
    with path.open("rb") as handle:
        head = handle.read(8)
    suffix = path.suffix.lower()
    if head.startswith(HDF5_SIGNATURE) or suffix in LEGACY_SUFFIXES:
        raise InvalidFile(text, _("this is a legacy HDF5 (.h5) model. keraslab loads only Keras 3 .keras files: open it with the Keras that wrote it and save it again with model.save('model.keras').")) from None
    if head[:1] == b"\x80" or suffix in PICKLE_SUFFIXES:
        raise InvalidFile(text, _("this looks like a pickle file, and loading a pickle can run any code. keraslab loads only Keras 3 .keras files.")) from None
    if not head.startswith(ZIP_SIGNATURE):
        raise InvalidFile(text, _("this is not a Keras model: a .keras file is a zip archive saved by model.save(), and this file is not one."))
    config = _read_archive_config(path)
    check_config(config, text)


def _read_archive_config(path: Path) -> Any:
    text = str(path)
    corrupt = _("the archive is corrupt or truncated ({reason}). Save the model again or use another copy.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [name for name in KERAS_ARCHIVE_FILES if name not in names]
            if missing:
                raise InvalidFile(text, _("this zip archive is not a Keras model: it lacks {files}.").format(files=", ".join(missing)))
            if sum(info.file_size for info in archive.infolist()) > MAX_ARCHIVE_BYTES:
                raise InvalidFile(text, _("the archive unpacks to more than {limit} MB, far more than any model of this lab.").format(limit=MAX_ARCHIVE_BYTES // (1024 * 1024)))
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise InvalidFile(text, _("config.json is larger than {limit} MB.").format(limit=MAX_CONFIG_BYTES // (1024 * 1024)))
            damaged = archive.testzip()
            if damaged is not None:
                raise InvalidFile(text, corrupt.format(reason=_("bad checksum in {file}").format(file=damaged)))
            return json.loads(archive.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise InvalidFile(text, corrupt.format(reason=_first_line(error))) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidFile(text, corrupt.format(reason=_("config.json is not valid JSON"))) from None


def check_config(config: Any, path: str) -> None:
    """Walk a Keras configuration and reject every object that is code or not Keras's own.

    Raises:
        InvalidFile: naming the first offending class or function.
    """
    for node in _objects(config):
        class_name = str(node.get("class_name"))
        module = node.get("module")
        inner = node.get("config")
        if class_name in CODE_CLASSES:
            raise InvalidFile(path, _unsafe_message(class_name))
        if class_name == "function":
            if _is_keras_module(module) or (isinstance(inner, str) and inner in SAFE_FUNCTIONS):
                continue
            raise InvalidFile(path, _("the model refers to the function {name}, which is neither a Keras activation nor keraslab's heaviside. keraslab loads only models built from Keras's own objects.").format(name=_qualified(module, inner)))
        if class_name.startswith("__") or _is_keras_module(module):
            continue
        registered = node.get("registered_name")
        if isinstance(registered, str) and registered.startswith("keraslab>"):
            continue
        raise InvalidFile(path, _("the model uses the class {name}, which is not part of Keras. keraslab loads only models built from Keras's own layers, which is what its commands save.").format(name=_qualified(module, class_name)))


def _objects(value: Any):
    """Yield every serialized object (a dict with a class_name) inside a configuration."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _is_keras_module(module: Any) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _qualified(module: Any, name: Any) -> str:
    return f"{module}.{name}" if module else str(name)


def _unsafe_message(class_name: str = "Lambda") -> str:
    return _("the model contains a {name} layer, that is, Python code, and Keras's safe mode rejects code from model files because loading it could run anything. Rebuild the model from standard layers (Dense, activations by name).").format(name=class_name.strip("_").capitalize() if class_name == "__lambda__" else class_name)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def model_shape(model, path: str) -> tuple[int, int]:
    """Return the numbers of inputs and outputs of a model that takes and returns flat vectors.

    Raises:
        InvalidFile: the model has several inputs or outputs, or non-flat ones.
    """
    try:
        input_shape = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else None
        output_shape = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else None
    except (AttributeError, ValueError):
        input_shape = output_shape = None
    if input_shape is None or output_shape is None or len(input_shape) != 2 or len(output_shape) != 2 or None in (input_shape[1], output_shape[1]):
        raise InvalidFile(path, _("keraslab evaluates models with one input vector and one output vector (shape (batch, n)); this model's shapes are {inputs} → {outputs}.").format(inputs=input_shape, outputs=output_shape))
    return int(input_shape[1]), int(output_shape[1])


class InvalidInputs(KeraslabError):
    """Input values on the command line that do not form points of the model's inputs."""

    exit_code = 2


def parse_number(text: str, decimal_comma: bool = False) -> float | None:
    """Return the finite number written in ``text``, or None when it is not one."""
    text = text.strip()
    if decimal_comma:
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_point(text: str, inputs: int, field: str = "at") -> tuple[float, ...]:
    """Parse ``X[,Y...]`` into a point of ``inputs`` numbers.

    Raises:
        InvalidValue: a value is not a finite number, or the count is wrong.
    """
    parts = text.split(",")
    values = [parse_number(part) for part in parts]
    if len(parts) != inputs or any(value is None for value in values):
        raise InvalidValue(field, text, _point_expected(text, inputs, len(parts)))
    return tuple(values)


def _point_expected(text: str, inputs: int, parts: int) -> str:
    """Describe a valid point, with a hint when the text looks like a decimal comma (2,5)."""
    if inputs == 1:
        expected = _("1 finite number, the network's only input (for example 3)")
    else:
        expected = _("{count} finite numbers separated by commas, one per input of the network (for example {example})").format(count=inputs, example=",".join(["1"] * inputs))
    if parts > inputs and DECIMAL_COMMA_NUMBER.fullmatch(text.strip()):
        expected = _("{expected}; write decimals with a point: {number}").format(expected=expected, number=text.strip().replace(",", "."))
    return expected


def points_from_values(values: list[str], inputs: int) -> list[tuple[float, ...]]:
    """Group the values typed after the model into points.

    A value with commas is one whole point (``7,-5``). Plain numbers are taken
    ``inputs`` at a time, so ``predict sigmoid-2d 7 -5 1 -1`` gives two points.

    Raises:
        InvalidInputs: an option-like word, a non-number, or a count that is
            not a multiple of the number of inputs.
    """
    points, pending = [], []
    for value in values:
        if "," in value:
            _check_no_leftover(pending, inputs)
            points.append(_point_or_error(value, inputs))
            continue
        number = parse_number(value)
        if number is None:
            if value.startswith("-") and not value[1:2].isdigit() and value[1:2] != ".":
                raise InvalidInputs(_("No such option: {name}.").format(name=value))
            raise InvalidInputs(_("Invalid input value {value}: expected a finite number, for example 3 or -0.5.").format(value=repr(value)))
        pending.append(number)
        if len(pending) == inputs:
            points.append(tuple(pending))
            pending = []
    _check_no_leftover(pending, inputs)
    return points


def _check_no_leftover(pending: list[float], inputs: int) -> None:
    if pending:
        raise InvalidInputs(_("The model takes {inputs} inputs, so the values must come in groups of {inputs} (or as points X,Y); values left over: {values}.").format(inputs=inputs, values=" ".join(_plain(value) for value in pending)))


def _point_or_error(text: str, inputs: int) -> tuple[float, ...]:
    try:
        return parse_point(text, inputs)
    except InvalidValue as error:
        raise InvalidInputs(_("Invalid input point {value}: expected {expected}.").format(value=text, expected=error.expected)) from None


def _plain(value: float) -> str:
    return f"{value:g}"


def read_points_csv(text: str, source: str, inputs: int) -> list[tuple[float, ...]]:
    """Read points from CSV text: one row per point, one column per input.

    A first row that is not numeric is a header and is skipped. Blank lines
    and lines starting with ``#`` are ignored. When the first line contains
    ``;``, the separator is ``;`` and decimal commas are accepted, as
    spreadsheets write them in French.

    Raises:
        InvalidFile: naming the line, what was expected and what was found.
    """
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise InvalidFile(source, _("no points: the file is empty. Write one point per line, for example 7,-5."))
    semicolon = ";" in lines[0][1]
    points = []
    for index, (number, line) in enumerate(lines):
        cells = [cell.strip() for cell in next(csv.reader([line], delimiter=";" if semicolon else ","))]
        values = [parse_number(cell, decimal_comma=semicolon) for cell in cells]
        if index == 0 and all(value is None for value in values):
            continue
        if len(cells) != inputs and inputs == 1:
            raise InvalidFile(source, _("line {line}: expected 1 value (the model has one input), found {found}: {text}").format(line=number, found=len(cells), text=_show_line(line)))
        if len(cells) != inputs:
            raise InvalidFile(source, _("line {line}: expected {expected} values (one per input of the model), found {found}: {text}").format(line=number, expected=inputs, found=len(cells), text=_show_line(line)))
        if any(value is None for value in values):
            raise InvalidFile(source, _("line {line}: expected finite numbers, found {text}").format(line=number, text=_show_line(line)))
        points.append(tuple(values))
    if not points:
        raise InvalidFile(source, _("no points: the file has a header but no rows."))
    return points


def _show_line(line: str) -> str:
    line = line.strip()
    return repr(line if len(line) <= 60 else line[:57] + "...")
