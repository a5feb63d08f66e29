"""Core of handnet and predict: network files, Keras layout, evaluation, loading, plot data."""

import json
import pickle
import zipfile

import numpy as np
import pytest

from keraslab_cli.core import handnet
from keraslab_cli.core.errors import InvalidFile, InvalidValue
from keraslab_cli.core.loading import (
    InvalidInputs,
    check_config,
    load_model,
    parse_point,
    points_from_values,
    read_points_csv,
    read_training_run,
)

TOLERANCE = 1e-5  # Keras computes in float32; NumPy in float64

NUMPY_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "heaviside": lambda z: (z >= 0).astype(float),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1),
}


def numpy_forward(network: handnet.Network, points: np.ndarray) -> np.ndarray:
    """Evaluate the network neuron by neuron, from the natural view only."""
    values = np.asarray(points, dtype=float)
    for layer in network.layers:
        sums = np.stack([values @ np.array(neuron.weights) + neuron.bias for neuron in layer.neurons], axis=1)
        values = NUMPY_ACTIVATIONS[layer.activation](sums)
    return values


def random_network(rng: np.random.Generator, heaviside_allowed: bool = False) -> handnet.Network:
    names = [name for name in NUMPY_ACTIVATIONS if heaviside_allowed or name != "heaviside"]
    inputs = int(rng.integers(1, 4))
    layers, fan_in = [], inputs
    for _layer in range(int(rng.integers(1, 4))):
        units = int(rng.integers(1, 5))
        neurons = tuple(handnet.Neuron(tuple(float(w) for w in rng.normal(0, 1.5, fan_in).round(3)), round(float(rng.normal()), 3)) for _n in range(units))
        layers.append(handnet.Layer(str(rng.choice(names)), neurons))
        fan_in = units
    return handnet.Network("random", inputs, tuple(layers))


