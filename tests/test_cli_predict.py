"""The predict command through the CLI: inputs, outputs for scripts, plots, untrusted files."""

import json
import pickle

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def predict_json(invoke, *args, input=None):
    result = invoke("predict", *args, "--json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def outputs_of(document):
    return [point["outputs"][0] for point in document["points"]]


def test_negative_values_after_model(invoke):
    document = predict_json(invoke, "relu-1d", "-1", "2", "3")
    assert [point["inputs"] for point in document["points"]] == [[-1.0], [2.0], [3.0]]
    # F(x) = relu(relu(x - 1) + relu(1 - x/2)) by hand.
    assert outputs_of(document) == pytest.approx([1.5, 1.0, 2.0], abs=1e-6)


def test_values_grouped_by_inputs(invoke):
    document = predict_json(invoke, "sigmoid-2d", "7", "-5", "1,-1", "--at", "0,0")
    assert [point["inputs"] for point in document["points"]] == [[7.0, -5.0], [1.0, -1.0], [0.0, 0.0]]
    assert round(outputs_of(document)[0], 3) == 0.123


def test_csv_output_only(invoke):
    result = invoke("predict", "sigmoid-2d", "--at", "7,-5", "--at", "1,-1", "--csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "x1,x2,F"
    assert len(lines) == 3
    inputs_and_output = [float(cell) for cell in lines[1].split(",")]
    assert inputs_and_output[:2] == [7.0, -5.0]
    assert round(inputs_and_output[2], 3) == 0.123


def test_input_file_and_stdin(invoke, tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x\n-2\n0.5\n3\n")
    from_file = predict_json(invoke, "relu-1d", "--input", path)
    from_stdin = predict_json(invoke, "relu-1d", "--input", "-", input="-2\n0.5\n3\n")
    assert from_file == from_stdin
    assert outputs_of(from_file) == pytest.approx([2.0, 0.75, 2.0], abs=1e-6)


def test_table_output(invoke):
    result = invoke("predict", "relu-1d", "-1")
    assert result.exit_code == 0, result.output
    assert "1.5" in result.stdout
    assert "inputs: 1, outputs: 1" in result.stdout


def test_plot_of_one_and_two_inputs(invoke, tmp_path):
    document = predict_json(invoke, "relu-1d", "3", "--plot", "--range", "-4", "4", "--outputs", tmp_path)
    assert document["plot"] == str(tmp_path / "predict" / "relu-1d.png")
    predict_json(invoke, "sigmoid-2d", "--plot", "--outputs", tmp_path, "--name", "surface")
    for name in ("relu-1d.png", "surface.png"):
        data = (tmp_path / "predict" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 20_000


def test_network_file_model(invoke, tmp_path):
    path = tmp_path / "one.toml"
    path.write_text('inputs = 2\n[[layers]]\nactivation = "sigmoid"\nneurons = [ { weights = [1, 2], bias = -1 } ]\n')
    assert round(outputs_of(predict_json(invoke, path, "2,1"))[0], 4) == 0.9526


def test_normalized_approx_run_reproduced(invoke, tmp_path):
    trained = invoke("approx", "--epochs", "30", "--n", "20", "--normalize", "--interval", "-1", "2", "--function", "sin(3*x)", "--layers", "2", "--p", "3",
                     "--outputs", tmp_path, "--name", "norm", "--quiet")
    assert trained.exit_code == 0, trained.output
    folder = tmp_path / "approx" / "norm"
    x = np.linspace(-1, 2, 7)
    document = predict_json(invoke, folder, *[repr(float(value)) for value in x])

    # Independent forward pass on raw x: the saved Normalization, then tanh layers and a linear output.
    from keraslab_cli.core.backend import keras

    model = keras.saving.load_model(folder / "model.keras")
    normalization = model.get_layer("normalization")
    mean, variance = (np.asarray(value, dtype=float).reshape(-1) for value in (normalization.mean, normalization.variance))
    assert mean[0] == pytest.approx(0.5)
    values = ((x - mean) / np.sqrt(variance)).reshape(-1, 1)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    for layer in dense:
        kernel, bias = layer.get_weights()
        values = values @ kernel + bias
        if layer is not dense[-1]:
            values = np.tanh(values)
    assert outputs_of(document) == pytest.approx(values[:, 0].tolist(), abs=1e-5)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("text.keras", b"just some text\n", "not a Keras model"),
        ("model.h5", b"\x89HDF\r\n\x1a\n" + bytes(100), "legacy HDF5"),
        ("model.pkl", pickle.dumps([1, 2, 3]), "pickle"),
        ("corrupt.keras", b"PK\x03\x04" + bytes(200), "corrupt or truncated"),
    ],
)
def test_untrusted_files_rejected(invoke, tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    result = invoke("predict", path, "1")
    assert result.exit_code == 2
    assert str(path) in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_lambda_layer_rejected(invoke, tmp_path):
    from keraslab_cli.core.backend import keras

    path = tmp_path / "lambda.keras"
    keras.Sequential([keras.layers.Input(shape=(1,)), keras.layers.Lambda(lambda x: x * 3)]).save(path)
    result = invoke("predict", path, "1")
    assert result.exit_code == 2
    assert "Lambda" in result.stderr
    assert "safe mode" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("absent.keras", "1"), "file not found"),
        (("sigmoid-2d", "1", "2", "3"), "groups of 2"),
        (("sigmoid-2d", "--at", "1"), "Invalid value for --at: 1"),
        (("relu-1d", "--jsno"), "No such option: --jsno"),
        (("relu-1d",), "No point to evaluate"),
        (("relu-1d", "1", "--csv", "--json"), "only one of --csv and --json"),
        (("relu-1d", "1", "--plot", "--range", "3", "-2"), "A < B"),
    ],
)
def test_usage_errors(invoke, tmp_path, args, expected):
    result = invoke("predict", *args, "--outputs", tmp_path)
    assert result.exit_code == 2
    assert expected in result.stderr


