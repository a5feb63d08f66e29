"""The handnet command through the CLI: acceptance values, tables, errors, outputs, French."""

import json
import re

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ONE_NEURON = """inputs = 2
[[layers]]
activation = "sigmoid"
neurons = [ { weights = [1, 2], bias = -1 } ]
"""


def handnet_json(invoke, tmp_path, *args):
    result = invoke("handnet", *args, "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def table_row(output: str, *cells: str) -> bool:
    """Tell whether a table row contains these cells in order."""
    pattern = r"│\s*" + r"\s*│\s*".join(re.escape(cell) for cell in cells) + r"\s*│"
    return re.search(pattern, output) is not None


def test_relu_1d_at_3(invoke, tmp_path):
    result = invoke("handnet", "relu-1d", "--at", "3", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "3", "2")
    document = handnet_json(invoke, tmp_path, "relu-1d", "--at", "3")
    assert document["points"][0]["outputs"] == [pytest.approx(2.0, abs=1e-6)]


def test_sigmoid_2d_handout_points(invoke, tmp_path):
    result = invoke("handnet", "sigmoid-2d", "--at", "7,-5", "--at", "1,-1", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "7", "-5", "0.123032")
    expected = 1 / (1 + np.exp(-(1 / (1 + np.exp(2)) + 1 / (1 + np.exp(-7)) + 1 / (1 + np.exp(-2)) - 3)))
    document = handnet_json(invoke, tmp_path, "sigmoid-2d", "--at", "7,-5", "--at", "1,-1")
    assert round(document["points"][0]["outputs"][0], 3) == 0.123
    assert document["points"][1]["outputs"][0] == pytest.approx(expected, abs=1e-6)


def test_builtin_default_points(invoke, tmp_path):
    document = handnet_json(invoke, tmp_path, "sigmoid-2d")
    assert [point["inputs"] for point in document["points"]] == [[7.0, -5.0], [1.0, -1.0]]


def test_one_neuron_file(invoke, tmp_path):
    path = tmp_path / "one.toml"
    path.write_text(ONE_NEURON)
    document = handnet_json(invoke, tmp_path, path, "--at", "2,1")
    assert round(document["points"][0]["outputs"][0], 4) == 0.9526
    assert document["network"] == "one"
    assert document["keras_weights"][0]["kernel_shape"] == [2, 1]
    assert document["folder"].endswith("handnet/one")


def test_weights_tables_show_both_views(invoke, tmp_path):
    result = invoke("handnet", "sigmoid-2d", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    output = result.stdout
    assert table_row(output, "2", "3", "-4", "0")  # neuron 2: weights (3, -4), bias 0
    assert table_row(output, "kernel[0]: input 1", "1", "3", "-5")  # Keras: one row per input
    assert table_row(output, "kernel[1]: input 2", "2", "-4", "-6")
    assert "kernel: shape (2, 3) = (inputs, neurons); bias: shape (3,)" in output
    assert "model.layers[0].set_weights([np.array([[1.0, 3.0, -5.0], [2.0, -4.0, -6.0]]), np.array([-1.0, 0.0, 1.0])])" in output
    assert "13 trainable parameters" in output


def test_trace_table(invoke, tmp_path):
    result = invoke("handnet", "relu-1d", "--at", "3", "--trace", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "1", "1", "1·3 - 1", "2", "relu(z) = 2")
    assert table_row(result.stdout, "1", "2", "-0.5·3 + 1", "-0.5", "relu(z) = 0")
    document = handnet_json(invoke, tmp_path, "relu-1d", "--at", "3", "--trace")
    trace = document["points"][0]["trace"]
    assert trace[0]["weighted_sums"] == [2.0, -0.5]
    assert trace[0]["activations"] == [2.0, 0.0]


def test_negative_values_need_no_dashes(invoke, tmp_path):
    document = handnet_json(invoke, tmp_path, "sigmoid-2d", "--at", "-1,2", "--range", "-2", "3", "--grid", "5")
    assert document["points"][0]["inputs"] == [-1.0, 2.0]
    run = json.loads((tmp_path / "handnet" / "sigmoid-2d" / "run.json").read_text())
    assert run["plot"] == {"kind": "surface", "interval": [-2.0, 3.0], "points": 5}


def test_expect_passes_and_fails(invoke, tmp_path):
    passed = invoke("handnet", "sigmoid-2d", "--at", "7,-5", "--expect", "0.123", "--outputs", tmp_path)
    assert passed.exit_code == 0, passed.output
    assert "Check passed" in passed.stdout
    failed = invoke("handnet", "sigmoid-2d", "--at", "7,-5", "--expect", "0.2", "--tol", "0.01", "--outputs", tmp_path)
    assert failed.exit_code == 1
    assert "F(7, -5) = 0.123032 differs from the expected 0.2" in failed.stderr
    assert "more than --tol 0.01" in failed.stderr


def test_expect_without_point(invoke, tmp_path):
    result = invoke("handnet", "relu-1d", "--expect", "2", "--outputs", tmp_path)
    assert result.exit_code == 2
    assert "--expect" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ONE_NEURON.replace("[1, 2]", "[1, 2, 3]"), "layer 1, neuron 1: expected 2 weights"),
        (ONE_NEURON.replace('"sigmoid"', '"sigmod"'), "unknown activation 'sigmod'"),
        (ONE_NEURON.replace(", bias = -1", ""), "missing bias"),
        (ONE_NEURON.replace("[1, 2]", "[1, \"deux\"]"), "weight 2 must be a finite number, found 'deux'"),
        ("__import__('os').system('echo owned')\n", "not valid TOML"),
    ],
)
def test_invalid_file_exit_2(invoke, tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = invoke("handnet", path, "--outputs", tmp_path)
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "handnet").exists()