def write(tmp_path, text, name="net.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


ONE_NEURON = """
inputs = 2
[[layers]]
activation = "sigmoid"
neurons = [ { weights = [1, 2], bias = -1 } ]
"""


def test_one_sigmoid_neuron_file(tmp_path):
    network = handnet.load_network(write(tmp_path, ONE_NEURON))
    model = handnet.build_model(network)
    value = handnet.evaluate(model, np.array([[2.0, 1.0]]))[0, 0]
    assert abs(value - 1 / (1 + np.exp(-3))) < TOLERANCE
    assert round(value, 4) == 0.9526


def test_json_file_equals_toml(tmp_path):
    document = {"inputs": 2, "layers": [{"activation": "sigmoid", "neurons": [{"weights": [1, 2], "bias": -1}]}]}
    from_json = handnet.load_network(write(tmp_path, json.dumps(document), "net.json"))
    from_toml = handnet.load_network(write(tmp_path, ONE_NEURON))
    assert from_json.layers == from_toml.layers
    assert from_json.to_dict() == document


def test_builtin_values_match_handout():
    relu = handnet.build_model(handnet.BUILTIN_NETWORKS["relu-1d"])
    assert handnet.evaluate(relu, np.array([[3.0]]))[0, 0] == pytest.approx(2.0, abs=TOLERANCE)
    sigmoid = handnet.build_model(handnet.BUILTIN_NETWORKS["sigmoid-2d"])
    values = handnet.evaluate(sigmoid, np.array([[7.0, -5.0], [1.0, -1.0]]))[:, 0]
    assert round(values[0], 3) == 0.123
    expected = numpy_forward(handnet.BUILTIN_NETWORKS["sigmoid-2d"], np.array([[7.0, -5.0], [1.0, -1.0]]))[:, 0]
    assert np.allclose(values, expected, atol=TOLERANCE)


def test_builtin_parameter_counts():
    assert handnet.BUILTIN_NETWORKS["relu-1d"].trainable_parameters == 7
    assert handnet.BUILTIN_NETWORKS["sigmoid-2d"].trainable_parameters == 13


def test_keras_layout_is_transposed():
    network = handnet.BUILTIN_NETWORKS["sigmoid-2d"]
    kernel, bias = handnet.keras_weights(network.layers[0])
    assert kernel.shape == (2, 3)
    assert bias.shape == (3,)
    assert kernel.tolist() == [[1, 3, -5], [2, -4, -6]]
    model = handnet.build_model(network)
    keras_kernel, keras_bias = model.layers[0].get_weights()
    assert np.array_equal(keras_kernel, kernel)
    assert np.array_equal(keras_bias, bias)
    # The handout's first layer: coeff = [[1., -0.5]], biais = [-1, 1].
    relu_kernel, relu_bias = handnet.keras_weights(handnet.BUILTIN_NETWORKS["relu-1d"].layers[0])
    assert relu_kernel.tolist() == [[1.0, -0.5]]
    assert relu_bias.tolist() == [-1.0, 1.0]


def test_random_networks_match_numpy():
    rng = np.random.default_rng(0)
    for _case in range(25):
        network = random_network(rng)
        points = rng.uniform(-3, 3, size=(40, network.inputs))
        model = handnet.build_model(network)
        expected = numpy_forward(network, points)
        actual = handnet.evaluate(model, points)
        assert actual.shape == expected.shape
        assert np.allclose(actual, expected, atol=1e-4, rtol=1e-4), network.architecture()


def test_trace_matches_numpy_layer_by_layer():
    rng = np.random.default_rng(1)
    for _case in range(10):
        network = random_network(rng)
        points = rng.uniform(-2, 2, size=(5, network.inputs))
        traces = handnet.trace(handnet.build_model(network), points)
        values = points
        for layer, traced in zip(network.layers, traces):
            sums = values @ np.array([neuron.weights for neuron in layer.neurons]).T + np.array([neuron.bias for neuron in layer.neurons])
            assert np.allclose(traced.weighted_sums, sums, atol=1e-4)
            values = NUMPY_ACTIVATIONS[layer.activation](sums)
            assert np.allclose(traced.activations, values, atol=1e-4)


def test_heaviside_step_at_zero(tmp_path):
    text = 'inputs = 1\n[[layers]]\nactivation = "heaviside"\nneurons = [ { weights = [1], bias = 0 } ]\n'
    model = handnet.build_model(handnet.load_network(write(tmp_path, text)))
    assert handnet.evaluate(model, np.array([[-0.1], [0.0], [0.1]]))[:, 0].tolist() == [0.0, 1.0, 1.0]


def test_heaviside_survives_safe_save_and_load(tmp_path):
    rng = np.random.default_rng(2)
    network = handnet.Network("step", 2, (
        handnet.Layer("heaviside", (handnet.Neuron((1.0, -1.0), 0.5), handnet.Neuron((0.5, 2.0), -1.0))),
        handnet.Layer("linear", (handnet.Neuron((2.0, 3.0), 0.0),)),
    ))
    model = handnet.build_model(network)
    path = tmp_path / "step.keras"
    model.save(path)
    loaded = load_model(str(path))
    points = rng.uniform(-2, 2, size=(50, 2))
    assert np.array_equal(handnet.evaluate(loaded.model, points), handnet.evaluate(model, points))
    assert np.allclose(handnet.evaluate(loaded.model, points), numpy_forward(network, points))
    back = handnet.network_from_model(loaded.model, "step", str(path))
    assert back.layers == network.layers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ONE_NEURON.replace("[1, 2]", "[1, 2, 3]"), "layer 1, neuron 1: expected 2 weights (one per input: the network's inputs), found 3"),
        (ONE_NEURON.replace('"sigmoid"', '"sigmoïde"'), "layer 1: unknown activation 'sigmoïde'"),
        (ONE_NEURON.replace(", bias = -1", ""), "layer 1, neuron 1: missing bias"),
        (ONE_NEURON.replace("bias = -1", 'bias = "a"'), "layer 1, neuron 1: the bias must be a finite number, found 'a'"),
        (ONE_NEURON.replace("[1, 2]", '[1, "x"]'), "layer 1, neuron 1: weight 2 must be a finite number, found 'x'"),
        (ONE_NEURON.replace("[1, 2]", "[1, nan]"), "weight 2 must be a finite number"),
        (ONE_NEURON.replace("bias = -1", "biais = -1"), "layer 1, neuron 1: unknown key 'biais'"),
        (ONE_NEURON.replace("inputs = 2", ""), "missing key inputs"),
        (ONE_NEURON.replace("inputs = 2", "inputs = 0"), "inputs must be a whole number of at least 1"),
        ("inputs = 1\n", "expected at least one layer"),
        ('import os\nos.system("echo hacked")\n', "not valid TOML"),
        (ONE_NEURON + '[[layers]]\nneurons = [ { weights = [1, 1], bias = 0 } ]\n', "layer 2, neuron 1: expected 1 weights (one per input: the neurons of layer 1), found 2"),
    ],
)
def test_invalid_network_file(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(InvalidFile) as caught:
        handnet.load_network(path)
    assert caught.value.path == path
    assert expected in caught.value.problem


def test_second_neuron_and_layer_numbers(tmp_path):
    text = """
inputs = 1
[[layers]]
activation = "relu"
neurons = [ { weights = [1], bias = 0 }, { weights = [2], bias = 0 }, { weights = [3], bias = 0 } ]
[[layers]]
activation = "linear"
neurons = [ { weights = [1, 1, 1], bias = 0 }, { weights = [1, 1], bias = 0 } ]
"""
    with pytest.raises(InvalidFile) as caught:
        handnet.load_network(write(tmp_path, text))
    assert "layer 2, neuron 2: expected 3 weights" in caught.value.problem
    assert "found 2" in caught.value.problem


def test_missing_network_file(tmp_path):
    with pytest.raises(InvalidFile) as caught:
        handnet.load_network(str(tmp_path / "absent.toml"))
    assert "file not found" in caught.value.problem


def test_activation_names_resolve_in_keras():
    from keraslab_cli.core.activations import get_activation
    from keraslab_cli.core.defaults import HAND_ACTIVATIONS

    for name in HAND_ACTIVATIONS:
        assert callable(get_activation(name)), name


def save_model(path, layers):
    from keraslab_cli.core.backend import keras

    keras.Sequential([keras.layers.Input(shape=(1,)), *layers]).save(path)
    return path


def test_lambda_layer_rejected(tmp_path):
    from keraslab_cli.core.backend import keras

    path = save_model(tmp_path / "lambda.keras", [keras.layers.Lambda(lambda x: x * 2)])
    with pytest.raises(InvalidFile) as caught:
        load_model(str(path))
    assert "Lambda" in caught.value.problem
    assert "safe mode" in caught.value.problem


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"hello, I am text\n", "text.keras", "not a Keras model"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "old.h5", "legacy HDF5"),
        (pickle.dumps({"weights": [1, 2]}), "model.pkl", "pickle"),
        (pickle.dumps({"weights": [1, 2]}), "model.keras", "pickle"),
    ],
)
def test_unsafe_or_foreign_files_rejected(tmp_path, content, name, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidFile) as caught:
        load_model(str(path))
    assert expected in caught.value.problem


