"""Training: Keras's own optimizers, losses and callbacks, in a faster loop.

``model.fit`` on the PyTorch backend spends most of each epoch on bookkeeping
around a tiny computation. The fast engine runs the same steps as ``fit`` with
torch operations on the Keras model's own variables. It shuffles the rows with
the same draws from torch's global generator as ``fit``'s DataLoader, computes
the same loss, updates the weights with the Keras optimizer's update rule, and
drives the same Keras callbacks (EarlyStopping, ReduceLROnPlateau). Its loss
history equals ``fit``'s to float32 rounding. A model with a layer the fast
engine does not know is trained with ``fit`` itself, and the result gives the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from keraslab_cli.core.backend import keras, limited_threads, torch
from keraslab_cli.core.data import Dataset
from keraslab_cli.core.models import make_loss, make_optimizer
from keraslab_cli.core.spec import ExperimentSpec

ENGINES = ("auto", "fast", "fit")
TORCH_ACTIVATIONS = {
    "linear": None,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
}

EpochCallback = Callable[[int, dict[str, float]], None]

# Largest matrix product of a training step, in multiply-adds (batch rows ×
# inputs × units), that trains on one CPU thread. Below it, torch's intra-op
# threads cost more in synchronisation than they save. On a 2-core machine
# whose cores other processes kept busy, a step of the lab's default model
# (10,000 multiply-adds) took 16 times longer on two threads than on one.
# NOTE: the limit is an estimate; the crossover was not measured on an idle machine.
SINGLE_THREAD_MAX_MULTIPLY_ADDS = 2**20


@dataclass
class StopRequest:
    """A flag that a signal handler sets to stop training after the current epoch."""

    signal_number: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal_number is not None


@dataclass
class TrainingResult:
    """Outcome of training, whatever the engine.

    Attributes:
        history: per-epoch lists: ``loss`` (as fit reports it), ``val_loss``
            with validation data, ``learning_rate``.
        status: ``completed``, ``early_stopped``, ``diverged`` or ``interrupted``.
        epochs_run: epochs finished.
        engine: ``fast`` or ``fit``.
        engine_note: why ``fit`` was used, when it was.
        seconds: wall time of the training loop.
        restored_epoch: 1-based epoch whose weights early stopping restored.
    """

    history: dict[str, list[float]]
    status: str
    epochs_run: int
    engine: str
    engine_note: str | None = None
    seconds: float = 0.0
    restored_epoch: int | None = None
    signal_number: int | None = None
    extra: dict = field(default_factory=dict)


class _Monitor(keras.callbacks.Callback):
    """Records the learning rate, detects divergence and stop requests, reports progress."""

    def __init__(self, epochs: int, on_epoch: EpochCallback | None, stop: StopRequest | None) -> None:
        super().__init__()
        self.epochs = epochs
        self.on_epoch = on_epoch
        self.stop = stop
        self.status = "completed"
        self.learning_rates: list[float] = []
        self.epochs_run = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.learning_rates.append(current_learning_rate(self.model.optimizer))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs_run = epoch + 1
        loss = logs.get("loss", math.nan)
        if not math.isfinite(loss) or not math.isfinite(logs.get("val_loss", 0.0)):
            self.status = "diverged"
            self.model.stop_training = True
        elif self.stop is not None and self.stop.requested:
            self.status = "interrupted"
            self.model.stop_training = True
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, {**logs, "learning_rate": self.learning_rates[-1]})


def current_learning_rate(optimizer) -> float:
    """Return the learning rate the optimizer's next step will use, as a float."""
    rate = optimizer.learning_rate
    if hasattr(rate, "value"):
        rate = rate.value
    return float(rate.item()) if hasattr(rate, "item") else float(rate)


def batch_size_of(spec: ExperimentSpec, samples: int) -> int:
    """Return the batch size used: the flag, capped at the data size, or the whole data set."""
    return samples if spec.batch_size is None else min(spec.batch_size, samples)


