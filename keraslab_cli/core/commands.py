"""Per-command defaults that differ from ExperimentSpec's (the handout's approx run)."""

from __future__ import annotations

from keraslab_cli.core import defaults

COMMAND_DEFAULTS: dict[str, dict] = {
    "approx": {},
    "noisy": {
        "n": defaults.NOISY_N,
        "sigma": defaults.SIGMA,
        "mu": defaults.MU,
        "val_split": defaults.VAL_SPLIT,
    },
}
