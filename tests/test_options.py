"""Training options: learning-rate schedules, Nesterov, L1/L2, dropout and the loss."""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from keraslab_cli.core.data import make_dataset
from keraslab_cli.core.models import build_mlp
from keraslab_cli.core.spec import ExperimentSpec
from keraslab_cli.core.training import train

EPOCHS = 40
RELATIVE_TOLERANCE = 1e-6
SMALL = {"n": 20, "epochs": EPOCHS}


def trained(spec: ExperimentSpec, engine: str = "auto"):
    data = make_dataset(spec)
    model = build_mlp(spec, data)
    return train(model, spec, data, engine=engine), model, data


def read_history(path: str) -> dict[str, list[float]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {column: [float(row[column]) for row in rows] for column in rows[0]}


def numpy_forward(weights: list[np.ndarray], x: np.ndarray, activation=np.tanh) -> np.ndarray:
    """Evaluate hidden Dense layers then a linear output from (kernel, bias) pairs."""
    values = x.astype(np.float64)
    pairs = list(zip(weights[::2], weights[1::2]))
    for kernel, bias in pairs[:-1]:
        values = activation(values @ kernel + bias)
    kernel, bias = pairs[-1]
    return values @ kernel + bias


OPTION_CASES = [
    {"lr_schedule": "exponential", "lr_decay": 0.01, "batch_size": 5},
    {"lr_schedule": "cosine", "lr_min": 1e-4},
    {"lr_schedule": "plateau", "patience": 2, "lr_decay": 0.5, "optimizer": "sgd", "learning_rate": 0.3},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
    {"l1": 0.01},
    {"l2": 0.01, "batch_size": 8},
    {"dropout": 0.2},
    {"dropout": 0.1, "batch_size": 7, "l2": 0.001},
    {"loss": "mae"},
    {"loss": "huber"},
]


@pytest.mark.parametrize("options", OPTION_CASES, ids=lambda options: "-".join(f"{key}={value}" for key, value in options.items()))
def test_fast_engine_equals_fit(options):
    spec = ExperimentSpec(**{**SMALL, **options})
    fit_result, fit_model, _ = trained(spec, "fit")
    auto_result, auto_model, _ = trained(spec, "auto")
    assert fit_result.engine == "fit"
    if auto_result.engine == "fit":
        # A fallback to fit must give its reason in engine_note.
        assert auto_result.engine_note
    np.testing.assert_allclose(auto_result.history["loss"], fit_result.history["loss"], rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(auto_result.history["learning_rate"], fit_result.history["learning_rate"], rtol=RELATIVE_TOLERANCE)
    for auto_weight, fit_weight in zip(auto_model.get_weights(), fit_model.get_weights()):
        np.testing.assert_allclose(auto_weight, fit_weight, rtol=1e-4, atol=1e-6)


def test_fast_engine_equals_fit_with_validation_and_penalty():
    spec = ExperimentSpec(command="noisy", n=60, sigma=0.3, val_split=0.2, epochs=EPOCHS, l2=0.01, dropout=0.1, lr_schedule="plateau", patience=3)
    fit_result, _, _ = trained(spec, "fit")
    auto_result, _, _ = trained(spec, "auto")
    np.testing.assert_allclose(auto_result.history["loss"], fit_result.history["loss"], rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(auto_result.history["val_loss"], fit_result.history["val_loss"], rtol=RELATIVE_TOLERANCE)


def test_constant_rate_never_changes():
    result, _, _ = trained(ExperimentSpec(**SMALL, optimizer="sgd", learning_rate=0.05))
    assert result.history["learning_rate"] == pytest.approx([0.05] * EPOCHS, rel=1e-7)


@pytest.mark.parametrize("batch_size", [None, 5])
def test_exponential_schedule_closed_form(batch_size):
    spec = ExperimentSpec(**SMALL, optimizer="sgd", learning_rate=0.05, lr_schedule="exponential", lr_decay=0.01, batch_size=batch_size)
    result, _, _ = trained(spec)
    epochs = np.arange(EPOCHS)
    # --lr-decay is the factor per 1000 epochs, whatever the number of batches per epoch.
    expected = 0.05 * 0.01 ** (epochs / 1000)
    np.testing.assert_allclose(result.history["learning_rate"], expected, rtol=1e-6)


def test_exponential_schedule_is_keras_schedule():
    from keraslab_cli.core.backend import keras

    steps = 4
    spec = ExperimentSpec(**SMALL, optimizer="sgd", learning_rate=0.05, lr_schedule="exponential", lr_decay=0.01, batch_size=5)
    result, model, _ = trained(spec)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=1000 * steps, decay_rate=0.01)
    assert model.optimizer.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"
    expected = [float(keras.ops.convert_to_numpy(schedule(epoch * steps))) for epoch in range(EPOCHS)]
    np.testing.assert_allclose(result.history["learning_rate"], expected, rtol=1e-6)


def test_cosine_schedule_closed_form():
    initial, lowest = 0.05, 0.001
    spec = ExperimentSpec(**SMALL, optimizer="sgd", learning_rate=initial, lr_schedule="cosine", lr_min=lowest)
    result, _, _ = trained(spec)
    epochs = np.arange(EPOCHS)
    expected = lowest + (initial - lowest) * 0.5 * (1 + np.cos(np.pi * epochs / EPOCHS))
    np.testing.assert_allclose(result.history["learning_rate"], expected, rtol=1e-5)
    assert result.history["learning_rate"][0] == pytest.approx(initial, rel=1e-6)


def plateau_rates(monitored: list[float], initial: float, factor: float, patience: int, minimum: float) -> list[float]:
    """Replay ReduceLROnPlateau's rule (min_delta 1e-4, no cooldown) on a monitored loss."""
    rates, rate, best, wait = [], initial, math.inf, 0
    for value in monitored:
        rates.append(rate)
        if value + 1e-4 < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience and rate > np.float32(minimum):
                rate, wait = float(np.float32(max(rate * factor, minimum))), 0
    return rates


@pytest.mark.parametrize(("command_options", "monitored"), [({}, "loss"), ({"command": "noisy", "n": 60, "sigma": 0.3, "val_split": 0.2}, "val_loss")])
def test_plateau_schedule_follows_keras_rule(command_options, monitored):
    spec = ExperimentSpec(**{**SMALL, "epochs": 60, **command_options}, optimizer="sgd", learning_rate=0.3, lr_schedule="plateau", patience=2, lr_decay=0.5, lr_min=0.01)
    result, _, _ = trained(spec)
    rates = result.history["learning_rate"]
    expected = plateau_rates(result.history[monitored], 0.3, 0.5, 2, 0.01)
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert min(rates) < 0.3, "the test needs a plateau to happen"
    assert min(rates) >= 0.01 * (1 - 1e-6)


def test_nesterov_first_step():
    momentum, rate = 0.9, 0.05
    initial = None
    steps = {}
    for nesterov in (False, True):
        spec = ExperimentSpec(n=20, epochs=1, optimizer="sgd", learning_rate=rate, momentum=momentum, nesterov=nesterov)
        data = make_dataset(spec)
        model = build_mlp(spec, data)
        initial = [weight.copy() for weight in model.get_weights()]
        train(model, spec, data)
        steps[nesterov] = [after - before for after, before in zip(model.get_weights(), initial)]
    # From zero velocity Keras's Nesterov step is −lr·(1 + momentum)·g against −lr·g without it.
    for plain, nesterov in zip(steps[False], steps[True]):
        np.testing.assert_allclose(nesterov, (1 + momentum) * plain, rtol=1e-4, atol=1e-7)


def test_penalty_and_data_loss(invoke, tmp_path):
    l1, l2 = 0.002, 0.01
    result = invoke("approx", "--n", "20", "--epochs", "3", "--l1", l1, "--l2", l2, "--outputs", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    history = read_history(document["files"]["history.csv"])
    assert list(history) == ["epoch", "loss", "data_loss", "learning_rate"]

    spec = ExperimentSpec.from_dict(document["config"])
    data = make_dataset(spec)
    weights = build_mlp(spec, data).get_weights()
    kernels = [weights[index] for index in range(0, len(weights) - 2, 2)]
    penalty = sum(l1 * np.abs(kernel).sum() + l2 * np.square(kernel).sum() for kernel in kernels)
    data_loss = float(np.mean((numpy_forward(weights, data.x_train) - data.y_train) ** 2))
    # Epoch 1 is one full-batch step computed on the initial weights.
    assert history["data_loss"][0] == pytest.approx(data_loss, rel=1e-4)
    assert history["loss"][0] == pytest.approx(data_loss + penalty, rel=1e-4)
    assert document["metrics"]["final_penalty"] > 0
    assert document["metrics"]["final_data_loss"] == pytest.approx(history["data_loss"][-1], rel=1e-12)


def test_penalty_only_on_hidden_kernels():
    from keraslab_cli.core.models import regularization_penalty

    spec = ExperimentSpec(n=20, epochs=1, l2=0.1)
    model = build_mlp(spec, make_dataset(spec))
    hidden = [layer.kernel for layer in model.layers if layer.name.startswith("hidden")]
    expected = 0.1 * sum(float(np.square(kernel.numpy()).sum()) for kernel in hidden)
    assert regularization_penalty(model) == pytest.approx(expected, rel=1e-5)
    assert model.get_layer("output").kernel_regularizer is None


def test_dropout_layers_train_only():
    spec = ExperimentSpec(n=20, epochs=1, dropout=0.3)
    model = build_mlp(spec, make_dataset(spec))
    dropouts = [layer for layer in model.layers if type(layer).__name__ == "Dropout"]
    assert [layer.name for layer in dropouts] == [f"dropout_{index}" for index in range(1, 5)]
    assert all(layer.rate == 0.3 for layer in dropouts)
    x = np.linspace(0, 5, 20, dtype=np.float32).reshape(-1, 1)
    dense_weights = model.get_weights()
    inference = np.asarray(model(x, training=False).detach().numpy())
    np.testing.assert_allclose(inference, numpy_forward(dense_weights, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(model(x, training=True).detach().numpy()), inference)


def huber(error: np.ndarray, delta: float = 1.0) -> np.ndarray:
    absolute = np.abs(error)
    return np.where(absolute <= delta, 0.5 * error**2, delta * absolute - 0.5 * delta**2)


@pytest.mark.parametrize(
    ("loss", "label", "formula"),
    [("mse", "MSE", lambda error: error**2), ("mae", "MAE", np.abs), ("huber", "HUBER", huber)],
)
def test_loss_named_and_computed(invoke, tmp_path, monkeypatch, loss, label, formula):
    from keraslab_cli.core import plots

    labels = []
    original = plots.save_figure

    def record(figure, path):
        labels.extend(axis.get_ylabel() for axis in figure.axes)
        return original(figure, path)

    monkeypatch.setattr(plots, "save_figure", record)
    # With f = x − 3 most initial errors exceed Huber's delta of 1, so the three losses differ.
    result = invoke("approx", "--n", "20", "--epochs", "2", "--loss", loss, "--function", "x - 3", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    assert re.search(rf"│ Loss\s+│ {label}\s", result.stdout), result.stdout
    assert f"loss ({label}, log scale)" in labels

    folder = next((tmp_path / "approx").iterdir())
    run = json.loads((folder / "run.json").read_text())
    assert run["config"]["loss"] == loss
    assert run["metrics"]["loss_name"] == loss
    spec = ExperimentSpec.from_dict(run["config"])
    data = make_dataset(spec)
    weights = build_mlp(spec, data).get_weights()
    expected = float(np.mean(formula(numpy_forward(weights, data.x_train) - data.y_train)))
    assert read_history(str(folder / "history.csv"))["loss"][0] == pytest.approx(expected, rel=1e-4)


def test_options_saved_in_run_json_and_model(invoke, tmp_path):
    from keraslab_cli.core.backend import keras

    result = invoke(
        "noisy", "--epochs", "3", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--nesterov",
        "--lr-schedule", "exponential", "--lr-decay", "0.2", "--l1", "0.001", "--l2", "0.01", "--dropout", "0.1",
        "--loss", "huber", "--outputs", tmp_path, "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    config = document["config"]
    expected = {"lr_schedule": "exponential", "lr_decay": 0.2, "l1": 0.001, "l2": 0.01, "dropout": 0.1, "loss": "huber", "nesterov": True, "momentum": 0.9}
    for key, value in expected.items():
        assert config[key] == value, key
    run = json.loads(Path(document["files"]["run.json"]).read_text())
    assert run["config"] == config

    model = keras.saving.load_model(document["files"]["model.keras"], safe_mode=True)
    optimizer = model.optimizer.get_config()
    assert optimizer["nesterov"] is True
    assert optimizer["momentum"] == pytest.approx(0.9)
    schedule = optimizer["learning_rate"]
    assert schedule["class_name"] == "ExponentialDecay"
    assert schedule["config"]["decay_rate"] == pytest.approx(0.2)
    assert schedule["config"]["initial_learning_rate"] == pytest.approx(0.05)
    hidden = model.get_layer("hidden_1").kernel_regularizer.get_config()
    assert hidden == pytest.approx({"l1": 0.001, "l2": 0.01})
    assert model.get_layer("dropout_1").rate == pytest.approx(0.1)
    assert type(model.loss).__name__ == "Huber"


def test_summary_shows_regularization(invoke, tmp_path):
    result = invoke("noisy", "--epochs", "3", "--l2", "0.01", "--dropout", "0.1", "--lr-schedule", "cosine", "--outputs", tmp_path)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "L2 0.01" in text
    assert "dropout 0.1" in text
    assert "includes the L1/L2 penalty" in text
    assert "Final loss without the penalty" in text
    assert "cosine" in text


def total_variation_of_log_loss(losses: list[float]) -> float:
    return float(np.abs(np.diff(np.log(losses))).sum())


def rising_epochs(losses: list[float]) -> int:
    return int(np.sum(np.diff(losses) > 0))


def test_exponential_schedule_smooths_sgd(invoke, tmp_path):
    histories = {}
    for schedule in ("constant", "exponential"):
        result = invoke(
            "approx", "--optimizer", "sgd", "--lr", "0.05", "--lr-schedule", schedule, "--lr-decay", "0.01",
            "--epochs", "300", "--n", "20", "--outputs", tmp_path, "--json",
        )
        assert result.exit_code == 0, result.output
        histories[schedule] = read_history(json.loads(result.stdout)["files"]["history.csv"])["loss"]
    assert rising_epochs(histories["exponential"]) < rising_epochs(histories["constant"])
    assert total_variation_of_log_loss(histories["exponential"]) < total_variation_of_log_loss(histories["constant"])


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (("--lr-schedule", "linear"), "--lr-schedule"),
        (("--lr-decay", "0"), "--lr-decay"),
        (("--lr-decay", "1.5"), "--lr-decay"),
        (("--lr-schedule", "plateau", "--lr-decay", "1"), "--lr-decay"),
        (("--lr-min", "-1"), "--lr-min"),
        (("--patience", "0"), "--patience"),
        (("--l1", "-0.1"), "--l1"),
        (("--l2", "inf"), "--l2"),
        (("--dropout", "1"), "--dropout"),
        (("--loss", "hinge"), "--loss"),
        (("--nesterov",), "--nesterov"),
    ],
)
def test_invalid_option_values(invoke, tmp_path, arguments, flag):
    result = invoke("approx", *arguments, "--epochs", "2", "--outputs", tmp_path)
    assert result.exit_code == 2, result.output
    assert flag in result.stderr
    assert "Traceback" not in result.output