def train(
    model: keras.Model,
    spec: ExperimentSpec,
    data: Dataset,
    on_epoch: EpochCallback | None = None,
    stop: StopRequest | None = None,
    engine: str = "auto",
) -> TrainingResult:
    """Compile and train ``model`` on ``data`` with the parameters of ``spec``.

    Args:
        model: a model from ``build_mlp`` (not yet compiled).
        spec: the run's parameters.
        data: training and validation samples.
        on_epoch: called after each epoch with its 1-based number and logs.
        stop: stop request set by a signal handler; checked after each epoch.
        engine: ``auto`` (fast when possible), ``fast`` or ``fit``, default ``auto``.
    """
    samples = len(data.x_train)
    batch_size = batch_size_of(spec, samples)
    steps = math.ceil(samples / batch_size)
    model.compile(optimizer=make_optimizer(spec, steps), loss=make_loss(spec.loss))
    # Keras builds the optimizer's slots on the first step inside fit, so the
    # fast engine builds them here, in the same order.
    model.optimizer.build(model.trainable_variables)

    monitor = _Monitor(spec.epochs, on_epoch, stop)
    callbacks: list[keras.callbacks.Callback] = [monitor]
    early = None
    if spec.early_stopping is not None and data.has_validation:
        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.early_stopping, restore_best_weights=True)
        callbacks.append(early)
    if spec.lr_schedule == "plateau":
        watched = "val_loss" if data.has_validation else "loss"
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=watched, factor=spec.lr_decay, patience=spec.patience, min_lr=spec.lr_min)
        )

    plan, reason = _forward_plan(model) if engine != "fit" else (None, "requested with --engine fit")
    if engine == "fast" and plan is None:
        raise ValueError(f"the fast engine cannot train this model: {reason}")

    started = time.perf_counter()
    with limited_threads(thread_count_for(model, batch_size)):
        if plan is not None:
            history = _fast_fit(model, plan, data, spec.epochs, batch_size, callbacks)
            engine_used, note = "fast", None
        else:
            history = _keras_fit(model, data, spec.epochs, batch_size, callbacks)
            engine_used, note = "fit", reason
    seconds = time.perf_counter() - started

    history["learning_rate"] = monitor.learning_rates[: len(history["loss"])]
    status = monitor.status
    restored = None
    if status == "completed" and early is not None and early.stopped_epoch > 0:
        status = "early_stopped"
    if early is not None and early.best_weights is not None and "val_loss" in history:
        restored = int(np.nanargmin(history["val_loss"])) + 1
    return TrainingResult(
        history=history,
        status=status,
        epochs_run=len(history["loss"]),
        engine=engine_used,
        engine_note=note,
        seconds=seconds,
        restored_epoch=restored,
        signal_number=stop.signal_number if stop is not None else None,
    )


def thread_count_for(model: keras.Model, batch_size: int) -> int | None:
    """Return 1 when every matrix product of a step is small enough for one thread, else None (torch's default)."""
    largest = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            largest = max(largest, batch_size * math.prod(kernel.shape))
    return 1 if largest <= SINGLE_THREAD_MAX_MULTIPLY_ADDS else None


def _forward_plan(model: keras.Model):
    """Translate the model's layers into torch steps, or explain why not.

    Dense steps hold the torch tensors behind the layer's kernel and bias.
    Keras updates those tensors in place (the optimizers' ``_foreach_*_``
    calls, ``Variable.assign`` with ``copy_``), so they stay valid for the
    whole training and reading them skips ``Variable.value``'s checks.
    """
    plan = []
    for layer in model.layers:
        if getattr(layer, "activity_regularizer", None) is not None:
            return None, f"layer {layer.name} has an activity regularizer, which only fit applies"
        if isinstance(layer, keras.layers.Normalization):
            mean = layer.mean.value if hasattr(layer.mean, "value") else torch.as_tensor(layer.mean)
            variance = layer.variance.value if hasattr(layer.variance, "value") else torch.as_tensor(layer.variance)
            scale = torch.clamp(torch.sqrt(variance), min=keras.backend.epsilon())
            plan.append(("normalize", (mean.detach(), scale.detach())))
        elif isinstance(layer, keras.layers.Dense):
            if layer.lora_enabled or layer.quantization_mode is not None:
                return None, f"layer {layer.name} is quantized or uses LoRA"
            name = getattr(layer.activation, "__name__", "")
            function = TORCH_ACTIVATIONS[name] if name in TORCH_ACTIVATIONS else layer.activation
            bias = layer.bias.value if layer.bias is not None else None
            plan.append(("dense", (layer.kernel.value, bias, function)))
        elif isinstance(layer, keras.layers.Dropout):
            plan.append(("keras", layer))
        else:
            return None, f"layer {layer.name} ({type(layer).__name__}) is not supported by the fast engine"
    return plan, None


def _forward(plan, inputs, training: bool):
    hidden = inputs
    for kind, item in plan:
        if kind == "normalize":
            mean, scale = item
            hidden = (hidden - mean) / scale
        elif kind == "dense":
            kernel, bias, activation = item
            # matmul then add, as Keras's Dense does: a fused addmm rounds
            # differently and the history would drift away from fit's.
            hidden = torch.matmul(hidden, kernel)
            if bias is not None:
                hidden = hidden + bias
            if activation is not None:
                hidden = activation(hidden)
        elif training:
            hidden = item(hidden, training=True)
    return hidden


