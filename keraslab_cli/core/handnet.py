"""Networks with hand-set weights: description, validation, Keras model, evaluation.

A network is written the natural way, one neuron at a time (its input weights
and its bias), in a TOML or JSON file or as one of the built-in networks of
the lab. Keras stores a Dense layer the other way round: ``get_weights()``
returns a kernel of shape (inputs, units), one row per input, and a bias of
shape (units,). ``keras_weights`` turns one view into the other, and
``network_from_model`` reads a Keras model back into the natural view.

Reading and validating a network needs neither Keras nor torch; building,
evaluating and tracing import them.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keraslab_cli.core.defaults import HAND_ACTIVATIONS
from keraslab_cli.core.errors import InvalidFile
from keraslab_cli.core.i18n import N_, _
from keraslab_cli.core.spec import is_finite_number

NETWORK_SUFFIXES = (".toml", ".json")
# A hand-written network takes a few hundred bytes; a bigger file is not one.
MAX_NETWORK_FILE_BYTES = 1024 * 1024
DEFAULT_ACTIVATION = "linear"  # Keras's Dense applies the identity when no activation is given
TOP_LEVEL_KEYS = {"inputs", "layers", "name", "description"}
LAYER_KEYS = {"activation", "neurons"}
NEURON_KEYS = {"weights", "bias"}


@dataclass(frozen=True)
class Neuron:
    """One neuron: a weight per input of its layer, and its bias."""

    weights: tuple[float, ...]
    bias: float


@dataclass(frozen=True)
class Layer:
    """A Dense layer: its activation and its neurons, in order."""

    activation: str
    neurons: tuple[Neuron, ...]

    @property
    def units(self) -> int:
        return len(self.neurons)


@dataclass(frozen=True)
class Network:
    """A network with hand-set weights, in the natural view.

    Attributes:
        name: the built-in's name or the file's stem.
        inputs: number of inputs of F.
        layers: the Dense layers, the last one giving F's outputs.
        description: one line shown by ``handnet --list`` (English, translated on display).
        points: inputs evaluated when the user gives none (the handout's points).
    """

    name: str
    inputs: int
    layers: tuple[Layer, ...]
    description: str = ""
    points: tuple[tuple[float, ...], ...] = ()

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    @property
    def trainable_parameters(self) -> int:
        """Weights and biases: (inputs + 1) per neuron, summed over the layers."""
        total, fan_in = 0, self.inputs
        for layer in self.layers:
            total += (fan_in + 1) * layer.units
            fan_in = layer.units
        return total

    def architecture(self) -> str:
        """Return the shape of the network, for example ``2 → 3 sigmoid → 1 sigmoid``."""
        return " → ".join([str(self.inputs)] + [f"{layer.units} {layer.activation}" for layer in self.layers])

    def to_dict(self) -> dict[str, Any]:
        """Return the network as the document a network file contains (JSON form)."""
        return {
            "inputs": self.inputs,
            "layers": [
                {
                    "activation": layer.activation,
                    "neurons": [{"weights": list(neuron.weights), "bias": neuron.bias} for neuron in layer.neurons],
                }
                for layer in self.layers
            ],
        }


def _layer(activation: str, *neurons: tuple[tuple[float, ...], float]) -> Layer:
    return Layer(activation, tuple(Neuron(tuple(float(w) for w in weights), float(bias)) for weights, bias in neurons))


BUILTIN_NETWORKS: dict[str, Network] = {
    "relu-1d": Network(
        name="relu-1d",
        inputs=1,
        layers=(
            _layer("relu", ((1,), -1), ((-0.5,), 1)),
            _layer("relu", ((1, 1), 0)),
        ),
        description=N_("The handout's first network: 1 input, 2 ReLU neurons, 1 ReLU output; F(3) = 2."),
        points=((3.0,),),
    ),
    "sigmoid-2d": Network(
        name="sigmoid-2d",
        inputs=2,
        layers=(
            _layer("sigmoid", ((1, 2), -1), ((3, -4), 0), ((-5, -6), 1)),
            _layer("sigmoid", ((1, 1, 1), -3)),
        ),
        description=N_("The handout's exercise: 2 inputs, 3 sigmoid neurons, 1 sigmoid output; F(7, −5) ≈ 0.123, and F(1, −1)."),
        points=((7.0, -5.0), (1.0, -1.0)),
    ),
}


def is_network_file(reference: str) -> bool:
    """Tell whether a reference names a network file (by its .toml or .json suffix)."""
    return Path(reference).suffix.lower() in NETWORK_SUFFIXES


def load_network(reference: str) -> Network:
    """Return the built-in network called ``reference``, or read the network file at that path.

    Raises:
        InvalidFile: the file is missing, unreadable, too big or invalid.
    """
    path = Path(reference)
    if reference in BUILTIN_NETWORKS and not path.exists():
        return BUILTIN_NETWORKS[reference]
    if not path.is_file():
        raise InvalidFile(reference, _("file not found. Give a .toml or .json network file, a .keras model, a run folder or a built-in network: {names}.").format(names=", ".join(BUILTIN_NETWORKS)))
    if path.stat().st_size > MAX_NETWORK_FILE_BYTES:
        raise InvalidFile(reference, _("the file has {size} bytes, more than the {limit} a network file may have. Is it really a network description?").format(size=path.stat().st_size, limit=MAX_NETWORK_FILE_BYTES))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidFile(reference, _("the file is not UTF-8 text. A network file is a TOML or JSON text file.")) from None
    except OSError as error:
        raise InvalidFile(reference, _("the file cannot be read: {reason}.").format(reason=error.strerror or error)) from None
    return parse_network(text, reference, "json" if path.suffix.lower() == ".json" else "toml")


def parse_network(text: str, path: str, file_format: str = "toml") -> Network:
    """Parse and validate the text of a network file.

    Args:
        text: the file's content.
        path: the file's path, used in error messages and for the network's name.
        file_format: ``toml`` or ``json``.

    Raises:
        InvalidFile: naming the layer and neuron numbers (from 1), what was
            expected and what was found.
    """
    try:
        document = json.loads(text) if file_format == "json" else tomllib.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidFile(path, _("not valid JSON at line {line}, column {column}: {reason}.").format(line=error.lineno, column=error.colno, reason=error.msg)) from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidFile(path, _("not valid TOML: {reason}. A network file contains data only: inputs = N, then one [[layers]] table per layer.").format(reason=error)) from None
    return network_from_document(document, path)


def network_from_document(document: Any, path: str) -> Network:
    """Validate a parsed network document and return the network it describes."""
    problem = _Problems(path)
    if not isinstance(document, dict):
        problem.raise_(_("expected a table with the keys inputs and layers, found {found}.").format(found=_kind(document)))
    problem.check_keys(document, TOP_LEVEL_KEYS, "")
    if "inputs" not in document:
        problem.raise_(_("missing key inputs (the number of inputs of the network, for example inputs = 2)."))
    inputs = document["inputs"]
    if not _is_integer(inputs) or inputs < 1:
        problem.raise_(_("inputs must be a whole number of at least 1, found {found}.").format(found=_show(inputs)))
    layers_document = document.get("layers")
    if not isinstance(layers_document, list) or not layers_document:
        problem.raise_(_("expected at least one layer ([[layers]] in TOML, a list \"layers\" in JSON), found {found}.").format(found=_show(layers_document)))

    layers, fan_in = [], inputs
    for layer_number, layer_document in enumerate(layers_document, start=1):
        layer = _parse_layer(layer_document, layer_number, fan_in, problem)
        layers.append(layer)
        fan_in = layer.units
    name = str(document.get("name") or Path(path).stem)
    return Network(name=name, inputs=inputs, layers=tuple(layers), description=str(document.get("description", "")))


def _parse_layer(document: Any, number: int, fan_in: int, problem: "_Problems") -> Layer:
    where = _("layer {layer}").format(layer=number)
    if not isinstance(document, dict):
        problem.raise_(_("{where}: expected a table with activation and neurons, found {found}.").format(where=where, found=_kind(document)))
    problem.check_keys(document, LAYER_KEYS, where)
    activation = document.get("activation", DEFAULT_ACTIVATION)
    if not isinstance(activation, str) or activation not in HAND_ACTIVATIONS:
        problem.raise_(_("{where}: unknown activation {found}. Expected one of: {names}.").format(where=where, found=_show(activation), names=", ".join(HAND_ACTIVATIONS)))
    neurons_document = document.get("neurons")
    if not isinstance(neurons_document, list) or not neurons_document:
        problem.raise_(_("{where}: expected a list of neurons, each {{ weights = [...], bias = b }}, found {found}.").format(where=where, found=_show(neurons_document)))
    neurons = tuple(_parse_neuron(item, number, index, fan_in, problem) for index, item in enumerate(neurons_document, start=1))
    return Layer(activation, neurons)


def _parse_neuron(document: Any, layer: int, number: int, fan_in: int, problem: "_Problems") -> Neuron:
    where = _("layer {layer}, neuron {neuron}").format(layer=layer, neuron=number)
    if not isinstance(document, dict):
        problem.raise_(_("{where}: expected {{ weights = [...], bias = b }}, found {found}.").format(where=where, found=_show(document)))
    problem.check_keys(document, NEURON_KEYS, where)
    if "weights" not in document:
        problem.raise_(_("{where}: missing weights (a list of {count}).").format(where=where, count=fan_in))
    if "bias" not in document:
        problem.raise_(_("{where}: missing bias (a number, 0 for none).").format(where=where))
    weights = document["weights"]
    if not isinstance(weights, list):
        weights = [weights] if is_finite_number(weights) and fan_in == 1 else weights
    if not isinstance(weights, list):
        problem.raise_(_("{where}: weights must be a list of {count} numbers, found {found}.").format(where=where, count=fan_in, found=_show(weights)))
    if len(weights) != fan_in:
        source = _("the network's inputs") if layer == 1 else _("the neurons of layer {previous}").format(previous=layer - 1)
        problem.raise_(_("{where}: expected {expected} weights (one per input: {source}), found {found}.").format(where=where, expected=fan_in, source=source, found=len(weights)))
    for index, weight in enumerate(weights, start=1):
        if not is_finite_number(weight):
            problem.raise_(_("{where}: weight {index} must be a finite number, found {found}.").format(where=where, index=index, found=_show(weight)))
    bias = document["bias"]
    if not is_finite_number(bias):
        problem.raise_(_("{where}: the bias must be a finite number, found {found}.").format(where=where, found=_show(bias)))
    return Neuron(tuple(float(weight) for weight in weights), float(bias))


class _Problems:
    """Raises the errors of one network file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def raise_(self, problem: str):
        raise InvalidFile(self.path, problem)

    def check_keys(self, document: dict, allowed: set[str], where: str) -> None:
        unknown = sorted(str(key) for key in document if key not in allowed)
        if not unknown:
            return
        key, names = _show(unknown[0]), ", ".join(sorted(allowed))
        if where:
            self.raise_(_("{where}: unknown key {key}. Expected only: {allowed}.").format(where=where, key=key, allowed=names))
        self.raise_(_("unknown key {key}. Expected only: {allowed}.").format(key=key, allowed=names))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {list: _("a list"), str: _("a string"), dict: _("a table")}.get(type(value), _show(value))


def _show(value: Any) -> str:
    if value is None:
        return _("nothing")
    if isinstance(value, str):
        return repr(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def keras_weights(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Return the layer as Keras's ``get_weights()``: kernel (inputs, units) and bias (units,).

    Row i of the kernel contains the weights of input i for every neuron, so the
    kernel is the transpose of the natural table of weights (one row per neuron).
    """
    kernel = np.array([neuron.weights for neuron in layer.neurons], dtype=np.float32).T
    bias = np.array([neuron.bias for neuron in layer.neurons], dtype=np.float32)
    return kernel, bias


def build_model(network: Network):
    """Build the Keras ``Sequential`` model of a network and set its weights with ``set_weights``."""
    from keraslab_cli.core.backend import keras  # noqa: I001 (selects the torch backend before activations imports keras)
    from keraslab_cli.core.activations import get_activation

    stack = [keras.layers.Input(shape=(network.inputs,), name="x")]
    for number, layer in enumerate(network.layers, start=1):
        stack.append(keras.layers.Dense(layer.units, activation=get_activation(layer.activation), name=f"dense_{number}"))
    model = keras.Sequential(stack, name=_model_name(network.name))
    for keras_layer, layer in zip(model.layers, network.layers):
        keras_layer.set_weights(list(keras_weights(layer)))
    return model


def _model_name(name: str) -> str:
    # Keras names may not contain '/', and a readable name helps summary().
    cleaned = "".join(character if character.isalnum() or character in "_-" else "_" for character in name)
    return cleaned or "handnet"


def network_from_model(model, name: str, path: str) -> Network:
    """Read a Keras model made of Dense layers back into the natural view.

    Raises:
        InvalidFile: a layer is not a Dense layer with a bias and a named activation.
    """
    from keraslab_cli.core.backend import keras

    layers = []
    for number, keras_layer in enumerate(model.layers, start=1):
        if not isinstance(keras_layer, keras.layers.Dense) or not keras_layer.use_bias:
            raise InvalidFile(path, _("layer {layer} ({name}) is a {kind}; handnet shows networks of Dense layers with biases only. Use keraslab predict to evaluate this model.").format(layer=number, name=keras_layer.name, kind=type(keras_layer).__name__))
        activation = getattr(keras_layer.activation, "__name__", "")
        activation = {"silu": "swish", "hard_silu": "hard_swish"}.get(activation, activation)
        if activation not in HAND_ACTIVATIONS:
            raise InvalidFile(path, _("layer {layer} uses the activation {name}, which handnet does not know. Expected one of: {names}.").format(layer=number, name=activation or "?", names=", ".join(HAND_ACTIVATIONS)))
        kernel, bias = (np.asarray(weight, dtype=np.float64) for weight in keras_layer.get_weights())
        neurons = tuple(Neuron(tuple(float(w) for w in kernel[:, unit]), float(bias[unit])) for unit in range(kernel.shape[1]))
        layers.append(Layer(activation, neurons))
    if not layers:
        raise InvalidFile(path, _("the model has no layer."))
    return Network(name=name, inputs=int(model.inputs[0].shape[-1]), layers=tuple(layers))


@dataclass(frozen=True)
class LayerTrace:
    """Intermediate values of one layer for a batch of points.

    Attributes:
        weighted_sums: z = x·kernel + bias, shape (points, units).
        activations: g(z), shape (points, units); the next layer's inputs.
    """

    weighted_sums: np.ndarray
    activations: np.ndarray


def evaluate(model, points: np.ndarray) -> np.ndarray:
    """Return F at each point (one row per point, one column per output), without Keras's progress bar."""
    from keraslab_cli.core.backend import torch

    batch = np.asarray(points, dtype=np.float32).reshape(len(points), -1)
    with torch.no_grad():
        output = model(batch, training=False)
    values = output.detach().cpu().numpy() if hasattr(output, "detach") else np.asarray(output)
    return np.asarray(values, dtype=np.float64).reshape(len(batch), -1)


def trace(model, points: np.ndarray) -> list[LayerTrace]:
    """Return each Dense layer's weighted sums and activations for the points.

    The sums use the layer's own kernel and bias and its own activation
    function, so the last layer's activations are F.
    """
    from keraslab_cli.core.backend import keras, torch

    values = keras.ops.convert_to_tensor(np.asarray(points, dtype=np.float32).reshape(len(points), -1))
    traces = []
    with torch.no_grad():
        for keras_layer in model.layers:
            if not isinstance(keras_layer, keras.layers.Dense):
                values = keras_layer(values)
                continue
            sums = keras.ops.matmul(values, keras_layer.kernel) + keras_layer.bias
            values = keras_layer.activation(sums)
            traces.append(LayerTrace(_to_numpy(sums), _to_numpy(values)))
    return traces


def _to_numpy(tensor) -> np.ndarray:
    from keraslab_cli.core.backend import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


@dataclass
class Evaluation:
    """F at the requested points, with each layer's trace when asked."""

    points: np.ndarray
    outputs: np.ndarray
    traces: list[LayerTrace] | None = None

    def to_list(self) -> list[dict[str, Any]]:
        """Return one document per point: its inputs, outputs and, when traced, each layer's values."""
        rows = []
        for index, point in enumerate(self.points):
            row: dict[str, Any] = {"inputs": point.tolist(), "outputs": self.outputs[index].tolist()}
            if self.traces is not None:
                row["trace"] = [
                    {"weighted_sums": layer.weighted_sums[index].tolist(), "activations": layer.activations[index].tolist()}
                    for layer in self.traces
                ]
            rows.append(row)
        return rows


def evaluate_points(model, points: list[tuple[float, ...]], inputs: int, with_trace: bool = False) -> Evaluation:
    """Evaluate F (and optionally the trace) at the points; an empty list gives an empty evaluation."""
    array = np.asarray(points, dtype=np.float64).reshape(len(points), inputs)
    if not len(array):
        return Evaluation(array, np.zeros((0, 0)), [] if with_trace else None)
    return Evaluation(array, evaluate(model, array), trace(model, array) if with_trace else None)


def save_run(
    folder: Path,
    network: Network,
    model,
    evaluation: Evaluation,
    plot_settings: tuple[tuple[float, float], int],
    command_line: list[str],
) -> dict[str, str]:
    """Write model.keras, the plot of F and run.json in a prepared folder; return the files written.

    Args:
        folder: the run folder, already created by ``outputs.prepare_folder``.
        network: the network in the natural view.
        model: its Keras model.
        evaluation: F at the requested points, saved in run.json.
        plot_settings: the plotting interval and the points per axis.
        command_line: the arguments, saved in run.json.
    """
    from datetime import datetime, timezone

    from keraslab_cli import __version__
    from keraslab_cli.core.experiment import library_versions
    from keraslab_cli.core.function_plots import function_data, plot_function
    from keraslab_cli.core.outputs import folder_lock, write_atomic, write_json

    interval, points = plot_settings
    data = function_data(lambda batch: evaluate(model, batch), network.inputs, interval, points, evaluation.points)
    files: dict[str, str] = {}
    with folder_lock(folder):
        files["model.keras"] = str(write_atomic(folder / "model.keras", lambda path: model.save(path), suffix=".keras"))
        files["F.png"] = str(plot_function(folder / "F.png", data, network.name))
        document = {
            "keraslab_version": __version__,
            "command": "handnet",
            "status": "completed",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command_line": command_line,
            "network": network.name,
            "architecture": network.architecture(),
            "trainable_params": network.trainable_parameters,
            "config": network.to_dict(),
            "keras_weights": [keras_document(layer) for layer in network.layers],
            "plot": {"kind": data.kind, "interval": list(interval), "points": points},
            "points": evaluation.to_list(),
            "files": files,
            "versions": library_versions(),
        }
        files["run.json"] = str(write_json(folder / "run.json", {**document, "files": {**files, "run.json": str(folder / "run.json")}}))
    return files


def keras_document(layer: Layer) -> dict[str, Any]:
    """Return a layer in the layout of Keras's ``get_weights()``, with the shapes, for JSON."""
    kernel, bias = keras_weights(layer)
    return {"kernel": kernel.tolist(), "kernel_shape": list(kernel.shape), "bias": bias.tolist(), "bias_shape": list(bias.shape)}
