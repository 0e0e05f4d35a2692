"""A preset flagfile (experiments/configs/NAME.flags) read as a BrainConfig,
for scripts and tests that build brains without absl's flag parser."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from jbrain.config import BrainConfig, parse_sheet

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def config_from_flagfile(name: str, **changes: Any) -> BrainConfig:
    """The BrainConfig that `--flagfile=experiments/configs/NAME.flags` sets
    (every other field at its default; NAME may also be a path), with
    `changes` applied. `--flag`, `--noflag` and `--flag=value` lines;
    '#' comments."""
    return BrainConfig(**{**_flag_values(name), **changes})


PLAN_FLAGS = (
    "propagation", "stdp", "backend", "spike_buffer", "unroll", "record_spikes", "record_sheet", "devices",
    "exchange",
)  # fmt: skip


def _flag_values(name: str) -> dict[str, Any]:
    """{field: value} of a flagfile; a `--flagfile=PATH` line (PATH relative
    to the checkout, as absl reads it from there) includes that file. Plan
    flags (how a device runs the brain, e.g. --spike_buffer in teach.flags)
    are not the model's: skipped."""
    path = name if os.path.isfile(name) else os.path.join(CONFIGS, f"{name}.flags")
    fields = {f.name: f for f in dataclasses.fields(BrainConfig)}
    values: dict[str, Any] = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, text = line.removeprefix("--").partition("=")
        if key == "flagfile":
            values.update(_flag_values(os.path.join(os.path.dirname(os.path.dirname(CONFIGS)), text)))
            continue
        if not eq and key.startswith("no") and key[2:] in fields:
            values[key[2:]] = False
            continue
        if key in PLAN_FLAGS:
            continue
        if key not in fields:
            raise ValueError(f"{path}: unknown flag --{key}")
        default = getattr(BrainConfig, key)
        if key == "sheet":
            values[key] = parse_sheet(text)
        elif isinstance(default, bool):
            values[key] = (text or "true").lower() in ("true", "1")
        else:
            values[key] = type(default)(text)
    return values