def _total_loss(model, loss_function, y_true, y_pred, regularized: bool):
    loss = loss_function(y_true, y_pred)
    if regularized:
        penalties = model.losses
        if penalties:
            loss = loss + torch.stack([torch.as_tensor(p) for p in penalties]).sum()
    return loss


def _update_function(optimizer, variables) -> Callable[[list], None]:
    """Return the step that applies gradients with the Keras optimizer's update rule.

    ``optimizer.apply`` spends about as long on checks as on the update for the
    lab's models. Its optional features are loss scaling, gradient
    accumulation, EMA, constraints and variables overwritten by their gradient.
    Without them, ``apply`` clips the gradients, applies weight decay, runs the
    backend's update step with the current learning rate and adds 1 to the
    iterations counter, so the returned step does exactly that. With any of
    them, the step calls ``apply`` itself.
    """
    plain = (
        optimizer.loss_scale_factor is None
        and not optimizer.gradient_accumulation_steps
        and not optimizer.use_ema
        and all(variable.constraint is None for variable in variables)
        and not any(getattr(variable, "overwrite_with_gradient", False) for variable in variables)
    )
    if not plain:
        return lambda gradients: optimizer.apply(gradients, variables)

    iterations = optimizer.iterations.value

    def update(gradients):
        gradients = optimizer._clip_gradients(gradients)
        optimizer._apply_weight_decay(variables)
        optimizer._backend_update_step(gradients, variables, optimizer.learning_rate)
        iterations.add_(1)

    return update


def _skip_draws(count: int) -> None:
    """Advance torch's global generator by ``count`` int64 draws."""
    for _index in range(count):
        torch.empty((), dtype=torch.int64).random_()


def _fit_permutation(samples: int):
    """Draw a row order exactly as fit's torch DataLoader does for one epoch."""
    # Each epoch, Keras creates a DataLoader iterator, which draws its base
    # seed. Then RandomSampler draws the seed of its own generator. This is the
    # order of keras 3.15's EpochIterator and torch 2.13's DataLoader, and the
    # fit-equality tests check it.
    _skip_draws(1)
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(samples, generator=generator)


# Draws of torch's global generator that fit makes outside the row shuffles:
# two before the first epoch, one after each epoch (an iterator created for the
# next epoch and discarded), and two more per epoch for validation iterators.
FIT_DRAWS_AT_START = 2
FIT_DRAWS_AFTER_EPOCH = 1
FIT_DRAWS_PER_VALIDATION = 2


def _fast_fit(model, plan, data: Dataset, epochs: int, batch_size: int, callbacks) -> dict[str, list[float]]:
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    x_val = torch.from_numpy(data.x_val) if data.has_validation else None
    y_val = torch.from_numpy(data.y_val) if data.has_validation else None
    samples = len(x)
    variables = model.trainable_variables
    tensors = [variable.value for variable in variables]
    update = _update_function(model.optimizer, variables)
    loss_function = _loss_function(model)
    regularized = any(variable.regularizer is not None for variable in variables)

    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs, steps=math.ceil(samples / batch_size))
    history: dict[str, list[float]] = {"loss": []}
    if x_val is not None:
        history["val_loss"] = []
    model.stop_training = False
    callback_list.on_train_begin()
    _skip_draws(FIT_DRAWS_AT_START)
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        permutation = _fit_permutation(samples)
        total = 0.0
        for start in range(0, samples, batch_size):
            rows = permutation[start : start + batch_size]
            loss = _total_loss(model, loss_function, y[rows], _forward(plan, x[rows], training=True), regularized)
            gradients = torch.autograd.grad(loss, tensors)
            with torch.no_grad():
                update(list(gradients))
            total += loss.item() * len(rows)
        logs = {"loss": total / samples}
        _skip_draws(FIT_DRAWS_AFTER_EPOCH + (FIT_DRAWS_PER_VALIDATION if x_val is not None else 0))
        if x_val is not None:
            with torch.inference_mode():
                val_loss = _total_loss(model, loss_function, y_val, _forward(plan, x_val, training=False), regularized)
            logs["val_loss"] = val_loss.item()
        for key, value in logs.items():
            history[key].append(value)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history


def _loss_function(model):
    loss = model.loss
    if isinstance(loss, keras.losses.MeanSquaredError):
        return lambda y_true, y_pred: torch.mean(torch.square(y_true - y_pred))
    return loss


def _keras_fit(model, data: Dataset, epochs: int, batch_size: int, callbacks) -> dict[str, list[float]]:
    validation = (data.x_val, data.y_val) if data.has_validation else None
    result = model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        validation_batch_size=max(len(data.x_val), 1),
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    keys = ["loss", "val_loss"] if validation is not None else ["loss"]
    return {key: [float(value) for value in result.history[key]] for key in keys}
