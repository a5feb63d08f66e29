"""The approx command through the CLI: flags, outputs, JSON, reproducibility."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

FAST = ("--epochs", "30", "--n", "20")


def run_json(invoke, tmp_path, *args):
    result = invoke("approx", *FAST, "--outputs", tmp_path, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_default_folder_name_and_files(invoke, tmp_path):
    result = invoke("approx", "--epochs", "5", "--outputs", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    folder = tmp_path / "approx" / "4x10-tanh-rmsprop-lr0.001-e5-s0"
    for name in ("fit.png", "loss.png", "history.csv", "model.keras", "run.json"):
        assert (folder / name).is_file(), name
    assert (folder / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert zipfile.is_zipfile(folder / "model.keras")
    history = (folder / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,learning_rate"
    assert len(history) == 6
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "completed"
    assert run["config"]["learning_rate"] == 0.001
    assert run["metrics"]["trainable_params"] == 361
    assert "keras" in run["versions"]


def test_json_is_the_only_stdout(invoke, tmp_path):
    document = run_json(invoke, tmp_path)
    assert set(document) >= {"config", "metrics", "files", "folder", "status"}
    assert document["metrics"]["trainable_params"] == 361
    assert Path(document["files"]["fit.png"]).is_file()


@pytest.mark.parametrize(("layers", "units", "expected"), [(1, 3, 10), (2, 5, 46), (4, 10, 361), (3, 2, 19)])
def test_parameter_count_flags(invoke, tmp_path, layers, units, expected):
    document = run_json(invoke, tmp_path, "--layers", layers, "--p", units, "--epochs", "1")
    assert document["metrics"]["trainable_params"] == expected
    assert document["metrics"]["neurons"] == layers * units + 1


def test_every_training_flag(invoke, tmp_path):
    document = run_json(
        invoke, tmp_path,
        "--layers", "2", "--units", "4", "--activation", "relu", "--optimizer", "sgd",
        "--learning-rate", "0.02", "--momentum", "0.5", "--nesterov", "--batch-size", "8",
        "--seed", "3", "--interval", "-1", "2", "--normalize", "--function", "x**2 - 1",
        "--name", "custom",
    )
    config = document["config"]
    assert config["layers"] == 2
    assert config["units"] == 4
    assert config["activation"] == "relu"
    assert config["optimizer"] == "sgd"
    assert config["learning_rate"] == 0.02
    assert config["momentum"] == 0.5
    assert config["nesterov"] is True
    assert config["batch_size"] == 8
    assert config["seed"] == 3
    assert config["interval"] == [-1.0, 2.0]
    assert config["normalize"] is True
    assert config["function"] == "x**2 - 1"
    assert document["folder"].endswith("approx/custom")
    assert document["metrics"]["batch_size"] == 8


@pytest.mark.parametrize(("optimizer", "rate"), [("rmsprop", 0.001), ("sgd", 0.01), ("adam", 0.001), ("adagrad", 0.001), ("nadam", 0.001), ("adamw", 0.001), ("adadelta", 0.001)])
def test_default_learning_rate_per_optimizer(invoke, tmp_path, optimizer, rate):
    document = run_json(invoke, tmp_path, "--optimizer", optimizer, "--epochs", "2")
    assert document["config"]["learning_rate"] == rate
    assert f"lr{rate:g}" in document["folder"]


def test_learning_rate_table_matches_keras():
    import inspect

    from keraslab_cli.core.backend import keras
    from keraslab_cli.core.defaults import OPTIMIZER_LEARNING_RATES

    classes = {"rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
               "adamw": keras.optimizers.AdamW, "adagrad": keras.optimizers.Adagrad,
               "adadelta": keras.optimizers.Adadelta, "nadam": keras.optimizers.Nadam}
    for name, cls in classes.items():
        assert inspect.signature(cls).parameters["learning_rate"].default == OPTIMIZER_LEARNING_RATES[name], name


def test_same_seed_identical_numbers(invoke, tmp_path):
    first = run_json(invoke, tmp_path / "a", "--optimizer", "adam", "--batch-size", "5")
    second = run_json(invoke, tmp_path / "b", "--optimizer", "adam", "--batch-size", "5")
    assert first["metrics"]["final_loss"] == second["metrics"]["final_loss"]
    history_a = Path(first["files"]["history.csv"]).read_text()
    history_b = Path(second["files"]["history.csv"]).read_text()
    assert history_a == history_b


def test_rerun_replaces_folder_files(invoke, tmp_path):
    first = run_json(invoke, tmp_path, "--name", "again")
    second = run_json(invoke, tmp_path, "--name", "again", "--seed", "1")
    assert first["folder"] == second["folder"]
    run = json.loads(Path(second["files"]["run.json"]).read_text())
    assert run["config"]["seed"] == 1
    leftovers = [p.name for p in Path(second["folder"]).iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_normalized_model_takes_raw_x(invoke, tmp_path):
    from keraslab_cli.core.backend import keras

    document = run_json(invoke, tmp_path, "--normalize", "--interval", "10", "20", "--function", "x/10", "--epochs", "5")
    model = keras.saving.load_model(document["files"]["model.keras"], safe_mode=True)
    assert model.layers[0].name == "normalization"
    x = np.array([[10.0], [15.0], [20.0]], dtype="float32")
    mean, std = 15.0, np.linspace(10, 20, 20).std()
    normalized = (x - mean) / std
    expected = normalized
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        expected = expected @ kernel + bias
        expected = np.tanh(expected) if layer.name.startswith("hidden") else expected
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


def test_summary_table_names_parameters(invoke, tmp_path):
    result = invoke("approx", *FAST, "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    for text in ("Architecture", "Summary", "361", "(L−1)·p² + (L+2)·p + 1", "rmsprop", "Keras default", "whole data set", "Final loss", "Max |F(x) − f(x)|", "ms per epoch"):
        assert text in result.stdout, text


def test_index_row_per_run(invoke, tmp_path):
    run_json(invoke, tmp_path)
    run_json(invoke, tmp_path, "--seed", "2")
    rows = (tmp_path / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("time,command,status,folder")
    assert len(rows) == 3


@pytest.mark.slow
def test_adam_normalized_reaches_target(invoke, tmp_path):
    result = invoke("approx", "--optimizer", "adam", "--lr", "0.01", "--normalize", "--epochs", "2000", "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["mse"] < 0.005


@pytest.mark.slow
def test_lab_defaults_reach_target(invoke, tmp_path):
    result = invoke("approx", "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["final_loss"] < 0.1
    assert metrics["trainable_params"] == 361
