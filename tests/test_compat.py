"""Nothing a user has is lost: the seed preset reproduces the engine of
commit d666d30 (before the circuits redesign) bit for bit, and a checkpoint
that engine wrote restores and continues exactly as it would have.

tests/data/seed_fingerprints*.json were recorded by dev/fingerprint_d666d30.py
at d666d30 (CPU: compiled kernels and XLA gave the same; GPU: an H200), and
tests/data/v1_checkpoint_n2000.tgz with v1_continuation.json by
dev/checkpoint_d666d30.py. tests/data/teach_pre_motor_step250.tgz: a tiny
teachable brain that c4960a2 taught and saved (its test says how).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile

import numpy as np
import pytest
from conftest import ON_GPU, ROOT, preset_config, small

from jbrain import brain, learn
from jbrain import plan as plans
from jbrain.session import Session
from jbrain.text import Codec

DATA = os.path.join(ROOT, "tests", "data")
CASES = [
    dict(propagation="event", plasticity=False),
    dict(propagation="gather", plasticity=False),
    dict(propagation="bcoo", plasticity=False),
    dict(propagation="event", plasticity=True, stdp="eager"),
    dict(propagation="event", plasticity=True, stdp="deferred"),
    dict(propagation="gather", plasticity=True),
    dict(propagation="bcoo", plasticity=True),
    dict(propagation="event", plasticity=False, sheet=(40, 50)),
    dict(propagation="event", plasticity=True, stdp="eager", synaptic_scaling=True),
]


def _h(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(a)).tobytes()).hexdigest()[:16]


def _name(case: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in case.items())


def fingerprint(case: dict, backend: str, workdir) -> dict:
    """The recorder's run: seed 7, 150 steps, a 200-step reply to "hello
    brain", 150 steps; hashes of the debug log and the final arrays."""
    model = {k: v for k, v in case.items() if k not in ("propagation", "stdp")}
    options = {k: v for k, v in case.items() if k in ("propagation", "stdp")}
    config = small(**model)
    os.makedirs(workdir, exist_ok=True)
    plan = plans.resolve(config.circuit(), backend=backend, **options)
    s = Session.new(config, seed=7, workdir=str(workdir), plan=plan)
    codec = Codec.for_circuit(s.circuit)
    s.run(150)
    s.run(200, codec.encode("hello brain"))
    s.run(150)
    s.close(save=False)
    with open(os.path.join(workdir, "brain_debug.log"), encoding="utf-8") as f:
        log = f.read()
    ns, w = s.state.neurons, s.state.projections["W"]
    return {
        "log": hashlib.sha256(log.encode()).hexdigest()[:16],
        "weights": _h(w.weights),
        "v": _h(ns.v),
        "theta": _h(ns.theta),
        "x_pre": _h(w.x_pre),
        "step": int(s.state.step),
    }


def _expected(name: str, gpu: bool) -> dict:
    file = "seed_fingerprints_gpu.json" if gpu else "seed_fingerprints.json"
    with open(os.path.join(DATA, file)) as f:
        want = json.load(f)["cases"][name]
    return {k: v for k, v in want.items() if k != "ctrl"}


def _backends(case: dict, gpu: bool) -> list[str]:
    """The auto backend, and XLA beside it where the event path has kernels."""
    auto = plans.resolve(small().circuit()).backend
    return [auto, "xla"] if case["propagation"] == "event" and auto != "xla" else [auto]


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_seed_preset_matches_d666d30_bit_for_bit(case, tmp_path):
    if ON_GPU:
        pytest.skip("the GPU's fingerprints are checked by the gpu-marked test")
    for backend in _backends(case, gpu=False):
        got = fingerprint(case, backend, tmp_path / backend)
        assert got == _expected(_name(case), gpu=False), f"backend {backend}"


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES, ids=_name)
def test_seed_preset_matches_d666d30_on_the_gpu(case, tmp_path):
    for backend in _backends(case, gpu=True):
        got = fingerprint(case, backend, tmp_path / backend)
        assert got == _expected(_name(case), gpu=True), f"backend {backend}"