def test_corrupt_and_truncated_archives(tmp_path):
    from keraslab_cli.core.backend import keras

    good = save_model(tmp_path / "good.keras", [keras.layers.Dense(2)])
    data = good.read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidFile) as caught:
        load_model(str(truncated))
    assert "corrupt or truncated" in caught.value.problem

    flipped = bytearray(data)
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("model.weights.h5")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    flipped[middle] ^= 0xFF
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(InvalidFile) as caught:
        load_model(str(damaged))
    assert "corrupt" in caught.value.problem


def test_zip_without_keras_entries(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(InvalidFile) as caught:
        load_model(str(path))
    assert "lacks config.json, model.weights.h5" in caught.value.problem


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"module": "os", "class_name": "system", "config": {}}, "os.system"),
        ({"module": "builtins", "class_name": "function", "config": "eval"}, "builtins.eval"),
        ({"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": {}}, "TorchModuleWrapper"),
        ({"class_name": "Sequential", "module": "keras", "config": {"layers": [{"class_name": "__lambda__", "config": {}}]}}, "Lambda"),
    ],
)
def test_config_outside_keras_rejected(config, expected):
    with pytest.raises(InvalidFile) as caught:
        check_config(config, "model.keras")
    assert expected in caught.value.problem


def test_config_of_keraslab_models_accepted():
    check_config({"module": "builtins", "class_name": "function", "config": "keraslab>heaviside", "registered_name": "function"}, "m.keras")
    check_config({"module": "keras.layers", "class_name": "Dense", "config": {"activation": "tanh"}}, "m.keras")


