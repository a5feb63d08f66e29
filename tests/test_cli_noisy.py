"""The noisy command through the CLI: outputs, the overfitting report, early stopping."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from keraslab_cli.cli.noisy_report import overfitting_verdict
from keraslab_cli.core.data import make_dataset
from keraslab_cli.core.spec import ExperimentSpec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = ("--epochs", "20")


def lab_f(x: np.ndarray) -> np.ndarray:
    return np.cos(2 * x) + x * np.sin(3 * x) + np.sqrt(x) - 2


def numpy_forward(model, x: np.ndarray) -> np.ndarray:
    """Evaluate a tanh MLP saved by keraslab with NumPy alone."""
    values = x.reshape(-1, 1).astype(np.float64)
    for layer in model.layers:
        if not layer.get_weights():
            continue
        kernel, bias = layer.get_weights()
        values = values @ kernel + bias
        if layer.name.startswith("hidden"):
            values = np.tanh(values)
    return values.reshape(-1)


def read_rows(path: str) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


class FigureRecorder:
    """Replace plots.save_figure to keep what each figure plots, then save it."""

    def __init__(self, original):
        self.original = original
        self.figures: dict[str, list] = {}

    def __call__(self, figure, path):
        self.figures[Path(path).name] = [
            {
                "label": line.get_label(),
                "x": np.asarray(line.get_xdata(), dtype=float),
                "y": np.asarray(line.get_ydata(), dtype=float),
                "linestyle": line.get_linestyle(),
                "marker": line.get_marker(),
                "color": line.get_color(),
                "yscale": axis.get_yscale(),
            }
            for axis in figure.axes
            for line in axis.get_lines()
        ]
        return self.original(figure, path)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One short noisy run on the defaults, with the figures' data recorded."""
    from keraslab_cli.cli.app import app
    from keraslab_cli.core import plots

    outputs = tmp_path_factory.mktemp("noisy")
    recorder = FigureRecorder(plots.save_figure)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save_figure", recorder)
        result = CliRunner().invoke(app, ["noisy", *FAST, "--outputs", str(outputs), "--json"], env={"COLUMNS": "200", "KERASLAB_LANG": "en"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), recorder.figures


def test_defaults_of_noisy(default_run):
    document, _ = default_run
    config = document["config"]
    assert config["n"] == 60
    assert config["sigma"] == 0.3
    assert config["mu"] == 0.0
    assert config["val_split"] == 0.2
    assert config["noise_seed"] == config["seed"] == 0
    assert config["early_stopping"] is None
    assert (config["layers"], config["units"], config["activation"]) == (4, 10, "tanh")
    assert document["folder"].endswith("noisy/4x10-tanh-rmsprop-lr0.001-e20-s0")


def test_history_has_both_losses(default_run):
    document, _ = default_run
    rows = read_rows(document["files"]["history.csv"])
    assert list(rows[0]) == ["epoch", "loss", "val_loss", "learning_rate"]
    assert len(rows) == 20
    assert [int(row["epoch"]) for row in rows] == list(range(1, 21))
    assert float(rows[-1]["val_loss"]) == pytest.approx(document["metrics"]["final_val_loss"], rel=1e-12)


def test_data_csv_holds_exact_samples(default_run):
    document, _ = default_run
    rows = read_rows(document["files"]["data.csv"])
    assert len(rows) == 60
    assert sum(row["split"] == "train" for row in rows) == 48
    assert sum(row["split"] == "val" for row in rows) == 12
    data = make_dataset(ExperimentSpec.from_dict(document["config"]))
    for split, x_expected, y_expected in (("train", data.x_train, data.y_train), ("val", data.x_val, data.y_val)):
        chosen = [row for row in rows if row["split"] == split]
        x = np.array([row["x"] for row in chosen], dtype=np.float32)
        y = np.array([row["y"] for row in chosen], dtype=np.float32)
        order = np.argsort(x_expected.reshape(-1), kind="stable")
        np.testing.assert_array_equal(x, x_expected.reshape(-1)[order])
        np.testing.assert_array_equal(y, y_expected.reshape(-1)[order])


def test_dense_mse_matches_numpy(default_run):
    from keraslab_cli.core.backend import keras

    document, _ = default_run
    model = keras.saving.load_model(document["files"]["model.keras"], safe_mode=True)
    grid = np.linspace(0.0, 5.0, 1000).astype(np.float32)
    error = numpy_forward(model, grid) - lab_f(grid.astype(np.float64))
    metrics = document["metrics"]
    assert metrics["dense_points"] == 1000
    assert metrics["dense_mse"] == pytest.approx(float(np.mean(error**2)), rel=1e-4)


def test_validation_loss_matches_numpy(default_run):
    from keraslab_cli.core.backend import keras

    document, _ = default_run
    model = keras.saving.load_model(document["files"]["model.keras"], safe_mode=True)
    rows = [row for row in read_rows(document["files"]["data.csv"]) if row["split"] == "val"]
    x = np.array([row["x"] for row in rows], dtype=np.float32)
    y = np.array([row["y"] for row in rows], dtype=np.float64)
    # val_loss of the last epoch is computed on the final weights, as saved.
    expected = float(np.mean((numpy_forward(model, x) - y) ** 2))
    assert document["metrics"]["final_val_loss"] == pytest.approx(expected, rel=1e-4)


def test_loss_plot_data(default_run):
    document, figures = default_run
    lines = {line["label"]: line for line in figures["loss.png"]}
    history = read_rows(document["files"]["history.csv"])
    np.testing.assert_allclose(lines["training loss"]["y"], [float(row["loss"]) for row in history], rtol=1e-12)
    np.testing.assert_allclose(lines["validation loss"]["y"], [float(row["val_loss"]) for row in history], rtol=1e-12)
    assert lines["training loss"]["yscale"] == "log"
    best_epoch = document["metrics"]["best_val_epoch"]
    marker = lines[f"best epoch: {best_epoch}"]
    assert marker["x"].tolist() == [best_epoch]
    assert marker["y"][0] == pytest.approx(document["metrics"]["best_val_loss"], rel=1e-12)
    saved = Path(document["files"]["loss.png"]).read_bytes()
    assert saved[:8] == PNG_SIGNATURE
    assert len(saved) > 10_000


def test_fit_plot_data(default_run):
    document, figures = default_run
    lines = {line["label"]: line for line in figures["fit.png"]}
    assert len(lines["training data"]["x"]) == 48
    assert lines["training data"]["marker"] == "o"
    assert len(lines["validation data"]["x"]) == 12
    assert lines["validation data"]["marker"] not in ("o", "None", "")
    true_f = lines["f (target function)"]
    assert true_f["linestyle"] == "--"
    np.testing.assert_allclose(true_f["y"], lab_f(true_f["x"]), atol=1e-9)
    assert lines["F (network)"]["color"] == "tab:red"
    rows = read_rows(document["files"]["data.csv"])
    plotted = sorted(lines["validation data"]["x"].tolist())
    assert plotted == pytest.approx(sorted(float(row["x"]) for row in rows if row["split"] == "val"), rel=1e-6)
    saved = Path(document["files"]["fit.png"]).read_bytes()
    assert saved[:8] == PNG_SIGNATURE
    assert len(saved) > 10_000


def test_report_in_english(invoke, tmp_path):
    result = invoke("noisy", *FAST, "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    for text in ("Overfitting", "Training loss", "Validation loss", "Gap validation − training", "MSE of F against the true f", "1000 evenly spaced points", "σ²", "0.09", "No clear overfitting"):
        assert text in result.stdout, text


def test_report_in_french(invoke, tmp_path):
    result = invoke("noisy", *FAST, "--outputs", tmp_path, "--lang", "fr")
    assert result.exit_code == 0, result.output
    for text in ("Sur-apprentissage", "Perte d'entraînement", "Perte de validation", "0,09", "σ²", "1000 points"):
        assert text in result.stdout, text
    assert "Training loss" not in result.stdout


def test_noise_seed_fixes_the_data(invoke, tmp_path):
    paths = []
    for seed in ("1", "2"):
        result = invoke("noisy", "--epochs", "2", "--seed", seed, "--noise-seed", "9", "--outputs", tmp_path, "--json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document["config"]["noise_seed"] == 9
        paths.append(Path(document["files"]["data.csv"]))
    assert paths[0] != paths[1]
    assert paths[0].read_text() == paths[1].read_text()
    other = invoke("noisy", "--epochs", "2", "--seed", "1", "--outputs", tmp_path, "--json")
    assert Path(json.loads(other.stdout)["files"]["data.csv"]).read_text() != paths[0].read_text()


def test_without_validation(invoke, tmp_path):
    result = invoke("noisy", "--epochs", "5", "--val-split", "0", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    assert "none (--val-split 0)" in result.stdout
    folder = next((tmp_path / "noisy").iterdir())
    assert (folder / "history.csv").read_text().splitlines()[0] == "epoch,loss,learning_rate"
    rows = read_rows(str(folder / "data.csv"))
    assert len(rows) == 60
    assert {row["split"] for row in rows} == {"train"}


def test_early_stopping_restores_best_weights(invoke, tmp_path):
    from keraslab_cli.core.backend import keras

    # A large learning rate makes the validation loss stall within a few epochs.
    result = invoke("noisy", "--epochs", "400", "--optimizer", "adam", "--lr", "0.05", "--early-stopping", "5", "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    metrics = document["metrics"]
    assert document["status"] == "early_stopped"
    assert metrics["epochs_run"] < 400
    history = read_rows(document["files"]["history.csv"])
    val_losses = [float(row["val_loss"]) for row in history]
    assert len(history) == metrics["epochs_run"]
    assert metrics["restored_epoch"] == int(np.argmin(val_losses)) + 1
    assert metrics["epochs_run"] - metrics["restored_epoch"] == 5
    model = keras.saving.load_model(document["files"]["model.keras"], safe_mode=True)
    rows = [row for row in read_rows(document["files"]["data.csv"]) if row["split"] == "val"]
    x = np.array([row["x"] for row in rows], dtype=np.float32)
    y = np.array([row["y"] for row in rows], dtype=np.float64)
    restored_loss = float(np.mean((numpy_forward(model, x) - y) ** 2))
    assert restored_loss == pytest.approx(min(val_losses), rel=1e-4)


def test_early_stopping_reported(invoke, tmp_path):
    result = invoke("noisy", "--epochs", "400", "--optimizer", "adam", "--lr", "0.05", "--early-stopping", "5", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    assert "weights restored from epoch" in result.stdout
    assert "stopped early" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (("--early-stopping", "10", "--val-split", "0"), "--early-stopping"),
        (("--sigma", "-1"), "--sigma"),
        (("--val-split", "1"), "--val-split"),
        (("--val-split", "0.001"), "--val-split"),
        (("--early-stopping", "0"), "--early-stopping"),
        (("--mu", "nan"), "--mu"),
    ],
)
def test_invalid_noise_flags(invoke, tmp_path, arguments, flag):
    result = invoke("noisy", *arguments, "--outputs", tmp_path)
    assert result.exit_code == 2, result.output
    assert flag in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "noisy").exists()


def test_noise_flags_absent_from_approx(invoke, tmp_path):
    result = invoke("approx", "--sigma", "0.3", "--outputs", tmp_path)
    assert result.exit_code == 2
    assert "--sigma" in result.stderr


def test_help_lists_noise_flags(invoke):
    result = invoke("noisy", "--help")
    assert result.exit_code == 0
    for flag in ("--sigma", "--mu", "--noise-seed", "--val-split", "--early-stopping", "--l2", "--dropout", "--lr-schedule"):
        assert flag in result.stdout, flag


VERDICT_CASES = [
    ({"best_val_loss": 0.1, "final_val_loss": 0.2, "best_val_epoch": 50, "loss_at_best_val_epoch": 0.09, "final_loss": 0.03}, "overfitting"),
    ({"best_val_loss": 0.1, "final_val_loss": 0.105, "best_val_epoch": 50, "loss_at_best_val_epoch": 0.09, "final_loss": 0.03}, "none"),
    ({"best_val_loss": 0.1, "final_val_loss": 0.2, "best_val_epoch": 50, "loss_at_best_val_epoch": 0.09, "final_loss": 0.3}, "unstable"),
    ({"final_loss": 0.03}, None),
]


@pytest.mark.parametrize(("metrics", "expected"), VERDICT_CASES)
def test_overfitting_verdict(metrics, expected):
    assert overfitting_verdict(metrics) == expected


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "Overfitting since epoch 50"),
        ({"restored_epoch": 50}, "early stopping restored the weights of epoch 50"),
    ],
)
def test_overfitting_message(extra, expected):
    from keraslab_cli.cli import noisy_report

    printed = []

    class Console:
        def print(self, text):
            printed.append(str(text))

    class Result:
        metrics = {**VERDICT_CASES[0][0], "best_loss": 0.03, "best_epoch": 400, "dense_mse": 0.05, "dense_points": 1000, **extra}
        spec = ExperimentSpec(command="noisy", sigma=0.3)

    noisy_report.print_noisy_report(Console(), Result())
    assert expected in printed[-1]


