"""The experiment specification: one frozen dataclass built from the flags.

``ExperimentSpec`` contains every parameter of an ``approx`` or ``noisy`` run,
already resolved (no None left where Keras needs a value). ``validate`` checks
each value before any work starts and names the offending field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from keraslab_cli.core import defaults
from keraslab_cli.core.errors import InvalidValue
from keraslab_cli.core.i18n import _, format_number

# Upper limits that catch a typo (--p 100000) before Keras tries to allocate
# it. The lab's networks have a few hundred parameters and 100 points, so the
# limits are far above any exercise.
MAX_TRAINABLE_PARAMETERS = 10_000_000
MAX_POINTS = 1_000_000
# Keras builds each layer in Python, so a deep stack is slow to build; the lab uses a few layers.
MAX_LAYERS = 1000
# keras.utils.set_random_seed seeds NumPy's legacy generator, which accepts 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
# Keras trains in float32, so inputs beyond its largest value would become infinite.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class ExperimentSpec:
    """Every parameter of a training run, with the handout's values as defaults."""

    command: str = "approx"
    # Network.
    layers: int = defaults.LAYERS
    units: int = defaults.UNITS
    activation: str = defaults.ACTIVATION
    # Training.
    epochs: int = defaults.EPOCHS
    optimizer: str = defaults.OPTIMIZER
    learning_rate: float | None = None
    momentum: float = 0.0
    nesterov: bool = False
    batch_size: int | None = None
    seed: int = defaults.SEED
    loss: str = defaults.LOSS
    lr_schedule: str = "constant"
    lr_decay: float = 0.5
    lr_min: float = 0.0
    patience: int = 100
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0
    # Data.
    n: int = defaults.N
    interval: tuple[float, float] = defaults.INTERVAL
    normalize: bool = False
    function: str = defaults.LAB_FUNCTION
    # Noisy data only.
    sigma: float = 0.0
    mu: float = 0.0
    noise_seed: int | None = None
    val_split: float = 0.0
    early_stopping: int | None = None

    @property
    def resolved_learning_rate(self) -> float:
        """The learning rate used: the flag, or the optimizer's Keras default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return defaults.OPTIMIZER_LEARNING_RATES[self.optimizer]

    @property
    def resolved_noise_seed(self) -> int:
        return self.seed if self.noise_seed is None else self.noise_seed

    def to_dict(self) -> dict[str, Any]:
        """Return the fully resolved configuration, as saved in run.json."""
        data = asdict(self)
        data["interval"] = list(self.interval)
        data["learning_rate"] = self.resolved_learning_rate
        if self.command == "noisy":
            data["noise_seed"] = self.resolved_noise_seed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentSpec":
        """Rebuild a specification from ``to_dict``'s output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        if "interval" in values:
            values["interval"] = tuple(values["interval"])
        return cls(**values)


def _check(condition: bool, field_name: str, value: Any, expected: str) -> None:
    if not condition:
        raise InvalidValue(field_name, value, expected)