def test_wrong_point_size(invoke, tmp_path):
    result = invoke("handnet", "sigmoid-2d", "--at", "1,2,3", "--outputs", tmp_path)
    assert result.exit_code == 2
    assert "Invalid value for --at: 1,2,3" in result.stderr


def test_python_file_rejected(invoke, tmp_path):
    path = tmp_path / "net.py"
    path.write_text("import os\n")
    result = invoke("handnet", path, "--outputs", tmp_path)
    assert result.exit_code == 2
    assert "not a Keras model" in result.stderr


def test_lambda_model_rejected(invoke, tmp_path):
    from keraslab_cli.core.backend import keras

    path = tmp_path / "lambda.keras"
    keras.Sequential([keras.layers.Input(shape=(1,)), keras.layers.Lambda(lambda x: x + 1)]).save(path)
    result = invoke("handnet", path, "--outputs", tmp_path)
    assert result.exit_code == 2
    assert "Lambda" in result.stderr


def test_saved_folder_and_model(invoke, tmp_path):
    from keraslab_cli.core.backend import keras

    document = handnet_json(invoke, tmp_path, "relu-1d", "--name", "mine")
    folder = tmp_path / "handnet" / "mine"
    assert document["folder"] == str(folder)
    for name in ("model.keras", "F.png", "run.json"):
        assert (folder / name).is_file(), name
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    assert float(keras.ops.convert_to_numpy(model(np.array([[3.0]], dtype=np.float32)))[0, 0]) == pytest.approx(2.0)
    run = json.loads((folder / "run.json").read_text())
    assert run["config"]["layers"][0]["neurons"][1] == {"weights": [-0.5], "bias": 1.0}
    assert run["trainable_params"] == 7
    index = (tmp_path / "runs.csv").read_text().splitlines()
    assert index[1].split(",")[1:3] == ["handnet", "completed"]


def test_saved_model_reloads_in_handnet(invoke, tmp_path):
    handnet_json(invoke, tmp_path, "sigmoid-2d")
    document = handnet_json(invoke, tmp_path, tmp_path / "handnet" / "sigmoid-2d" / "model.keras", "--at", "7,-5", "--name", "again")
    assert document["network"] == "sigmoid-2d"
    assert document["config"]["layers"][0]["neurons"][2] == {"weights": [-5.0, -6.0], "bias": 1.0}
    assert round(document["points"][0]["outputs"][0], 3) == 0.123