def test_bad_input_file_line(invoke, tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x1,x2\n1,2\n3\n")
    result = invoke("predict", "sigmoid-2d", "--input", path)
    assert result.exit_code == 2
    assert "line 3: expected 2 values" in result.stderr


def test_french_table_and_same_csv(invoke):
    french = invoke("predict", "sigmoid-2d", "7,-5", env={"KERASLAB_LANG": "fr"})
    assert french.exit_code == 0, french.output
    assert "0,123032" in french.stdout
    assert "entrées : 2" in french.stdout
    english_csv = invoke("predict", "sigmoid-2d", "7,-5", "--csv").stdout
    french_csv = invoke("predict", "sigmoid-2d", "7,-5", "--csv", "--lang", "fr").stdout
    assert english_csv == french_csv


def trained_run(tmp_path, interval=(0.0, 5.0), function="sin(x)"):
    """Save a one-input model with the run.json an approx run writes beside it."""
    from keraslab_cli.core.backend import keras

    folder = tmp_path / "approx" / "sine"
    folder.mkdir(parents=True)
    model = keras.Sequential([keras.layers.Input(shape=(1,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[2.0]], dtype=np.float32), np.array([-1.0], dtype=np.float32)])
    model.save(folder / "model.keras")
    (folder / "run.json").write_text(json.dumps({"command": "approx", "config": {"interval": list(interval), "function": function}}))
    return folder


@pytest.fixture
def plotted(monkeypatch):
    """Record the data of every plot of F that predict draws."""
    from keraslab_cli.core import function_plots

    recorded = []
    draw = function_plots.plot_function

    def record(path, data, name):
        recorded.append(data)
        return draw(path, data, name)

    monkeypatch.setattr(function_plots, "plot_function", record)
    return recorded


@pytest.mark.parametrize("model_path", ["folder", "model.keras"])
def test_plot_of_run_uses_training_interval(invoke, tmp_path, plotted, model_path):
    folder = trained_run(tmp_path)
    source = folder if model_path == "folder" else folder / "model.keras"
    document = predict_json(invoke, source, "--plot", "--outputs", tmp_path)
    assert document["model"] == "sine"
    assert document["plot"] == str(tmp_path / "predict" / "sine.png")
    data = plotted[0]
    assert data.interval == (0.0, 5.0)
    assert data.training_interval == (0.0, 5.0)
    assert data.target[0] == "sin(x)"
    assert np.allclose(data.target[1], np.sin(np.linspace(0, 5, 100)))
    assert np.allclose(data.values[:, 0], 2 * np.linspace(0, 5, 100) - 1, atol=1e-5)
    assert (tmp_path / "predict" / "sine.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_range_overrides_training_interval(invoke, tmp_path, plotted):
    folder = trained_run(tmp_path)
    predict_json(invoke, folder, "--plot", "--range", "-1", "7", "--outputs", tmp_path)
    assert plotted[0].interval == (-1.0, 7.0)
    assert plotted[0].training_interval == (0.0, 5.0)


def test_plot_of_builtin_keeps_handout_range(invoke, tmp_path, plotted):
    predict_json(invoke, "relu-1d", "--plot", "--outputs", tmp_path)
    assert plotted[0].interval == (-2.0, 3.0)
    assert plotted[0].target is None
    assert plotted[0].training_interval is None


def test_run_without_function_draws_f_alone(invoke, tmp_path, plotted):
    folder = trained_run(tmp_path, function="")
    predict_json(invoke, folder, "--plot", "--outputs", tmp_path)
    assert plotted[0].interval == (0.0, 5.0)
    assert plotted[0].target is None


def test_model_named_after_run_folder(invoke, tmp_path):
    folder = trained_run(tmp_path)
    result = invoke("predict", folder / "model.keras", "1")
    assert result.exit_code == 0, result.output
    assert "Model sine: inputs: 1, outputs: 1" in result.stdout


def test_extrapolation_warning_on_stderr(invoke, tmp_path):
    folder = trained_run(tmp_path)
    result = invoke("predict", folder, "-1", "3", "7.5", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["points"]) == 3
    assert "Extrapolation at x = -1, 7.5: the model was trained on x in [0, 5] only" in result.stderr
    csv_result = invoke("predict", folder, "7.5", "--csv")
    assert csv_result.stdout.splitlines()[0] == "x,F"
    assert "Extrapolation" not in csv_result.stdout
    assert "Extrapolation at x = 7.5" in csv_result.stderr


def test_extrapolation_warning_in_french(invoke, tmp_path):
    folder = trained_run(tmp_path, interval=(0.0, 2.5))
    result = invoke("predict", folder, "3.5", "--lang", "fr")
    assert result.exit_code == 0, result.output
    assert "Attention : Extrapolation en x = 3,5 : le modèle n'a été entraîné que sur x dans [0 ; 2,5]" in " ".join(result.stderr.split())


def test_no_warning_inside_training_interval(invoke, tmp_path):
    folder = trained_run(tmp_path)
    result = invoke("predict", folder, "0", "2.5", "5")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


@pytest.mark.parametrize(("args", "expected"), [(("relu-1d", "2,5"), "2.5"), (("relu-1d", "-0,75"), "-0.75"), (("relu-1d", "--at", "2,5"), "2.5")])
def test_decimal_comma_hint(invoke, args, expected):
    result = invoke("predict", *args)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "1 finite number, the network's only input" in message
    assert f"write decimals with a point: {expected}" in message


def test_stdin_error_names_standard_input(invoke):
    result = invoke("predict", "relu-1d", "--input", "-", input="abc,1\n")
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "Cannot read the points from standard input: line 1: expected 1 value" in message
    assert "the file" not in message
    french = invoke("predict", "relu-1d", "--input", "-", "--lang", "fr", input="\n")
    assert "Impossible de lire les points sur l'entrée standard" in " ".join(french.stderr.split())
