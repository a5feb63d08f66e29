"""The fast training engine reproduces model.fit's loss history exactly."""

import numpy as np
import pytest

from keraslab_cli.core.data import make_dataset
from keraslab_cli.core.models import build_mlp, count_trainable_parameters
from keraslab_cli.core.spec import ExperimentSpec
from keraslab_cli.core.training import train

EPOCHS = 200
RELATIVE_TOLERANCE = 1e-6


def history_of(spec: ExperimentSpec, engine: str):
    data = make_dataset(spec)
    model = build_mlp(spec, data)
    return train(model, spec, data, engine=engine), model


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "rmsprop"},
        {"optimizer": "sgd", "momentum": 0.9},
        {"optimizer": "adam"},
        {"optimizer": "adam", "batch_size": 16},
        {"optimizer": "rmsprop", "batch_size": 32, "normalize": True},
        {"optimizer": "sgd", "momentum": 0.9, "normalize": True},
        {"optimizer": "adam", "normalize": True, "batch_size": 25},
    ],
    ids=lambda options: "-".join(f"{key}={value}" for key, value in options.items()),
)
def test_fast_engine_equals_fit(options):
    spec = ExperimentSpec(epochs=EPOCHS, **options)
    fit_result, fit_model = history_of(spec, "fit")
    fast_result, fast_model = history_of(spec, "fast")
    assert fit_result.engine == "fit"
    assert fast_result.engine == "fast"
    np.testing.assert_allclose(fast_result.history["loss"], fit_result.history["loss"], rtol=RELATIVE_TOLERANCE)
    for fast_weight, fit_weight in zip(fast_model.get_weights(), fit_model.get_weights()):
        np.testing.assert_allclose(fast_weight, fit_weight, rtol=1e-4, atol=1e-6)


def test_fast_engine_equals_fit_with_validation():
    spec = ExperimentSpec(command="noisy", epochs=EPOCHS, n=60, sigma=0.3, val_split=0.2, optimizer="adam")
    fit_result, _ = history_of(spec, "fit")
    fast_result, _ = history_of(spec, "fast")
    np.testing.assert_allclose(fast_result.history["loss"], fit_result.history["loss"], rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(fast_result.history["val_loss"], fit_result.history["val_loss"], rtol=RELATIVE_TOLERANCE)


def test_same_seed_same_history():
    spec = ExperimentSpec(epochs=50, optimizer="adam", batch_size=10)
    first, _ = history_of(spec, "auto")
    second, _ = history_of(spec, "auto")
    assert first.history["loss"] == second.history["loss"]


def test_other_seed_other_history():
    first, _ = history_of(ExperimentSpec(epochs=20, seed=0), "auto")
    second, _ = history_of(ExperimentSpec(epochs=20, seed=1), "auto")
    assert first.history["loss"] != second.history["loss"]


@pytest.mark.parametrize(("layers", "units", "expected"), [(4, 10, 361), (1, 1, 4), (2, 5, 46), (3, 2, 19)])
def test_parameter_count_matches_keras(layers, units, expected):
    spec = ExperimentSpec(layers=layers, units=units, epochs=1)
    model = build_mlp(spec, make_dataset(spec))
    assert count_trainable_parameters(layers, units) == expected
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == expected


def test_divergence_stops_training():
    spec = ExperimentSpec(epochs=500, optimizer="sgd", learning_rate=1.0)
    result, _ = history_of(spec, "auto")
    assert result.status == "diverged"
    assert result.epochs_run < 500
    assert not np.isfinite(result.history["loss"][-1])
