"""A checkpoint written on an NVIDIA H200 (by `jbrain run` before the
circuits redesign: format jbrain-checkpoint/1, jax 0.11.2, orbax 0.12.4)
restores on this CPU-only machine as the seed preset it was, and the brain
runs on, saving format 2 beside it."""

from __future__ import annotations

import json
import os
import re
import tarfile

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import ROOT, assert_trees_equal, jbrain_cli, small

from jbrain import checkpoint
from jbrain.checkpoint import _new
from jbrain.session import Session

ARCHIVE = os.path.join(ROOT, "tests", "data", "h200_checkpoint_n2000_step300.tgz")


def _log_lines(workdir: str) -> list[str]:
    with open(os.path.join(workdir, "brain_debug.log"), encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.fixture
def gpu_workdir(tmp_path) -> str:
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp_path, filter="data")
    return str(tmp_path / "gpuck")


def test_gpu_checkpoint_restores_on_cpu_as_the_seed_preset(gpu_workdir):
    cpu = jax.devices("cpu")[0]
    r = checkpoint.restore(os.path.join(gpu_workdir, "checkpoints", "300"), device=cpu)
    assert r.meta["format"] == "jbrain-checkpoint/1"
    assert r.config == small() and r.seed == 0 and r.step == 300 and int(r.state.step) == 300
    for leaf in jax.tree.leaves((r.state, r.wiring)):
        assert leaf.devices() == {cpu}
    w = np.asarray(r.state.projections["W"].weights)
    assert w.shape == (2000 * 32,) and w.min() >= 0.0 and w.max() <= r.config.w_max and w.std() > 0
    assert r.wiring.projections["W"].pre.shape == r.wiring.projections["W"].out_post.shape == (2000, 32)
    # the rate at save is the one the GPU run logged for step 300
    last = _log_lines(gpu_workdir)[300].split("\t")
    assert last[0] == "300" and float(last[2]) == pytest.approx(float(r.state.homeostasis.rate), abs=1e-6)


def test_gpu_checkpoint_runs_on_from_the_cli_and_saves_format_2(gpu_workdir):
    p = jbrain_cli("run", f"--workdir={gpu_workdir}", "--steps=100", "--burst=50")
    assert p.returncode == 0, p.stderr
    ck = os.path.join(gpu_workdir, "checkpoints")
    assert (
        f"jbrain run: restored step 300 from {ck}/300 (saved 2026-11-28T04:57:53+00:00)" in p.stderr.decode()
    )
    assert "now at step 400" in p.stdout.decode()
    lines = _log_lines(gpu_workdir)
    assert [ln.split("\t")[0] for ln in lines[300:]] == [str(s) for s in range(300, 401)]
    assert checkpoint.complete_steps(ck) == [300, 400]  # the v1 checkpoint is kept beside the new one
    new = checkpoint.restore(os.path.join(ck, "400"))
    assert new.meta["format"] == "jbrain-checkpoint/2" and new.config == small()
    # the same continuation in this process: bit for bit what the CLI saved
    with open(os.path.join(ck, "400", "meta", "metadata")) as f:
        assert json.load(f)["step"] == 400
    os.rename(os.path.join(ck, "400"), os.path.join(gpu_workdir, "cli-400"))
    s = Session.open(small(), seed=0, workdir=gpu_workdir)
    assert s.step == 300
    s.run(50)
    s.run(50)
    assert_trees_equal(s.state, new.state)
    s.close(save=False)
    # `jbrain inspect` reads both formats
    os.rename(os.path.join(gpu_workdir, "cli-400"), os.path.join(ck, "400"))
    q = jbrain_cli("inspect", f"--workdir={gpu_workdir}")
    assert q.returncode == 0, q.stderr
    out = q.stdout.decode().splitlines()
    assert [re.split(r"\s+", ln.strip())[0] for ln in out[2:4]] == ["300", "400"]
    assert "circuit seed: 2000 neurons, dt 1.0 ms" in out


def test_a_v1_checkpoint_of_another_preset_is_damaged(gpu_workdir):
    path = os.path.join(gpu_workdir, "checkpoints", "300")
    meta_file = os.path.join(path, "meta", "metadata")
    with open(meta_file) as f:
        meta = json.load(f)
    meta["config"]["preset"] = "ei"
    with open(meta_file, "w") as f:
        json.dump(meta, f)
    with pytest.raises(checkpoint.DamagedCheckpoint) as e:
        checkpoint.restore(path)
    assert str(e.value) == "a jbrain-checkpoint/1 record of a non-seed preset"


def test_orbax_options_are_version_tolerant():
    """Options unknown to the installed orbax are dropped, not passed (the GPU
    image's orbax 0.12.4 lacks NumpyHandler(deepcopy_host_arrays=...))."""
    handler = _new(ocp.type_handlers.NumpyHandler, deepcopy_host_arrays=False, no_such_option=1)
    assert isinstance(handler, ocp.type_handlers.NumpyHandler)
