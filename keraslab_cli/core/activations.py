"""Activations that Keras lacks but the handout discusses, registered for saving.

Imported by ``backend`` so that every model keraslab saves or loads can use them.
Registered functions load in Keras's safe mode, unlike Lambda layers.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keraslab", name="heaviside")
def heaviside(x):
    """Apply the Heaviside step function: 1 where x >= 0, else 0 (so H(0) = 1)."""
    x = keras.ops.convert_to_tensor(x)
    return keras.ops.cast(keras.ops.greater_equal(x, 0), x.dtype)


def get_activation(name: str):
    """Return the Keras activation called ``name``, or keraslab's heaviside."""
    if name == "heaviside":
        return heaviside
    return keras.activations.get(name)