def test_a_v1_checkpoint_restores_and_continues_as_d666d30_did(tmp_path):
    """The d666d30 recorder saved at step 450 (plasticity on), then ran a
    200-step reply to "hello" and 100 steps: the same here, log included."""
    if ON_GPU:
        pytest.skip("recorded on the CPU")
    with tarfile.open(os.path.join(DATA, "v1_checkpoint_n2000.tgz")) as t:
        t.extractall(tmp_path, filter="data")
    workdir = str(tmp_path / "workdir")
    config = small(plasticity=True)
    s = Session.open(config, seed=3, workdir=workdir)
    assert s.step == 450 and s.seed == 3
    assert any("restored step 450" in note for note in s.notes)
    codec = Codec.for_circuit(s.circuit)
    s.run(200, codec.encode("hello"))
    s.run(100)
    saved = s.close()
    with open(os.path.join(workdir, "brain_debug.log"), encoding="utf-8") as f:
        log = f.read()
    with open(os.path.join(DATA, "v1_continuation.json")) as f:
        want = json.load(f)
    assert int(s.state.step) == want["step"]
    assert hashlib.sha256(log.encode()).hexdigest()[:16] == want["log"]
    assert _h(s.state.projections["W"].weights) == want["weights"]
    assert _h(s.state.neurons.v) == want["v"]
    # the new checkpoint is format 2 and the v1 one is kept beside it
    with open(os.path.join(saved, "meta", "metadata")) as f:
        assert json.load(f)["format"] == "jbrain-checkpoint/2"
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "450"))


def test_a_teachable_brain_saved_before_the_motor_layer_migrates(tmp_path):
    """tests/data/teach_pre_motor_step250.tgz: a tiny teachable cortex of
    c4960a2 (populations E, I, T, M; readout M -> the output region), taught
    hello => hi and saved at step 250. Today it restores with a motor layer:
    the saved neurons and projections as they were, the motor layer, pool
    and readout newborn, and one warning that says so."""
    with tarfile.open(os.path.join(DATA, "teach_pre_motor_step250.tgz")) as t:
        t.extractall(tmp_path, filter="data")
    config = preset_config(
        "cortex_small", sheet=(50, 64), n_neurons=3200, teach=True, plasticity=True,
        memory_neurons=64, relay_group=2, teach_fan_in=16, long_fan_in=8, fan_in=16,
    )  # fmt: skip
    s = Session.open(config, seed=3, workdir=str(tmp_path), plan_options={"spike_buffer": 0.5})
    assert s.step == 250 and [p.name for p in s.circuit.populations] == ["E", "I", "T", "M", "O", "P"]
    assert s.warnings == [
        f"checkpoint {tmp_path}/checkpoints/250 was written before teachable brains had a motor layer: the "
        "sheet, relay and memory are restored; the taught readout now ends on the motor layer, so it starts "
        "afresh (teach the pairs again)"
    ]
    old = s.circuit.bounds("O")[0]  # the saved brain's neurons come first
    wiring, born = brain.init_brain(s.circuit, seed=3)
    np.testing.assert_array_equal(s.state.neurons.theta[old:], born.neurons.theta[old:])
    assert not np.array_equal(s.state.neurons.theta[:old], born.neurons.theta[:old])  # it lived 250 steps
    np.testing.assert_array_equal(
        s.state.projections["memory_output"].weights, born.projections["memory_output"].weights
    )
    np.testing.assert_array_equal(
        s.wiring.projections["pool_motor"].pre, wiring.projections["pool_motor"].pre
    )
    codec = Codec.for_circuit(s.circuit)
    learn.teach(s, "hello", "hi", codec=codec)
    saved = s.close()
    again = Session.open(config, seed=3, workdir=str(tmp_path))  # today's layout: no migration
    assert again.step == s.step and again.warnings == [] and saved.endswith(str(s.step))
    again.close(save=False)
