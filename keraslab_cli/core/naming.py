"""Deterministic run folder names built from the parameters.

The name starts with what a student compares first, for example
``4x10-tanh-rmsprop-lr0.001-e4000-s0``, then adds a short token for every
other parameter that differs from its default, so two runs share a folder
only when they share every parameter.
"""

from __future__ import annotations

import hashlib
import re

from keraslab_cli.core.spec import ExperimentSpec, differing_fields

BASE_FIELDS = {"command", "layers", "units", "activation", "optimizer", "learning_rate", "epochs", "seed"}
TOKENS = {
    "normalize": lambda value: "norm" if value else "raw",
    "batch_size": lambda value: f"b{value}",
    "momentum": lambda value: f"mom{value:g}",
    "nesterov": lambda value: "nesterov" if value else "",
    "n": lambda value: f"n{value}",
    "interval": lambda value: f"x{value[0]:g}_{value[1]:g}",
    "function": lambda value: "f" + hashlib.sha256(value.encode()).hexdigest()[:8],
    "loss": lambda value: str(value),
    "lr_schedule": lambda value: f"sched-{value}",
    "lr_decay": lambda value: f"decay{value:g}",
    "lr_min": lambda value: f"lrmin{value:g}",
    "patience": lambda value: f"pat{value}",
    "l1": lambda value: f"l1_{value:g}",
    "l2": lambda value: f"l2_{value:g}",
    "dropout": lambda value: f"drop{value:g}",
    "sigma": lambda value: f"sigma{value:g}",
    "mu": lambda value: f"mu{value:g}",
    "noise_seed": lambda value: f"ns{value}",
    "val_split": lambda value: f"val{value:g}",
    "early_stopping": lambda value: f"es{value}",
}


def run_name(spec: ExperimentSpec) -> str:
    """Return the folder name of a run, for example ``4x10-tanh-rmsprop-lr0.001-e4000-s0``."""
    parts = [
        f"{spec.layers}x{spec.units}",
        spec.activation,
        spec.optimizer,
        f"lr{spec.resolved_learning_rate:g}",
        f"e{spec.epochs}",
        f"s{spec.seed}",
    ]
    reference = ExperimentSpec(command=spec.command, **_command_defaults(spec.command))
    for field_name, value in differing_fields(spec, reference).items():
        if field_name in BASE_FIELDS:
            continue
        token = TOKENS.get(field_name, lambda value, name=field_name: f"{name}{value}")(value)
        if token:
            parts.append(token)
    return _safe("-".join(parts))


def _command_defaults(command: str) -> dict:
    from keraslab_cli.core.commands import COMMAND_DEFAULTS

    return COMMAND_DEFAULTS.get(command, {})


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)
