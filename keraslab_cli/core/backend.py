"""The one place that selects Keras's PyTorch backend and imports Keras.

Importing this module imports keras and torch (about 3 s), so the CLI imports
it only inside the work that trains or loads a model, never for ``--help``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Keras reads KERAS_BACKEND once, at its first import, so it is set here,
# before that import, and nowhere else.
os.environ["KERAS_BACKEND"] = "torch"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import torch  # noqa: E402

from keraslab_cli.core import activations  # noqa: E402,F401  (registers heaviside)

if keras.backend.backend() != "torch":
    raise RuntimeError(f"keraslab needs Keras's torch backend, got {keras.backend.backend()!r}")

warnings.filterwarnings("ignore", module="keras")


def set_threads(count: int | None) -> None:
    """Limit torch to ``count`` CPU threads (None keeps torch's default)."""
    if count is not None and count >= 1:
        torch.set_num_threads(count)


@contextmanager
def limited_threads(count: int | None) -> Iterator[None]:
    """Run the block with torch using at most ``count`` CPU threads, then restore the previous count.

    ``None`` leaves torch's thread count unchanged, and so does a count above it.
    """
    previous = torch.get_num_threads()
    if count is not None and 1 <= count < previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


__all__ = ["keras", "torch", "set_threads", "limited_threads"]
