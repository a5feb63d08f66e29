"""The fast training engine reproduces model.fit's loss history exactly."""

import numpy as np
import pytest

from keraslab_cli.core.backend import keras, limited_threads, torch
from keraslab_cli.core.data import make_dataset
from keraslab_cli.core.models import build_mlp, count_trainable_parameters
from keraslab_cli.core.spec import ExperimentSpec
from keraslab_cli.core.training import _update_function, thread_count_for, train

EPOCHS = 200
RELATIVE_TOLERANCE = 1e-6


def history_of(spec: ExperimentSpec, engine: str):
    data = make_dataset(spec)
    model = build_mlp(spec, data)
    return train(model, spec, data, engine=engine), model


OPTIMIZERS = [
    {"optimizer": "rmsprop"},
    {"optimizer": "sgd", "momentum": 0.9},
    {"optimizer": "adam"},
]
BATCHES = [{}, {"batch_size": 16}, {"batch_size": 25}]
NORMALIZATION = [{}, {"normalize": True}]
# Every optimizer the lab names, full batch and two mini-batch sizes (one that
# divides the 100 points and one that leaves a short last batch), with and
# without normalization.
EQUALITY_CASES = [
    {**optimizer, **batch, **normalization} for optimizer in OPTIMIZERS for batch in BATCHES for normalization in NORMALIZATION
]
# Options that change the optimizer step, the loss or the callbacks.
FEATURE_CASES = [
    {"optimizer": "adamw"},
    {"optimizer": "nadam", "batch_size": 32},
    {"optimizer": "adagrad", "learning_rate": 0.05},
    {"optimizer": "adadelta", "learning_rate": 1.0},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "batch_size": 20},
    {"optimizer": "adam", "l2": 0.001},
    {"optimizer": "rmsprop", "l1": 0.0001, "batch_size": 50},
    {"optimizer": "adam", "lr_schedule": "exponential", "lr_decay": 0.01, "batch_size": 30},
    {"optimizer": "sgd", "lr_schedule": "cosine", "lr_min": 0.001},
    {"optimizer": "adam", "loss": "mae"},
    {"optimizer": "rmsprop", "loss": "huber", "activation": "relu"},
    {"optimizer": "adam", "activation": "sigmoid", "batch_size": 10},
    {"optimizer": "adam", "activation": "gelu"},
]


def assert_same_training(spec: ExperimentSpec):
    fit_result, fit_model = history_of(spec, "fit")
    fast_result, fast_model = history_of(spec, "fast")
    assert fit_result.engine == "fit"
    assert fast_result.engine == "fast"
    assert len(fast_result.history["loss"]) == len(fit_result.history["loss"])
    np.testing.assert_allclose(fast_result.history["loss"], fit_result.history["loss"], rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(fast_result.history["learning_rate"], fit_result.history["learning_rate"], rtol=RELATIVE_TOLERANCE)
    for fast_weight, fit_weight in zip(fast_model.get_weights(), fit_model.get_weights()):
        np.testing.assert_allclose(fast_weight, fit_weight, rtol=1e-4, atol=1e-6)
    return fit_result, fast_result


def case_id(options: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in options.items()) or "default"


@pytest.mark.parametrize("options", EQUALITY_CASES, ids=case_id)
def test_fast_engine_equals_fit(options):
    assert_same_training(ExperimentSpec(epochs=EPOCHS, **options))


@pytest.mark.parametrize("options", FEATURE_CASES, ids=case_id)
def test_fast_engine_equals_fit_with_option(options):
    assert_same_training(ExperimentSpec(epochs=EPOCHS, **options))


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


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "adam"},
        {"optimizer": "adam", "batch_size": 16, "normalize": True},
        {"optimizer": "adam", "early_stopping": 5, "learning_rate": 0.05},
        {"optimizer": "rmsprop", "lr_schedule": "plateau", "patience": 3, "lr_decay": 0.5, "learning_rate": 0.01},
        {"optimizer": "adam", "dropout": 0.1},
    ],
    ids=case_id,
)
def test_fast_engine_equals_fit_noisy(options):
    spec = ExperimentSpec(command="noisy", epochs=EPOCHS, n=60, sigma=0.3, val_split=0.2, **options)
    fit_result, fast_result = assert_same_training(spec)
    np.testing.assert_allclose(fast_result.history["val_loss"], fit_result.history["val_loss"], rtol=RELATIVE_TOLERANCE)
    assert fast_result.status == fit_result.status
    assert fast_result.restored_epoch == fit_result.restored_epoch


