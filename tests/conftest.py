"""Shared fixtures: a tiny brain, pytree equality, the CLI runner.

Tests run on the CPU (CI); tests marked `gpu` run only where jax's default
backend is a GPU (through the device tool: `pytest -m gpu`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest

from jbrain import brain
from jbrain import plan as plans
from jbrain.config import BrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ON_GPU = jax.default_backend() == "gpu"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a GPU (run on the device: pytest -m gpu)")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a GPU (jax's default backend here is not one)")
    for item in items:
        if "gpu" in item.keywords and not ON_GPU:
            item.add_marker(skip)


def small(**kw) -> BrainConfig:
    """A tiny seed brain (2,000 neurons, K = 32) with any field changed."""
    return BrainConfig(**{"n_neurons": 2000, "fan_in": 32, **kw})


def tiny(config: BrainConfig | None = None, *, seed: int = 0, **plan_options):
    """(circuit, plan, wiring, state) of a newborn brain (default: `small()`)."""
    config = config or small()
    circuit = config.circuit()
    plan = plans.resolve(circuit, **plan_options)
    wiring, state = brain.init_brain(circuit, seed=seed)
    return circuit, plan, wiring, state


def leaves(tree) -> dict[str, np.ndarray]:
    """{path: host array} of a pytree (None sub-states have no leaves)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


def assert_trees_equal(a, b) -> None:
    """Bit-identical pytrees: the same leaves, shapes, dtypes and bytes."""
    la, lb = leaves(a), leaves(b)
    assert la.keys() == lb.keys()
    for k in la:
        assert la[k].dtype == lb[k].dtype and la[k].shape == lb[k].shape, k
        assert la[k].tobytes() == lb[k].tobytes(), f"{k} differs"


# One persistent compilation cache for a whole test run: both pytest-xdist
# workers and every CLI subprocess they start share it, so a program (a tiny
# brain's bursts, a preset's) is compiled once per run, not once per process.
# The process that starts the run (xdist's controller, which loads this file
# first) makes the folder; the workers inherit it through the environment;
# the controller removes it at the end.
_MADE_HERE = "JBRAIN_TEST_JIT_CACHE" not in os.environ
if _MADE_HERE:
    os.environ["JBRAIN_TEST_JIT_CACHE"] = tempfile.mkdtemp(prefix="jbrain-test-jit-")
_CLI_CACHE = os.environ["JBRAIN_TEST_JIT_CACHE"]
jax.config.update("jax_compilation_cache_dir", _CLI_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def once_per_run(name: str, compute: Callable[[], Any]) -> Any:
    """compute()'s JSON-able result, computed by one process of the test
    run: xdist's workers each build a module-scoped fixture of their own
    when the module's tests are shared out, so an expensive one is computed
    under a lock and kept as JSON in the run's folder for the others."""
    path = os.path.join(_CLI_CACHE, f"{name}.json")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        text = json.dumps(compute())
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        return json.loads(text)  # as the other processes read it


def pytest_sessionfinish(session):
    if _MADE_HERE:  # the controller, or a run without xdist
        shutil.rmtree(_CLI_CACHE, ignore_errors=True)


def cli_env() -> dict[str, str]:
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAX_COMPILATION_CACHE_DIR=_CLI_CACHE,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )  # fmt: skip
    env.pop("XLA_FLAGS", None)
    return env


def jbrain_cli(*args: str, stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`jbrain ARGS` in a subprocess (CPU), from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "experiments.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=cli_env(),
        timeout=timeout,
    )


@pytest.fixture
def tiny_brain():
    return tiny()


def preset_config(name: str, **changes) -> BrainConfig:
    """The BrainConfig that `--flagfile=experiments/configs/NAME.flags` sets
    (every other field at its default), with `changes` applied."""
    from experiments.flagfiles import config_from_flagfile

    return config_from_flagfile(name, **changes)