def test_plot_files_are_images(invoke, tmp_path):
    for network in ("relu-1d", "sigmoid-2d"):
        document = handnet_json(invoke, tmp_path, network)
        data = (tmp_path / "handnet" / network / "F.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 20_000
        assert document["files"]["F.png"].endswith("F.png")


def test_three_inputs_draw_slices(invoke, tmp_path):
    path = tmp_path / "three.json"
    path.write_text(json.dumps({"inputs": 3, "layers": [{"activation": "tanh", "neurons": [{"weights": [1, -1, 0.5], "bias": 0}]}]}))
    handnet_json(invoke, tmp_path, path, "--at", "1,2,3")
    run = json.loads((tmp_path / "handnet" / "three" / "run.json").read_text())
    assert run["plot"]["kind"] == "slices"
    assert (tmp_path / "handnet" / "three" / "F.png").read_bytes().startswith(PNG_SIGNATURE)


def test_list_builtins(invoke):
    result = invoke("handnet", "--list")
    assert result.exit_code == 0
    assert "relu-1d" in result.stdout
    assert "2 → 3 sigmoid → 1 sigmoid" in result.stdout


def test_french_output(invoke, tmp_path):
    result = invoke("handnet", "sigmoid-2d", "--at", "7,-5", "--outputs", tmp_path, "--lang", "fr")
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, "7", "-5", "0,123032")
    assert "Couche 1" in result.stdout
    assert "biais" in result.stdout
    error = invoke("handnet", tmp_path / "absent.toml", "--lang", "fr")
    assert error.exit_code == 2
    assert "introuvable" in error.stderr


def test_json_identical_in_both_languages(invoke, tmp_path):
    english = handnet_json(invoke, tmp_path, "relu-1d", "--at", "-1")
    french = handnet_json(invoke, tmp_path, "relu-1d", "--at", "-1", "--lang", "fr")
    assert english == french


def test_range_widens_to_at_points(invoke, tmp_path):
    handnet_json(invoke, tmp_path, "sigmoid-2d", "--at", "7,-5", "--at", "1,-1")
    run = json.loads((tmp_path / "handnet" / "sigmoid-2d" / "run.json").read_text())
    # [-5, 5] grows to 7 plus a margin of 5 % of the width, rounded outwards.
    assert run["plot"]["interval"] == [-6.0, 8.0]
    handnet_json(invoke, tmp_path, "relu-1d", "--at", "3")
    run = json.loads((tmp_path / "handnet" / "relu-1d" / "run.json").read_text())
    assert run["plot"]["interval"] == [-2.0, 3.0]


def test_points_outside_range_warned(invoke, tmp_path):
    result = invoke("handnet", "sigmoid-2d", "--at", "7,-5", "--at", "1,-1", "--range", "-5", "5", "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["network"] == "sigmoid-2d"
    message = " ".join(result.stderr.split())
    assert "Warning: Left off the plot, outside --range [-5, 5]: (7, -5)." in message
    assert "(1, -1)" not in message
    french = invoke("handnet", "relu-1d", "--at", "4.5", "--range", "-2", "3", "--outputs", tmp_path, "--lang", "fr")
    assert french.exit_code == 0, french.output
    assert "Attention : Absents du graphique, hors de --range [-2 ; 3] : 4,5." in " ".join(french.stderr.split())


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_decimal_comma_hint(invoke, tmp_path, lang):
    result = invoke("handnet", "relu-1d", "--at", "2,5", "--outputs", tmp_path, "--lang", lang)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    hint = "write decimals with a point: 2.5" if lang == "en" else "écrivez les nombres décimaux avec un point : 2.5"
    assert hint in message
    assert "numbers" not in message


def command_summary(output: str, command: str) -> str:
    """Return the summary of a command in the table of keraslab --help, joined across lines."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.strip("│ ").startswith(command + " "))
    summary = [lines[start].strip("│ ")[len(command):].strip()]
    for line in lines[start + 1:]:
        cell = line.strip("│ ")
        if not line.startswith("│" + " " * 4) or not cell:
            break
        summary.append(cell.strip())
    return " ".join(summary)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_help_summary_is_whole_sentence(invoke, lang):
    result = invoke("--help", "--lang", lang)
    assert result.exit_code == 0, result.output
    summary = command_summary(result.stdout, "handnet")
    assert summary.count("(") == summary.count(")")
    assert summary.endswith(".")
    assert len(summary) < 100
    details = " ".join(invoke("handnet", "--help", "--lang", lang).stdout.split())
    assert details.count("(") == details.count(")")
