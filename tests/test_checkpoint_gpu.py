"""A checkpoint written on an NVIDIA H200 (by `jbrain run`, jax 0.11.2,
orbax 0.12.4) restores on this CPU-only machine and the brain runs on."""

import os
import subprocess
import sys
import tarfile

import jax
import numpy as np
import orbax.checkpoint as ocp

from jbrain import checkpoint
from jbrain.checkpoint import _new

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = os.path.join(ROOT, "tests", "data", "h200_checkpoint_n2000_step300.tgz")


def _log_lines(workdir: str) -> list[str]:
    with open(os.path.join(workdir, "brain_debug.log"), encoding="utf-8") as f:
        return f.read().splitlines()


def _unpack(tmp_path) -> str:
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="data")
    return str(tmp_path / "gpuck")


def test_gpu_checkpoint_restores_on_cpu(tmp_path):
    workdir = _unpack(tmp_path)
    cpu = jax.devices("cpu")[0]
    r = checkpoint.restore(os.path.join(workdir, "checkpoints", "300"), device=cpu)
    assert r.config.n_neurons == 2000 and r.config.fan_in == 32
    assert int(r.state.step) == 300
    for leaf in jax.tree.leaves((r.state, r.wiring)):
        assert leaf.devices() == {cpu}
    w = np.asarray(r.state.weights)
    assert w.shape == (2000 * 32,) and w.min() >= 0.0 and w.max() <= r.config.w_max
    # the rate at save is the one the GPU run logged for step 300
    last = _log_lines(workdir)[300].split("\t")
    assert last[0] == "300" and abs(float(last[2]) - float(np.asarray(r.state.rate))) < 1e-6


def test_gpu_checkpoint_runs_on_from_the_cli(tmp_path):
    workdir = _unpack(tmp_path)
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    p = subprocess.run(
        [sys.executable, "-m", "jbrain.cli", "run", f"--workdir={workdir}", "--steps=100", "--burst=50"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "restored step 300" in p.stderr and "now at step 400" in p.stdout
    lines = _log_lines(workdir)
    assert [ln.split("\t")[0] for ln in lines[300:]] == [str(s) for s in range(300, 401)]


def test_orbax_options_are_version_tolerant():
    """Options unknown to the installed orbax are dropped, not passed (the GPU
    image's orbax 0.12.4 lacks NumpyHandler(deepcopy_host_arrays=...))."""
    handler = _new(ocp.type_handlers.NumpyHandler, deepcopy_host_arrays=False, no_such_option=1)
    assert isinstance(handler, ocp.type_handlers.NumpyHandler)
