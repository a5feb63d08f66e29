"""Training data: the target function sampled on the interval, with optional noise.

Arrays are NumPy float32 columns of shape (n, 1), as Keras expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keraslab_cli.core import defaults
from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.expression import Expression, parse_expression
from keraslab_cli.core.i18n import _
from keraslab_cli.core.spec import ExperimentSpec


@dataclass(frozen=True)
class Dataset:
    """Samples of the target f: training and validation parts, plus the clean f.

    Attributes:
        x_train, y_train: the samples trained on, shape (n_train, 1).
        x_val, y_val: held-out samples, shape (n_val, 1); empty without a split.
        target: the parsed f, to compare F with the noise-free function.
        x_mean, x_std: statistics of x_train used by normalization.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    target: Expression
    x_mean: float
    x_std: float

    @property
    def has_validation(self) -> bool:
        return len(self.x_val) > 0


def sample_target(target: Expression, interval: tuple[float, float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample f at n evenly spaced points of the interval, bounds included.

    Raises:
        InvalidValue: f is not finite at some point of the interval.
    """
    low, high = interval
    x = np.linspace(low, high, n)
    y = target(x)
    bad = ~np.isfinite(y)
    if bad.any():
        raise InvalidValue(
            "function",
            target.source,
            _("a function defined on the whole interval [{low}, {high}]: f({x}) is not a finite number; change --interval or --function").format(
                low=low, high=high, x=f"{x[bad][0]:.4g}"
            ),
        )
    return x, y


def gaussian_noise(mu: float, sigma: float, size: int, seed: int) -> np.ndarray:
    """Draw ``size`` values of a normal law N(mu, sigma²), reproducibly from ``seed``."""
    return np.random.default_rng(seed).normal(mu, sigma, size)


def split_indices(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split range(n) at random into sorted training and validation indices."""
    held_out = round(n * val_split)
    if held_out == 0:
        return np.arange(n), np.arange(0)
    permutation = np.random.default_rng(seed + 1).permutation(n)
    return np.sort(permutation[held_out:]), np.sort(permutation[:held_out])


def make_dataset(spec: ExperimentSpec) -> Dataset:
    """Build the data set that a specification describes, checking f on the interval."""
    target = parse_expression(spec.function)
    x, y = sample_target(target, spec.interval, spec.n)
    _check_float32_range(x, y, spec, noisy=False)
    if spec.sigma > 0 or spec.mu != 0:
        y = y + gaussian_noise(spec.mu, spec.sigma, spec.n, spec.resolved_noise_seed)
        _check_float32_range(x, y, spec, noisy=True)
    train, val = split_indices(spec.n, spec.val_split, spec.resolved_noise_seed)
    x_train = x[train]
    x_mean, x_std = float(x_train.mean()), float(x_train.std())
    # Points distinct in float64 can round to one float32 value, and Keras trains on float32.
    if spec.normalize and not (x_std > 0 and np.ptp(x_train.astype(np.float32)) > 0):
        raise InvalidValue("normalize", True, _("inputs that are not all equal: their standard deviation is 0, so they cannot be centred and reduced"))
    return Dataset(
        x_train=_column(x_train),
        y_train=_column(y[train]),
        x_val=_column(x[val]),
        y_val=_column(y[val]),
        target=target,
        x_mean=x_mean,
        x_std=x_std,
    )


def _check_float32_range(x: np.ndarray, y: np.ndarray, spec: ExperimentSpec, noisy: bool) -> None:
    """Reject samples that overflow float32, the type Keras trains in."""
    too_large = np.abs(y) > np.finfo(np.float32).max
    if not too_large.any():
        return
    position = int(np.argmax(too_large))
    if noisy:
        raise InvalidValue("sigma", spec.sigma, _("noise that keeps every y within the float32 range (±3.4e38); lower --sigma or --mu"))
    raise InvalidValue(
        "function",
        spec.function,
        _("a function whose values fit in float32 (±3.4e38), the type Keras trains in, but f({x}) = {y:.3g}; change --interval or --function").format(
            x=f"{x[position]:.4g}", y=y[position]
        ),
    )


def dense_grid(interval: tuple[float, float], points: int = defaults.DENSE_GRID_POINTS) -> np.ndarray:
    """Return ``points`` evenly spaced x over the interval, as a float32 column."""
    return _column(np.linspace(interval[0], interval[1], points))


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 1)