def model_with(extra_layer, spec: ExperimentSpec):
    keras.utils.set_random_seed(spec.seed)
    return keras.Sequential(
        [keras.layers.Input(shape=(1,)), keras.layers.Dense(spec.units, activation="tanh"), extra_layer, keras.layers.Dense(1)]
    )


@pytest.mark.parametrize(
    ("extra_layer", "note_part"),
    [
        (lambda: keras.layers.LayerNormalization(name="unknown"), "LayerNormalization"),
        (lambda: keras.layers.Dense(10, activity_regularizer="l2", name="penalized"), "activity regularizer"),
    ],
    ids=["unknown-layer", "activity-regularizer"],
)
def test_unsupported_model_falls_back_to_fit(extra_layer, note_part):
    spec = ExperimentSpec(epochs=5)
    data = make_dataset(spec)
    result = train(model_with(extra_layer(), spec), spec, data, engine="auto")
    assert result.engine == "fit"
    assert note_part in result.engine_note
    assert len(result.history["loss"]) == 5
    with pytest.raises(ValueError, match=note_part):
        train(model_with(extra_layer(), spec), spec, data, engine="fast")


def test_requested_fit_engine_says_why():
    result, _ = history_of(ExperimentSpec(epochs=3), "fit")
    assert result.engine == "fit"
    assert "--engine fit" in result.engine_note


@pytest.mark.parametrize(
    "optimizer_options",
    [{}, {"clipnorm": 0.01}, {"global_clipnorm": 0.01}, {"clipvalue": 0.001}, {"weight_decay": 0.1}],
    ids=case_id,
)
def test_direct_update_equals_optimizer_apply(optimizer_options):
    def trained_weights(use_apply: bool):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.layers.Input(shape=(3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
        optimizer = keras.optimizers.Adam(learning_rate=0.01, **optimizer_options)
        variables = model.trainable_variables
        optimizer.build(variables)
        update = _update_function(optimizer, variables)
        gradient_generator = np.random.default_rng(1)
        for _step in range(5):
            gradients = [torch.from_numpy(gradient_generator.normal(size=v.shape).astype(np.float32)) for v in variables]
            with torch.no_grad():
                if use_apply:
                    optimizer.apply(gradients, variables)
                else:
                    update(gradients)
        return [v.numpy() for v in variables], int(optimizer.iterations.numpy())

    direct_weights, direct_iterations = trained_weights(use_apply=False)
    apply_weights, apply_iterations = trained_weights(use_apply=True)
    assert direct_iterations == apply_iterations == 5
    for direct, applied in zip(direct_weights, apply_weights):
        np.testing.assert_array_equal(direct, applied)


def test_gradient_accumulation_uses_optimizer_apply():
    model = keras.Sequential([keras.layers.Input(shape=(1,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(gradient_accumulation_steps=2)
    optimizer.build(model.trainable_variables)
    calls = []
    optimizer.apply = lambda gradients, variables: calls.append(len(gradients))
    _update_function(optimizer, model.trainable_variables)([torch.zeros(1, 1), torch.zeros(1)])
    assert calls == [2]


@pytest.mark.parametrize(("units", "batch_size", "expected"), [(10, 100, 1), (100, 100, 1), (300, 100, None), (10, 20_000, None)])
def test_thread_count_for_model_size(units, batch_size, expected):
    spec = ExperimentSpec(units=units, epochs=1)
    model = build_mlp(spec, make_dataset(spec))
    assert thread_count_for(model, batch_size) == expected


def test_training_restores_thread_count():
    before = torch.get_num_threads()
    with limited_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    history_of(ExperimentSpec(epochs=2), "fast")
    assert torch.get_num_threads() == before


def test_saved_model_predicts_like_trained_model(tmp_path):
    spec = ExperimentSpec(epochs=50, normalize=True, batch_size=32)
    fit_result, fit_model = history_of(spec, "fit")
    fast_result, fast_model = history_of(spec, "fast")
    path = tmp_path / "model.keras"
    fast_model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.linspace(-1, 6, 200, dtype=np.float32).reshape(-1, 1)
    fast_prediction = fast_model.predict(x, verbose=0)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), fast_prediction)
    np.testing.assert_allclose(fast_prediction, fit_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    assert loaded.optimizer.iterations.numpy() == fit_model.optimizer.iterations.numpy()