def is_finite_number(value: Any) -> bool:
    """Return True for an int or float (not a bool) that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def expected_choice(value: Any, choices: tuple[str, ...]) -> str:
    """Describe the valid choices, suggesting the closest one to a mistyped value."""
    import difflib

    expected = _("one of: {choices}").format(choices=", ".join(choices))
    close = difflib.get_close_matches(str(value).lower(), choices, n=1, cutoff=0.6)
    if close:
        expected += " " + _("(did you mean {name}?)").format(name=close[0])
    return expected


def validate(spec: ExperimentSpec) -> ExperimentSpec:
    """Check every value of a specification and return it unchanged.

    Raises:
        InvalidValue: naming the first invalid field, its value and what is valid.
    """
    positive_integer = _("an integer of at least 1")
    _check(spec.layers >= 1, "layers", spec.layers, positive_integer)
    _check(spec.units >= 1, "units", spec.units, positive_integer)
    _check(spec.epochs >= 1, "epochs", spec.epochs, positive_integer)
    _check(spec.n >= 2, "n", spec.n, _("an integer of at least 2 (points to learn from)"))
    _check(spec.n <= MAX_POINTS, "n", spec.n, _("at most {limit} points").format(limit=format_number(MAX_POINTS)))
    _check(spec.layers <= MAX_LAYERS, "layers", spec.layers, _("at most {limit} hidden layers").format(limit=MAX_LAYERS))
    # (L-1)p² + (L+2)p + 1 weights and biases: hidden kernels, biases and the output neuron.
    parameters = (spec.layers - 1) * spec.units**2 + (spec.layers + 2) * spec.units + 1
    too_big = _("a network of at most {limit} trainable parameters, but this one would have {count}; use fewer layers or neurons").format(limit=format_number(MAX_TRAINABLE_PARAMETERS), count=format_number(parameters))
    _check(parameters <= MAX_TRAINABLE_PARAMETERS, "units", spec.units, too_big)
    seed_range = _("an integer from 0 to {limit}").format(limit=MAX_SEED)
    _check(0 <= spec.seed <= MAX_SEED, "seed", spec.seed, seed_range)
    if spec.noise_seed is not None:
        _check(0 <= spec.noise_seed <= MAX_SEED, "noise_seed", spec.noise_seed, seed_range)
    for field_name, choices in (
        ("activation", defaults.ACTIVATIONS),
        ("optimizer", defaults.OPTIMIZERS),
        ("loss", defaults.LOSSES),
        ("lr_schedule", defaults.LR_SCHEDULES),
    ):
        value = getattr(spec, field_name)
        _check(value in choices, field_name, value, expected_choice(value, choices))

    positive_number = _("a positive finite number, for example 0.001")
    if spec.learning_rate is not None:
        _check(is_finite_number(spec.learning_rate) and spec.learning_rate > 0, "learning_rate", spec.learning_rate, positive_number)
    _check(is_finite_number(spec.momentum) and 0 <= spec.momentum < 1, "momentum", spec.momentum, _("a number in [0, 1), for example 0.9"))
    _check(not (spec.momentum > 0 and spec.optimizer != "sgd"), "momentum", spec.momentum, _("0 unless the optimizer is sgd (--optimizer sgd)"))
    _check(not (spec.nesterov and spec.optimizer != "sgd"), "nesterov", spec.nesterov, _("only with the sgd optimizer (--optimizer sgd)"))
    if spec.batch_size is not None:
        _check(spec.batch_size >= 1, "batch_size", spec.batch_size, positive_integer)
    _check(is_finite_number(spec.lr_decay) and 0 < spec.lr_decay <= 1, "lr_decay", spec.lr_decay, _("a number in (0, 1], for example 0.5"))
    _check(is_finite_number(spec.lr_min) and spec.lr_min >= 0, "lr_min", spec.lr_min, _("a finite number of at least 0"))
    _check(spec.patience >= 1, "patience", spec.patience, positive_integer)
    for name in ("l1", "l2"):
        value = getattr(spec, name)
        _check(is_finite_number(value) and value >= 0, name, value, _("a finite number of at least 0, for example 0.001"))
    _check(is_finite_number(spec.dropout) and 0 <= spec.dropout < 1, "dropout", spec.dropout, _("a number in [0, 1), for example 0.1"))

    low, high = spec.interval
    _check(is_finite_number(low) and is_finite_number(high) and low < high, "interval", f"{low} {high}", _("two finite bounds A B with A < B, for example 0 5"))
    _check(max(abs(low), abs(high)) <= FLOAT32_MAX, "interval", f"{low} {high}", _("bounds between -3.4e38 and 3.4e38, the range of float32 numbers that Keras trains with"))
    _check(is_finite_number(spec.sigma) and spec.sigma >= 0, "sigma", spec.sigma, _("a finite standard deviation of at least 0, for example 0.3"))
    _check(is_finite_number(spec.mu), "mu", spec.mu, _("a finite number"))
    _check(is_finite_number(spec.val_split) and 0 <= spec.val_split < 1, "val_split", spec.val_split, _("a share in [0, 1), for example 0.2"))
    if spec.early_stopping is not None:
        _check(spec.early_stopping >= 1, "early_stopping", spec.early_stopping, positive_integer)
        _check(spec.val_split > 0, "early_stopping", spec.early_stopping, _("a validation set: early stopping watches the validation loss, so --val-split must be above 0"))
    if spec.val_split > 0:
        held_out = round(spec.n * spec.val_split)
        _check(held_out >= 1 and spec.n - held_out >= 2, "val_split", spec.val_split, _("a share that leaves at least 1 validation point and 2 training points out of {n}").format(n=spec.n))
    return spec


def field_names() -> list[str]:
    """Return the names of every field of ExperimentSpec."""
    return [f.name for f in fields(ExperimentSpec)]


def differing_fields(spec: ExperimentSpec, reference: ExperimentSpec | None = None) -> dict[str, Any]:
    """Return the fields of ``spec`` whose value differs from ``reference`` (the defaults)."""
    reference = reference or ExperimentSpec(command=spec.command)
    return {name: getattr(spec, name) for name in field_names() if getattr(spec, name) != getattr(reference, name)}


