"""Noisy data: the noise law, reproducibility, the validation split."""

from dataclasses import replace

import numpy as np
import pytest

from keraslab_cli.core.data import gaussian_noise, make_dataset, sample_target, split_indices
from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.expression import parse_expression
from keraslab_cli.core.spec import ExperimentSpec, validate

LARGE_N = 200_000


def noisy_spec(**changes) -> ExperimentSpec:
    values = {"command": "noisy", "n": 60, "sigma": 0.3, "val_split": 0.2, **changes}
    return ExperimentSpec(**values)


def noise_of(spec: ExperimentSpec) -> np.ndarray:
    """Return y − f(x) over every sample of a data set (training and validation)."""
    data = make_dataset(spec)
    x = np.concatenate([data.x_train, data.x_val]).reshape(-1).astype(np.float64)
    y = np.concatenate([data.y_train, data.y_val]).reshape(-1).astype(np.float64)
    return y - data.target(x)


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 0.3), (0.5, 0.3), (-1.0, 2.0)])
def test_noise_mean_and_deviation(mu, sigma):
    noise = gaussian_noise(mu, sigma, LARGE_N, seed=7)
    # Five standard errors: the mean's is σ/√N, the deviation's about σ/√(2N).
    assert abs(noise.mean() - mu) < 5 * sigma / np.sqrt(LARGE_N)
    assert abs(noise.std() - sigma) < 5 * sigma / np.sqrt(2 * LARGE_N)


def test_dataset_noise_law_over_large_n():
    noise = noise_of(noisy_spec(n=LARGE_N, val_split=0.0, mu=0.2, noise_seed=3))
    # float32 rounding of y adds at most about 1e-7 per sample.
    assert abs(noise.mean() - 0.2) < 5 * 0.3 / np.sqrt(LARGE_N)
    assert abs(noise.std() - 0.3) < 5 * 0.3 / np.sqrt(2 * LARGE_N)


def test_no_noise_without_sigma_and_mu():
    spec = ExperimentSpec(command="noisy", n=50, sigma=0.0, mu=0.0)
    # Only float32 rounding of x and y separates the samples from f: below 1e-5.
    np.testing.assert_allclose(noise_of(spec), 0.0, atol=1e-5)


def test_same_noise_seed_same_samples():
    first = make_dataset(noisy_spec(seed=1, noise_seed=5))
    second = make_dataset(noisy_spec(seed=2, noise_seed=5))
    np.testing.assert_array_equal(first.y_train, second.y_train)
    np.testing.assert_array_equal(first.x_val, second.x_val)
    np.testing.assert_array_equal(first.y_val, second.y_val)


def test_other_noise_seed_other_samples():
    first = make_dataset(noisy_spec(noise_seed=5))
    second = make_dataset(noisy_spec(noise_seed=6))
    assert not np.array_equal(np.sort(first.x_val, axis=0), np.sort(second.x_val, axis=0))
    x_all = np.linspace(0, 5, 60)
    noise_first = noise_of(noisy_spec(noise_seed=5))
    noise_second = noise_of(noisy_spec(noise_seed=6))
    assert len(x_all) == len(noise_first) == len(noise_second)
    assert not np.allclose(np.sort(noise_first), np.sort(noise_second))


def test_noise_seed_defaults_to_seed():
    assert noisy_spec(seed=4).resolved_noise_seed == 4
    implicit = make_dataset(noisy_spec(seed=4))
    explicit = make_dataset(noisy_spec(seed=4, noise_seed=4))
    np.testing.assert_array_equal(implicit.y_train, explicit.y_train)
    np.testing.assert_array_equal(implicit.y_val, explicit.y_val)


@pytest.mark.parametrize(("n", "share", "held_out"), [(60, 0.2, 12), (100, 0.25, 25), (7, 0.3, 2), (10, 0.0, 0)])
def test_split_sizes_and_disjoint(n, share, held_out):
    train, val = split_indices(n, share, seed=0)
    assert len(val) == held_out
    assert len(train) == n - held_out
    assert set(train).isdisjoint(val)
    assert sorted(set(train) | set(val)) == list(range(n))


def test_split_of_dataset_partitions_the_samples():
    spec = noisy_spec()
    data = make_dataset(spec)
    assert data.x_train.shape == (48, 1)
    assert data.x_val.shape == (12, 1)
    x_all, _ = sample_target(parse_expression(spec.function), spec.interval, spec.n)
    together = np.sort(np.concatenate([data.x_train, data.x_val]).reshape(-1))
    np.testing.assert_array_equal(together, x_all.astype(np.float32))
    assert set(data.x_train.reshape(-1)).isdisjoint(data.x_val.reshape(-1))


def test_split_is_random_not_a_tail():
    data = make_dataset(noisy_spec())
    validation = data.x_val.reshape(-1)
    # Keras's validation_split would take the last 20 % (x ≥ 4); keraslab draws at random.
    assert validation.min() < 4.0
    assert validation.max() > 1.0


@pytest.mark.parametrize(("n", "share"), [(60, 0.001), (3, 0.5), (10, 1.0), (10, -0.1)])
def test_unusable_split_is_rejected(n, share):
    with pytest.raises(InvalidValue) as error:
        validate(noisy_spec(n=n, val_split=share))
    assert error.value.field == "val_split"


def test_early_stopping_needs_validation():
    with pytest.raises(InvalidValue) as error:
        validate(noisy_spec(val_split=0.0, early_stopping=50))
    assert error.value.field == "early_stopping"


@pytest.mark.parametrize("engine", ["fast", "fit"])
def test_validation_points_never_trained_on(engine):
    from keraslab_cli.core.models import build_mlp
    from keraslab_cli.core.training import train

    spec = noisy_spec(epochs=20, optimizer="adam", learning_rate=0.01)
    data = make_dataset(spec)
    # Moving every validation target far away must change nothing in training.
    moved = replace(data, y_val=data.y_val + 100.0)
    histories, weights = [], []
    for dataset in (data, moved):
        model = build_mlp(spec, dataset)
        result = train(model, spec, dataset, engine=engine)
        histories.append(result.history)
        weights.append(model.get_weights())
    assert histories[0]["loss"] == histories[1]["loss"]
    for original, other in zip(*weights):
        np.testing.assert_array_equal(original, other)
    # The moved targets are seen by the validation loss alone: about 100² per point.
    assert min(histories[1]["val_loss"]) > 1000
    assert max(histories[0]["val_loss"]) < 100