# The README's overfitting example: on the default network (4×10 tanh, 4000
# epochs), adam at 0.01 on normalized x fits the noise within the run, where
# the handout's rmsprop at 0.001 oscillates (seen on seed 1). Seed 3 was chosen among
# seeds 0 to 5 because its validation loss has one clear minimum, then rises.
OVERFITTING_EXAMPLE = ("--optimizer", "adam", "--lr", "0.01", "--normalize", "--seed", "3")


@pytest.mark.slow
def test_overfitting_example(invoke, tmp_path):
    result = invoke("noisy", *OVERFITTING_EXAMPLE, "--outputs", tmp_path / "plain", "--json")
    assert result.exit_code == 0, result.output
    plain = json.loads(result.stdout)
    history = read_rows(plain["files"]["history.csv"])
    loss = np.array([float(row["loss"]) for row in history])
    val_loss = np.array([float(row["val_loss"]) for row in history])
    best = int(np.argmin(val_loss))
    assert len(loss) == 4000
    assert best < 3000
    # The validation loss rises while the training loss keeps falling, over
    # the last 500 epochs on average and not by one spike.
    assert val_loss[-500:].mean() > 2 * val_loss[best]
    assert loss[-500:].mean() < 0.5 * loss[best]
    assert loss[-500:].mean() < 0.09, "the network fits below σ²: it learns the noise"
    assert overfitting_verdict(plain["metrics"]) == "overfitting"

    result = invoke("noisy", *OVERFITTING_EXAMPLE, "--early-stopping", "200", "--outputs", tmp_path / "early", "--json")
    assert result.exit_code == 0, result.output
    early = json.loads(result.stdout)
    assert early["status"] == "early_stopped"
    assert early["metrics"]["dense_mse"] <= plain["metrics"]["dense_mse"]