def test_run_folder_without_model(tmp_path):
    with pytest.raises(InvalidFile) as caught:
        load_model(str(tmp_path))
    assert "model.keras" in caught.value.problem


def test_points_from_values():
    assert points_from_values(["-1", "2", "3.5"], 1) == [(-1.0,), (2.0,), (3.5,)]
    assert points_from_values(["7", "-5", "1", "-1"], 2) == [(7.0, -5.0), (1.0, -1.0)]
    assert points_from_values(["7,-5", "1", "-1"], 2) == [(7.0, -5.0), (1.0, -1.0)]
    assert points_from_values(["-1e-3"], 1) == [(-0.001,)]


@pytest.mark.parametrize(("values", "expected"), [(["1", "2", "3"], "groups of 2"), (["--jsno"], "No such option: --jsno"), (["abc", "1"], "'abc'"), (["inf", "1"], "finite"), (["1", "1,2"], "left over: 1")])
def test_points_from_values_errors(values, expected):
    with pytest.raises(InvalidInputs) as caught:
        points_from_values(values, 2)
    assert expected in str(caught.value)


def test_parse_point_errors():
    assert parse_point("-1,2", 2) == (-1.0, 2.0)
    with pytest.raises(InvalidValue) as caught:
        parse_point("1,2,3", 2)
    assert caught.value.field == "at"
    assert "2 finite numbers" in caught.value.expected


def test_read_points_csv():
    assert read_points_csv("x1,x2\n7,-5\n\n# comment\n1,-1\n", "p.csv", 2) == [(7.0, -5.0), (1.0, -1.0)]
    assert read_points_csv("x1;x2\n0,5;-1,25\n", "p.csv", 2) == [(0.5, -1.25)]
    with pytest.raises(InvalidFile) as caught:
        read_points_csv("x\n1\n2,3\n", "p.csv", 1)
    assert "line 3: expected 1 value (the model has one input), found 2" in caught.value.problem
    with pytest.raises(InvalidFile) as caught:
        read_points_csv("1\nabc\n", "p.csv", 1)
    assert "line 2: expected finite numbers" in caught.value.problem
    with pytest.raises(InvalidFile):
        read_points_csv("\n", "p.csv", 1)


def test_function_data_of_each_kind():
    from keraslab_cli.core.function_plots import function_data

    def square_sum(batch):
        return (batch**2).sum(axis=1, keepdims=True)

    curve = function_data(square_sum, 1, (-2.0, 3.0), 100)
    assert curve.kind == "curve"
    assert np.allclose(curve.axes[0], np.linspace(-2, 3, 100))
    assert np.allclose(curve.values[:, 0], np.linspace(-2, 3, 100) ** 2)

    surface = function_data(square_sum, 2, (-5.0, 5.0), 20, marked=np.array([[7.0, -5.0]]))
    axis = np.linspace(-5, 5, 20)
    grid_x, grid_y = np.meshgrid(axis, axis)
    assert surface.values.shape == (20, 20, 1)
    assert np.allclose(surface.values[:, :, 0], grid_x**2 + grid_y**2)
    assert np.allclose(surface.marked[1], [[74.0]])

    slices = function_data(square_sum, 3, (-1.0, 1.0), 11, marked=np.array([[1.0, 2.0, 3.0]]))
    assert slices.kind == "slices"
    assert np.allclose(slices.values[1][:, 0], 1 + np.linspace(-1, 1, 11) ** 2 + 9)


