"""`jbrain inspect` (experiments/inspect.py): the resolved plan as JSON
(--plan), and a workdir's checkpoints with the saved circuit."""

from __future__ import annotations

import json
import os
import re
import shutil

import jax
from conftest import jbrain_cli, preset_config

from jbrain import brain, synapses
from jbrain import plan as plans
from jbrain.session import Session

SMALL = "--flagfile=experiments/configs/small.flags"


def plan_of(*flags: str) -> dict:
    p = jbrain_cli("inspect", "--plan", *flags)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    return json.loads(p.stdout)


def test_plan_is_the_json_that_run_would_resolve_here():
    got = plan_of(SMALL)
    circuit = preset_config("small").circuit()
    assert got == json.loads(plans.resolve(circuit, platform="cpu").to_json(circuit))
    assert got["platform"] == "cpu" and got["backend"] in ("cpu_native", "xla")
    assert set(got["projections"]) == {"W"} and got["spike_capacity"]["brain"] in (0, 2000)


def test_plan_flags_change_the_plan():
    got = plan_of(SMALL, "--plasticity", "--propagation=gather", "--backend=xla", "--spike_buffer=0.3")
    assert got["backend"] == "xla" and got["spike_buffer"] == 0.3
    assert got["projections"] == {"W": {"path": "gather", "stdp": "eager"}}
    assert got["spike_capacity"] == {"brain": 0}  # no spike list on the gather path
    auto = preset_config("small", plasticity=True).circuit()
    assert plans.resolve(auto, platform="cpu").paths == ("event",)  # what the flags changed


def test_plan_of_a_two_population_circuit_has_a_path_per_projection():
    got = plan_of(
        "--flagfile=experiments/configs/ei.flags", "--n_neurons=4000", "--propagation=event", "--backend=xla"
    )
    assert got["projections"] == {
        "EE": {"path": "event", "stdp": None},
        "EI": {"path": "gather", "stdp": None},  # E and I differ in size: no fixed fan-out
        "IE": {"path": "gather", "stdp": None},
        "II": {"path": "event", "stdp": None},
    }
    assert got["spike_capacity"] == {"E": 320, "I": 80}


def _tree(path) -> dict[str, tuple[int, int]]:
    return {
        os.path.relpath(os.path.join(r, n), path): (os.lstat(os.path.join(r, n)).st_size,
                                                    os.lstat(os.path.join(r, n)).st_mtime_ns)
        for r, ds, fs in os.walk(path)
        for n in ds + fs
    }  # fmt: skip


def test_inspect_lists_the_checkpoints_and_the_saved_circuit(tmp_path):
    workdir = str(tmp_path / "wd")
    s = Session.open(preset_config("ei", n_neurons=2000), seed=5, workdir=workdir, keep=3)
    for _ in range(2):
        s.run(200)
        s.save(wait=True)
    s.close()
    ck = os.path.join(workdir, "checkpoints")
    shutil.copytree(os.path.join(ck, "400"), os.path.join(ck, "400.corrupt"))
    with open(os.path.join(ck, "400.corrupt", "meta", "metadata"), "w") as f:
        f.write('{"format": ')
    os.makedirs(os.path.join(ck, "600.orbax-checkpoint-tmp-123"))
    before = _tree(workdir)
    p = jbrain_cli("inspect", f"--workdir={workdir}")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    lines = p.stdout.decode().splitlines()
    assert lines[0] == f"checkpoints in {ck}:"
    assert re.fullmatch(r"\s+step\s+saved \(UTC\)\s+size\s+rate", lines[1])
    row = r"\s+{step}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+\.\d kB\s+0\.\d{{4}}"
    assert re.fullmatch(row.format(step=200), lines[2])
    assert re.fullmatch(row.format(step=400), lines[3])
    assert re.fullmatch(
        r"\s+400\s+-\s+\d+\.\d kB\s+-\s+set aside: its metadata is unreadable .*\(400\.corrupt\)", lines[4]
    )
    assert re.fullmatch(r"\s+600\s+-\s+0 B\s+-\s+incomplete: an interrupted save", lines[5])
    assert lines[6:10] == [
        "config of step 400 (jbrain 0.1.0, seed 5, 0 chat messages):",
        "circuit ei: 2000 neurons, dt 1.0 ms",
        "  population E: 1600 E neurons [0, 1600), ring, target rate 0.05",
        "  population I: 400 I neurons [1600, 2000), ring, target rate 0.05",
    ]
    assert [ln.split(":")[0] for ln in lines if ln.startswith("  projection ")] == [
        f"  projection {q}" for q in ("EE", "EI", "IE", "II")
    ]
    assert ' "preset": "ei",' in lines and ' "n_neurons": 2000,' in lines
    assert _tree(workdir) == before  # only read


def test_inspect_of_an_empty_or_missing_workdir(tmp_path):
    empty = jbrain_cli("inspect", f"--workdir={tmp_path}")
    assert empty.returncode == 0 and empty.stdout.decode() == f"no checkpoints in {tmp_path}/checkpoints\n"
    missing = jbrain_cli("inspect", f"--workdir={tmp_path}/nope")
    assert missing.returncode == 2
    assert missing.stderr.decode() == (
        f"jbrain inspect: error: --workdir='{tmp_path}/nope' is not a folder: pass the workdir of a brain\n"
    )


def test_footprint_counts_the_bytes_a_newborn_brain_holds():
    # brain.footprint (no allocation) against the arrays of a real newborn brain
    for config in (preset_config("small"), preset_config("ei", plasticity=True)):
        circuit = config.circuit()
        f = brain.footprint(circuit)
        wiring, state = brain.init_brain(circuit, seed=0)
        leaves = jax.tree.leaves((wiring, state))
        assert f["total"] == sum(x.nbytes for x in leaves)
        assert f["neuron_count"] == circuit.n
        counts = [synapses.span_size(circuit, q, "post") * q.fan_in for q in circuit.projections]
        assert f["synapse_count"] == sum(counts)
    # the seed preset: pre ids, out-table and weights, 4 bytes each per synapse
    f = brain.footprint(preset_config("small").circuit())
    assert f["synapses"] == 12 * f["synapse_count"]
