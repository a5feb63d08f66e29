"""Building the multilayer perceptrons of the lab with Keras layers."""

from __future__ import annotations

from keraslab_cli.core.backend import keras
from keraslab_cli.core.data import Dataset
from keraslab_cli.core.spec import ExperimentSpec

layers = keras.layers


def count_trainable_parameters(layer_count: int, units: int, inputs: int = 1, outputs: int = 1) -> int:
    """Count the weights and biases of an MLP with ``layer_count`` hidden layers of ``units``.

    The first hidden layer has inputs·p + p parameters, each next one p² + p,
    and the output layer p·outputs + outputs: 361 for the handout's 4 × 10.
    """
    first = inputs * units + units
    hidden = (layer_count - 1) * (units * units + units)
    output = units * outputs + outputs
    return first + hidden + output


def count_neurons(layer_count: int, units: int, outputs: int = 1) -> int:
    """Count the neurons: every hidden neuron plus the output neurons (inputs are not neurons)."""
    return layer_count * units + outputs


def build_mlp(spec: ExperimentSpec, data: Dataset) -> keras.Model:
    """Build the Sequential model of a specification, with its own seed.

    With ``spec.normalize`` the first layer is a fixed Keras ``Normalization``
    holding the training mean and variance of x, so that the saved model takes
    raw x. It has no trainable parameter.
    """
    keras.utils.set_random_seed(spec.seed)
    regularizer = None
    if spec.l1 > 0 or spec.l2 > 0:
        regularizer = keras.regularizers.L1L2(l1=spec.l1, l2=spec.l2)

    stack: list[keras.layers.Layer] = [layers.Input(shape=(1,), name="x")]
    if spec.normalize:
        stack.append(layers.Normalization(mean=data.x_mean, variance=data.x_std**2, name="normalization"))
    for index in range(1, spec.layers + 1):
        stack.append(layers.Dense(spec.units, activation=spec.activation, kernel_regularizer=regularizer, name=f"hidden_{index}"))
        if spec.dropout > 0:
            stack.append(layers.Dropout(spec.dropout, name=f"dropout_{index}"))
    stack.append(layers.Dense(1, activation="linear", name="output"))
    return keras.Sequential(stack, name="mlp")


def regularization_penalty(model: keras.Model) -> float:
    """Return the L1/L2 penalty of the model's current kernels, as Keras adds it to the loss."""
    penalties = model.losses
    if not penalties:
        return 0.0
    return float(sum(float(keras.ops.convert_to_numpy(penalty)) for penalty in penalties))


def make_optimizer(spec: ExperimentSpec, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Create the Keras optimizer with the resolved learning rate or schedule.

    Schedules are Keras's own and count optimizer steps, so their periods are
    scaled by the number of batches per epoch.
    """
    learning_rate = make_learning_rate(spec, steps_per_epoch)
    if spec.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=spec.momentum, nesterov=spec.nesterov)
    classes = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
        "nadam": keras.optimizers.Nadam,
    }
    return classes[spec.optimizer](learning_rate=learning_rate)


def make_learning_rate(spec: ExperimentSpec, steps_per_epoch: int):
    """Return a float or a Keras ``LearningRateSchedule`` for the optimizer."""
    initial = spec.resolved_learning_rate
    if spec.lr_schedule == "exponential":
        # --lr-decay is the factor applied per 1000 epochs.
        return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps=1000 * steps_per_epoch, decay_rate=spec.lr_decay)
    if spec.lr_schedule == "cosine":
        alpha = min(spec.lr_min / initial, 1.0)
        return keras.optimizers.schedules.CosineDecay(initial, decay_steps=spec.epochs * steps_per_epoch, alpha=alpha)
    return initial


def make_loss(name: str):
    """Return the Keras loss for ``mse``, ``mae`` or ``huber``."""
    return {
        "mse": keras.losses.MeanSquaredError(),
        "mae": keras.losses.MeanAbsoluteError(),
        "huber": keras.losses.Huber(),
    }[name]


def describe_layers(model: keras.Model) -> list[dict]:
    """List the model's layers as rows: name, kind, units, activation, parameters."""
    rows = []
    for layer in model.layers:
        activation = getattr(layer, "activation", None)
        rows.append(
            {
                "name": layer.name,
                "kind": type(layer).__name__,
                "units": getattr(layer, "units", None),
                "activation": getattr(activation, "__name__", None) if activation else None,
                "parameters": int(sum(int(w.numpy().size) for w in layer.trainable_weights)),
            }
        )
    return rows