@pytest.mark.parametrize(("text", "number"), [("2,5", "2.5"), ("-0,75", "-0.75"), (" 3,0 ", "3.0")])
def test_decimal_comma_hint(text, number):
    with pytest.raises(InvalidValue) as caught:
        parse_point(text, 1)
    assert caught.value.expected.startswith("1 finite number, ")
    assert f"write decimals with a point: {number}" in caught.value.expected


def test_no_hint_without_decimal_comma():
    with pytest.raises(InvalidValue) as caught:
        parse_point("1,2,3", 2)
    assert caught.value.expected.startswith("2 finite numbers separated by commas")
    assert "decimals" not in caught.value.expected
    with pytest.raises(InvalidValue) as caught:
        parse_point("2,5", 2 + 1)
    assert "decimals" not in caught.value.expected


def test_decimal_comma_hint_in_values():
    with pytest.raises(InvalidInputs) as caught:
        points_from_values(["2,5"], 1)
    assert "write decimals with a point: 2.5" in str(caught.value)


def test_decimal_comma_hint_in_french():
    from keraslab_cli.core.i18n import set_language

    set_language("fr")
    with pytest.raises(InvalidValue) as caught:
        parse_point("2,5", 1)
    assert caught.value.expected == "1 nombre fini, la seule entrée du réseau (par exemple 3) ; écrivez les nombres décimaux avec un point : 2.5"


def test_range_covering_widens_to_points():
    from keraslab_cli.core.function_plots import range_covering

    # sigmoid-2d at (7, -5): the width becomes 12, so the margin is 0.6 on both sides.
    assert range_covering((-5.0, 5.0), [(7.0, -5.0)]) == (-6.0, 8.0)
    assert range_covering((-2.0, 3.0), [(10.0,)]) == (-2.0, 11.0)
    assert range_covering((-2.0, 3.0), [(-12.0,), (0.0,)]) == (-13.0, 3.0)
    assert range_covering((-5.0, 5.0), [(1.0, -1.0), (5.0, 5.0)]) == (-5.0, 5.0)
    assert range_covering((0.0, 5.0), []) == (0.0, 5.0)


def test_points_outside_interval():
    from keraslab_cli.core.function_plots import points_outside

    assert points_outside((-5.0, 5.0), [(7.0, -5.0), (1.0, -1.0), (0.0, -5.5)]) == [(7.0, -5.0), (0.0, -5.5)]
    assert points_outside((0.0, 5.0), [(0.0,), (5.0,)]) == []


def test_read_training_run(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"config": {"interval": [0, 5], "function": "sin(x)"}}))
    run = read_training_run(path)
    assert run.interval == (0.0, 5.0)
    assert run.function == "sin(x)"
    assert run.points_outside([(-1.0,), (0.0,), (5.0,), (7.5,)]) == [(-1.0,), (7.5,)]


@pytest.mark.parametrize(
    "content",
    ["not json", "[1, 2]", '{"config": {"layers": []}}', '{"config": {"interval": [5, 0]}}',
     '{"config": {"interval": [0, "5"]}}', '{"config": {"interval": [0, NaN]}}', '{"config": {"interval": [0, 1, 2]}}'],
)
def test_training_run_ignored_when_invalid(tmp_path, content):
    path = tmp_path / "run.json"
    path.write_text(content)
    assert read_training_run(path) is None


def test_function_data_with_target():
    from keraslab_cli.core.function_plots import function_data

    data = function_data(lambda batch: batch * 2, 1, (0.0, 5.0), 11, target=("sin(x)", np.sin), training_interval=(0.0, 5.0))
    assert data.target[0] == "sin(x)"
    assert np.allclose(data.target[1], np.sin(np.linspace(0, 5, 11)))
    assert data.training_interval == (0.0, 5.0)
