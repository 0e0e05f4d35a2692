"""Checkpoints (jbrain/checkpoint.py, with Session.open/save/close): exact
resume, the format-2 layout, atomic and verified saves, damaged and
mismatched checkpoints, disk errors, the autosave policy, a restore in a
fresh process."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from conftest import ROOT, assert_trees_equal, cli_env, jbrain_cli, leaves, preset_config, small

from jbrain import checkpoint
from jbrain.circuit import Circuit
from jbrain.config import SHAPE_FIELDS, BrainConfig
from jbrain.session import Session

# orbax leaves un-awaited coroutines behind when it fails to read a damaged
# checkpoint or to write to a full disk; pytest reports them at GC time.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CONFIG = small(plasticity=True)
# the format-2 layout of the seed brain: every array a checkpoint holds
SEED_ARRAYS = {
    *(f"state.neurons.{k}" for k in ("v", "theta", "adapt", "refrac", "mode", "spikes")),
    *(f"state.projections.W.{k}" for k in ("weights", "x_pre", "y_post")),
    "state.homeostasis.ctrl",
    "state.homeostasis.rate",
    "state.step",
    "state.key",
    "state.status",
    "wiring.projections.W.pre",
    "wiring.projections.W.out_post",
}


def host_copy(tree):
    """Owned host copies of a pytree's leaves (the session donates its state)."""
    return jax.tree.map(np.array, tree)


def tree_snapshot(path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and folder under `path`."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A workdir whose brain saved at steps 200, 400, 600 with --keep=2, and
    the states it had at 400 and 600. Saves are explicit and waited for:
    autosave skips a save while the previous one is still being written, so
    which autosaves happen depends on the disk (tested on its own below)."""
    workdir = str(tmp_path_factory.mktemp("template"))
    s = Session.open(CONFIG, seed=0, workdir=workdir, keep=2)
    states = {}
    for _ in range(3):
        s.run(200)
        s.save(wait=True)
        states[s.step] = host_copy(s.state)
    assert s.close() == os.path.join(workdir, "checkpoints", "600")
    assert s.warnings == []
    return workdir, states


def copy_of(template, tmp_path) -> str:
    dst = str(tmp_path / "wd")
    shutil.copytree(template[0], dst)
    return dst


# ------------------------------------------------------------- exactness ---


@pytest.mark.parametrize(
    "config",
    [CONFIG, preset_config("coba", n_neurons=1000)],
    ids=["seed-plastic", "coba"],
)
def test_save_exit_restore_and_run_on_equals_the_uninterrupted_run(config, tmp_path):
    """1000 steps in one go == 600 steps, exit, restore, 400 more: the same
    log bytes, state and autosaved checkpoints (coba: two populations with
    conductances, per-population log columns, projections without an
    out-table)."""
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    a = Session.open(config, seed=3, workdir=one, save_every=400)
    for _ in range(5):
        a.run(200)
    a.close()

    b = Session.open(config, seed=3, workdir=two, save_every=400)
    for _ in range(3):
        b.run(200)
    assert b.close() == os.path.join(two, "checkpoints", "600")
    c = Session.open(config, seed=3, workdir=two, save_every=400)
    assert c.step == 600 and c.notes[0].startswith(f"restored step 600 from {two}/checkpoints/600 (saved ")
    for _ in range(2):
        c.run(200)
    c.close()
    assert a.warnings == c.warnings == []

    log_one = (tmp_path / "one" / "brain_debug.log").read_bytes()
    assert log_one == (tmp_path / "two" / "brain_debug.log").read_bytes()  # byte-identical lines
    assert log_one.count(b"\n") == 1001
    assert_trees_equal(a.state, c.state)  # weights, traces, conductances, thresholds, key, ...
    assert_trees_equal(a.wiring, c.wiring)
    # the brain did change in those steps (a trivial state would pass the above)
    newborn = Session.new(config, seed=3).state
    assert not np.array_equal(a.state.neurons.v, newborn.neurons.v)
    r1 = checkpoint.restore(os.path.join(one, "checkpoints", "1000"))
    r2 = checkpoint.restore(os.path.join(two, "checkpoints", "1000"))
    assert r1.meta["arrays"] == r2.meta["arrays"]


def test_coba_checkpoint_nests_its_sub_states_and_restores_them(tmp_path):
    config = preset_config("coba", n_neurons=1000)
    s = Session.open(config, seed=0, workdir=str(tmp_path))
    s.run(200)
    path = s.save(wait=True)
    saved_state, saved_wiring = host_copy(s.state), host_copy(s.wiring)
    s.close(save=False)
    r = checkpoint.restore(path)
    assert r.meta["format"] == "jbrain-checkpoint/2"
    names = set(r.meta["arrays"])
    for q in ("EE", "EI", "IE", "II"):
        assert {f"state.projections.{q}.{k}" for k in ("weights", "x_pre", "y_post", "g")} <= names
        assert f"wiring.projections.{q}.pre" in names
    # bernoulli wiring has no fixed fan-out, so no out-table: absent, restored as None
    assert not [n for n in names if n.endswith("out_post")]
    assert all(w.out_post is None for w in r.wiring.projections.values())
    assert_trees_equal(r.state, saved_state)
    assert_trees_equal(r.wiring, saved_wiring)
    assert Circuit.from_dict(r.meta["circuit"]) == config.circuit()


def test_restore_gives_the_saved_state_config_seed_and_keeps_the_newest(template):
    workdir, states = template
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["400", "600"]  # --keep=2
    r = checkpoint.restore(os.path.join(workdir, "checkpoints", "600"))
    assert r.step == 600 and r.config == CONFIG and r.seed == 0
    assert_trees_equal(r.state, states[600])
    assert_trees_equal(r.wiring, Session.new(CONFIG, seed=0).wiring)
    meta = r.meta
    assert meta["format"] == "jbrain-checkpoint/2" and meta["jbrain_version"]
    assert meta["rate"] == pytest.approx(float(states[600].homeostasis.rate))
    assert BrainConfig.from_dict(meta["config"]) == CONFIG
    assert Circuit.from_dict(meta["circuit"]) == CONFIG.circuit()
    assert set(meta["arrays"]) == SEED_ARRAYS
    # the plan (how this device ran it) is not part of a checkpoint
    assert not {"propagation", "stdp", "spike_buffer", "unroll", "backend"} & set(meta["config"])


def test_save_twice_at_one_step_is_one_checkpoint(tmp_path):
    s = Session.open(CONFIG, seed=0, workdir=str(tmp_path))
    s.run(200)
    p = s.save(wait=True)
    assert s.save(wait=True) == p == s.close() == str(tmp_path / "checkpoints" / "200")
    assert os.listdir(tmp_path / "checkpoints") == ["200"] and s.warnings == []


def test_a_restored_brain_runs_the_programs_its_newborn_compiled(tmp_path):
    """A brain saved and restored in one process lowers (and compiles) no
    burst again: jit keys a program on whether its arguments are committed
    to a device, a restore's arrays are, and a newborn's are too once in a
    Session."""
    from jax._src import dispatch

    lowered = []  # {"fun_name": ...} of every program lowered

    def listen(event: str, _secs: float, **kw) -> None:
        if event == dispatch.JAXPR_TO_MLIR_MODULE_EVENT:
            lowered.append(kw)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        first = Session.open(CONFIG, seed=0, workdir=str(tmp_path))
        first.run(100)
        first.close()
        assert first.state.neurons.v.committed
        assert any("burst" in t["fun_name"] for t in lowered)
        before = len(lowered)
        again = Session.open(CONFIG, seed=0, workdir=str(tmp_path))
        assert again.step == 100 and again.state.neurons.v.committed
        again.run(100)
        again.close(save=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert not [t for t in lowered[before:] if "burst" in t["fun_name"]], lowered[before:]


def test_flags_passed_override_the_checkpoint_the_rest_come_from_it(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    other = BrainConfig(n_neurons=200_000, a_plus=0.002, noise_sd=0.2, plasticity=False)
    s = Session.open(other, seed=7, workdir=workdir, explicit={"a_plus", "plasticity", "seed"})
    assert s.step == 600 and s.seed == 0
    assert s.config == CONFIG.replace(a_plus=0.002, plasticity=False)  # n_neurons, noise_sd: checkpoint's
    assert s.circuit == s.config.circuit() and s.circuit.projections[0].plasticity is None
    assert "flags applied over the checkpoint: --a_plus=0.002, --plasticity=False" in s.notes[0]
    assert s.warnings == [
        "--seed=7 is ignored: the restored brain was born with seed 0 (pass --fresh for a new brain)"
    ]
    s.close(save=False)


def test_fresh_starts_a_new_brain_and_keeps_the_old_checkpoints_aside(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    s = Session.open(CONFIG, seed=1, workdir=workdir, fresh=True)
    assert s.step == 0 and os.listdir(os.path.join(workdir, "checkpoints")) == []
    (old,) = [d for d in os.listdir(workdir) if d.startswith("checkpoints.old-")]
    assert sorted(os.listdir(os.path.join(workdir, old))) == ["400", "600"]
    assert s.notes == [f"--fresh: a new brain; the previous checkpoints were moved to {workdir}/{old}"]
    s.run(200)
    assert s.close() == os.path.join(workdir, "checkpoints", "200")


# -------------------------------------------------------------- autosave ---


def test_autosave_policy_saves_once_per_period_and_defers_while_busy():
    a = checkpoint.Autosave(200, 0)
    assert [a.due(s, busy=False) for s in (100, 200, 300, 400, 500)] == [False, True, False, True, False]
    b = checkpoint.Autosave(200, 0)
    assert not b.due(200, busy=True)  # a save still being written: skipped, not queued twice
    assert b.due(300, busy=False) and not b.due(350, busy=False) and b.due(400, busy=False)
    restored = checkpoint.Autosave(200, 450)  # a brain restored at step 450
    assert not restored.due(550, busy=False) and restored.due(600, busy=False)
    off = checkpoint.Autosave(0, 0)
    assert not any(off.due(s, busy=False) for s in (1, 200, 10**9))
    for bad in (-5, True, 2.5):
        with pytest.raises(ValueError) as e:
            checkpoint.Autosave(bad, 0)
        assert str(e.value) == f"--save_every={bad} must be >= 0 steps (0: save only on exit and /save)"


def test_autosave_waits_for_a_slow_disk_instead_of_blocking_the_loop(tmp_path, monkeypatch):
    s = Session.open(CONFIG, seed=0, workdir=str(tmp_path), save_every=200)
    monkeypatch.setattr(checkpoint.Checkpointer, "busy", property(lambda self: True))
    s.run(200)  # due, but the previous save is "still being written"
    assert s.store.pending is None and s.saved_step is None
    monkeypatch.undo()
    s.run(100)  # step 300: the deferred autosave
    assert s.store.pending == 300
    s.run(100)  # step 400: due again
    assert s.close() == str(tmp_path / "checkpoints" / "400")
    assert checkpoint.complete_steps(str(tmp_path / "checkpoints")) == [300, 400]


# ---------------------------------------------------------------- safety ---

_CHILD = textwrap.dedent(
    """
    import sys, time
    from jbrain.config import BrainConfig
    from jbrain.session import Session
    from orbax.checkpoint._src.path import atomicity

    mode, workdir = sys.argv[1], sys.argv[2]
    s = Session.open(BrainConfig(n_neurons=2000, plasticity=True), seed=0, workdir=workdir, keep=3)
    if mode == "finalize":
        s.run(200)
        s.save(wait=True)
        s.run(200)
        rename = atomicity.AtomicRenameTemporaryPath.finalize

        async def stalled(self, *args, **kwargs):
            if self.get_final().name.isdigit():  # the step folder: every file written, not renamed
                print("FINALIZING", flush=True)
                time.sleep(600)
            return await rename(self, *args, **kwargs)

        atomicity.AtomicRenameTemporaryPath.finalize = stalled
        s.save()
        time.sleep(600)
    else:  # save continuously until killed
        print("SAVING", flush=True)
        while True:
            s.run(20)
            s.save()
    """
)


def _child(tmp_path, mode: str) -> tuple[subprocess.Popen, str]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    workdir = str(tmp_path / "wd")
    os.makedirs(workdir)
    p = subprocess.Popen(
        [sys.executable, str(script), mode, workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
        cwd=ROOT,
    )
    return p, workdir


def test_kill_9_while_a_save_is_being_finalized_keeps_the_previous_one(tmp_path):
    assert BrainConfig(n_neurons=2000, plasticity=True) == CONFIG  # the child's brain
    p, workdir = _child(tmp_path, "finalize")
    try:
        assert p.stdout.readline() == b"FINALIZING\n"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    ck = os.path.join(workdir, "checkpoints")
    names = os.listdir(ck)
    assert "200" in names and "400" not in names
    assert any(n.startswith("400.orbax-checkpoint-tmp") for n in names)  # killed mid-save
    log = os.path.join(workdir, "brain_debug.log")
    with open(log) as f:
        lines = f.readlines()
    assert len(lines) == 401  # the child got to step 400
    s = Session.open(CONFIG, seed=0, workdir=workdir)
    assert s.step == 200 and s.warnings == []
    s.run(200)
    assert s.save(wait=True) == os.path.join(ck, "400")
    with open(log) as f:
        assert f.readlines() == lines  # cut back to 200, then the same 200 steps again
    assert checkpoint.restore(os.path.join(ck, "400")).step == 400
    s.close()
    assert not [n for n in os.listdir(ck) if "tmp" in n]  # the stale tmp folder is gone


def test_kill_9_at_a_random_moment_of_continuous_saving_restores_the_latest(tmp_path):
    rng = np.random.default_rng(0)
    p, workdir = _child(tmp_path, "loop")
    ck = os.path.join(workdir, "checkpoints")
    try:
        assert p.stdout.readline() == b"SAVING\n"
        deadline = time.monotonic() + 60
        while len(checkpoint.complete_steps(ck)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    latest = checkpoint.complete_steps(ck)[-1]
    s = Session.open(CONFIG, seed=0, workdir=workdir)
    assert s.step == latest >= 60 and s.warnings == []
    s.close(save=False)


DAMAGE = ["truncate", "flip", "metadata", "missing"]


def _damage(path: str, how: str) -> None:
    if how == "metadata":
        with open(os.path.join(path, "meta", "metadata"), "w") as f:
            f.write('{"format": "jbrain-checkpoint/2", "step": ')
        return
    files = [os.path.join(r, n) for r, _, fs in os.walk(os.path.join(path, "arrays")) for n in fs]
    big = max(files, key=os.path.getsize)
    if how == "missing":
        os.remove(big)
    elif how == "truncate":
        with open(big, "r+b") as f:
            f.truncate(os.path.getsize(big) // 2)
    else:
        with open(big, "r+b") as f:
            f.seek(os.path.getsize(big) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_checkpoint_is_skipped_with_a_warning_and_the_previous_restored(template, tmp_path, how):
    workdir = copy_of(template, tmp_path)
    bad = os.path.join(workdir, "checkpoints", "600")
    _damage(bad, how)
    s = Session.open(CONFIG, seed=0, workdir=workdir, keep=2)
    assert s.step == 400
    assert_trees_equal(s.state, template[1][400])
    warning, restored = s.warnings
    assert re.fullmatch(
        rf"checkpoint {re.escape(bad)} is damaged \(.+\): skipped and moved to {re.escape(bad)}\.corrupt",
        warning,
    )
    assert "\n" not in warning and restored == "restored the previous checkpoint, step 400"
    # the damaged one is kept aside, the brain continues and saves step 600 again
    s.run(200)
    assert s.close() == bad
    assert sorted(os.listdir(os.path.dirname(bad))) == ["400", "600", "600.corrupt"]
    assert checkpoint.restore(bad).step == 600


def test_damage_reasons_name_the_problem(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    ck = os.path.join(workdir, "checkpoints")
    _damage(os.path.join(ck, "600"), "metadata")
    with pytest.raises(checkpoint.DamagedCheckpoint, match=r"^its metadata is unreadable \(.+\)$"):
        checkpoint.restore(os.path.join(ck, "600"))
    os.rename(os.path.join(ck, "400"), os.path.join(ck, "800"))  # a folder whose name lies
    with pytest.raises(checkpoint.DamagedCheckpoint) as e:
        checkpoint.restore(os.path.join(ck, "800"))
    assert str(e.value) == "its metadata says step 400"


def test_reads_abandoned_by_a_failed_restore_print_nothing_later(tmp_path):
    """When one array of a damaged checkpoint fails, orbax closes its event
    loop with the sibling reads in flight; each then wakes the closed loop
    from tensorstore's thread, a RuntimeError that would print a traceback
    under a `jbrain run` that should print one line. This stages
    exactly that (30 reads, the loop closed under them); an unrelated
    unraisable still gets through."""
    script = textwrap.dedent(f"""
        import asyncio, logging, sys, time
        import tensorstore as ts
        from jbrain import checkpoint
        checkpoint._drop_abandoned_orbax_reads()
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # "Task was destroyed": not ours
        spec = {{"driver": "zarr", "kvstore": "file://{tmp_path}/a",
                "metadata": {{"shape": [3_000_000], "dtype": "<f4", "chunks": [10_000]}}}}
        arr = ts.open(spec, create=True).result()
        arr.write(1.0).result()

        async def fail_among_reads():
            reads = [arr[i * 100_000:(i + 1) * 100_000].read() for i in range(30)]
            tasks = [asyncio.ensure_future(_wait(r)) for r in reads]
            await asyncio.sleep(0)
            raise ValueError("one array failed")

        async def _wait(read):
            return await read

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(fail_among_reads())
        except ValueError:
            pass
        loop.close()
        time.sleep(1.0)  # the reads finish and wake the closed loop

        class Unrelated:
            def __del__(self):
                raise KeyError("unrelated")

        Unrelated()
        print("done")
    """)
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, cwd=ROOT, env=cli_env(), timeout=120
    )
    assert p.returncode == 0 and p.stdout == b"done\n", p.stderr.decode()
    err = p.stderr.decode()
    assert "Event loop is closed" not in err
    assert err.startswith("Exception ignored in: <function") and "KeyError: 'unrelated'" in err, err


def test_every_checkpoint_damaged_starts_a_new_brain_with_warnings(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    for step in ("400", "600"):
        _damage(os.path.join(workdir, "checkpoints", step), "flip")
    s = Session.open(CONFIG, seed=0, workdir=workdir)
    assert s.step == 0 and len(s.warnings) == 3
    assert [w.split(" is damaged ")[0] for w in s.warnings[:2]] == [
        f"checkpoint {workdir}/checkpoints/600",
        f"checkpoint {workdir}/checkpoints/400",
    ]
    assert s.warnings[-1] == "no checkpoint could be restored: starting a new brain"
    s.close(save=False)


def test_a_different_shape_is_one_error_naming_the_fields_and_nothing_changes(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    _damage(os.path.join(workdir, "checkpoints", "600"), "flip")  # even a damaged one stays put
    before = tree_snapshot(workdir)
    other = BrainConfig(n_neurons=2500, fan_in=16, sheet=(50, 50))
    with pytest.raises(ValueError) as e:
        Session.open(other, seed=0, workdir=workdir, explicit={"n_neurons", "fan_in", "sheet", "w_max"})
    assert str(e.value) == (
        "--n_neurons=2500, --fan_in=16, --sheet=50x50 conflicts with the checkpoint's n_neurons=2000, "
        f"fan_in=32, sheet='' in {workdir}/checkpoints: drop the flag (or, after a flagfile, pass "
        "--n_neurons=2000 --fan_in=32 --sheet='') to continue that brain, or pass --fresh to start a "
        "new one (the old checkpoints are kept aside)"
    )
    assert tree_snapshot(workdir) == before
    # the same through the launcher: the ei preset over a seed brain is one
    # line on stderr, exit 2, nothing written
    p = jbrain_cli("run", "--flagfile=experiments/configs/ei.flags", f"--workdir={workdir}", "--steps=200")
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.decode().splitlines() == [
        "jbrain run: error: --preset=ei, --n_neurons=200000 conflicts with the checkpoint's preset=seed, "
        f"n_neurons=2000 in {workdir}/checkpoints: drop the flag (or, after a flagfile, pass "
        "--preset=seed --n_neurons=2000) to continue that brain, or pass --fresh to start a new one "
        "(the old checkpoints are kept aside)"
    ]
    assert tree_snapshot(workdir) == before


_ALTERNATIVES = {
    "preset": "ei", "sheet": (40, 50), "connectivity": "bernoulli", "v_init": "normal", "profile": "gaussian",
    "local_rule": "local",
}  # fmt: skip


def _other_value(name: str, value):
    if name in _ALTERNATIVES:
        return {name: _ALTERNATIVES[name]}
    if name == "synapse":  # a conductance synapse needs reversal potentials around the threshold
        return {"synapse": "exp", "e_exc": 2.0, "e_inh": -1.0}
    if name == "w_init":
        return {"w_init": "constant"}
    if isinstance(value, bool):
        return {name: not value}
    if isinstance(value, int):
        return {name: value + 1}
    return {name: value * 1.5 + 0.01}


@pytest.mark.parametrize("preset", ["seed", "ei"])
def test_every_field_that_changes_the_arrays_is_a_shape_field(preset):
    """A flag applied over a checkpoint must not change an array's shape or
    dtype (the restore would fail or mislead): any field that does is in
    SHAPE_FIELDS, so Session.open refuses it with the error above."""
    base = small(preset=preset)
    reference = checkpoint.abstract_brain(base)
    tried = 0
    for f in dataclasses.fields(BrainConfig):
        try:
            other = base.replace(**_other_value(f.name, getattr(base, f.name)))
            other.circuit()
        except ValueError:  # e.g. --sheet on ei, bernoulli on the seed
            continue
        tried += 1
        changed = checkpoint.abstract_brain(other)
        same = jax.tree.structure(changed) == jax.tree.structure(reference)
        if not same or jax.tree.leaves(changed) != jax.tree.leaves(reference):
            assert f.name in SHAPE_FIELDS, f"--{f.name} changes the brain's arrays"
    # e.g. --teach, --reward, --working_memory: cortex only
    assert tried >= len(dataclasses.fields(BrainConfig)) - 4


def test_a_full_disk_warns_keeps_the_brain_running_and_the_old_checkpoints(template, tmp_path):
    # The kernel refuses writes past RLIMIT_FSIZE (EFBIG) even for root: a
    # real failing write, in orbax's background thread.
    workdir = copy_of(template, tmp_path)
    ck = os.path.join(workdir, "checkpoints")
    s = Session.open(CONFIG, seed=0, workdir=workdir, keep=2)
    before = tree_snapshot(ck)
    s.run(200)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, limit[1]))
    try:
        assert s.save(wait=True) is None
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    (warning,) = s.warnings
    assert warning == (
        "checkpoint not saved (step 800: File too large (errno 27)); the brain keeps running and "
        "earlier checkpoints are untouched: free disk space or fix WORKDIR/checkpoints"
    )
    assert tree_snapshot(ck) == before  # 400 and 600 untouched, no tmp folder left
    s.warnings.clear()
    s.run(200)  # still alive
    assert s.close() == os.path.join(ck, "1000") and s.warnings == []
    assert sorted(os.listdir(ck)) == ["1000", "600"]


def test_an_unwritable_checkpoint_folder_warns_and_the_brain_keeps_running(template, tmp_path):
    # Root ignores permissions, so the folder is replaced by a file: mkdir fails.
    workdir = copy_of(template, tmp_path)
    ck = os.path.join(workdir, "checkpoints")
    s = Session.open(CONFIG, seed=0, workdir=workdir, save_every=200)
    os.rename(ck, ck + ".away")
    open(ck, "w").close()
    s.run(200)  # the autosave fails
    (warning,) = s.warnings
    assert warning.startswith("checkpoint not saved (step 800: ") and "\n" not in warning
    assert warning.endswith("free disk space or fix WORKDIR/checkpoints")
    s.warnings.clear()
    s.run(200)
    # the folder comes back only after any save in flight has failed: Orbax's
    # thread lists it, and a folder missing under it is another failure
    s.store.wait()
    os.remove(ck)
    os.rename(ck + ".away", ck)
    assert sorted(os.listdir(ck)) == ["400", "600"]
    assert s.close() == os.path.join(ck, "1000")


def test_a_file_where_the_checkpoints_folder_should_be_is_a_clear_error(tmp_path):
    open(tmp_path / "checkpoints", "w").close()
    with pytest.raises(ValueError) as e:
        Session.open(CONFIG, seed=0, workdir=str(tmp_path))
    assert str(e.value) == (
        f"{tmp_path}/checkpoints exists but is not a folder: move it away, or pass another --workdir"
    )


def test_bad_checkpoint_flags_are_errors(tmp_path):
    with pytest.raises(
        ValueError, match=r"^--keep=0 must be >= 1 \(checkpoints kept in WORKDIR/checkpoints\)$"
    ):
        Session.open(CONFIG, seed=0, workdir=str(tmp_path), keep=0)
    with pytest.raises(ValueError, match=r"^--save_every=-5 must be >= 0 steps"):
        Session.open(CONFIG, seed=0, workdir=str(tmp_path), save_every=-5)
    assert os.listdir(tmp_path) == []  # refused before anything was made


# ---------------------------------------------------- another process ---

_READER = textwrap.dedent(
    """
    import hashlib, json, sys
    import jax, numpy as np
    sys.path.insert(0, "tests")
    from conftest import leaves
    from jbrain import checkpoint

    cpu = jax.devices("cpu")[0]
    r = checkpoint.restore(sys.argv[1], device=cpu)
    assert all(x.devices() == {cpu} for x in jax.tree.leaves((r.state, r.wiring)))
    digest = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in leaves(r.state).items()}
    print(json.dumps({"step": r.step, "backend": jax.default_backend(), "state": digest}))
    """
)


def test_a_checkpoint_written_by_jbrain_run_restores_on_cpu_in_a_fresh_process(tmp_path):
    workdir = str(tmp_path / "wd")
    p = jbrain_cli("run", "--n_neurons=2000", "--plasticity", "--steps=400", f"--workdir={workdir}")
    assert p.returncode == 0, p.stderr
    q = subprocess.run(
        [sys.executable, "-c", _READER, os.path.join(workdir, "checkpoints", "400")],
        capture_output=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert q.returncode == 0, q.stderr
    got = json.loads(q.stdout)
    s = Session.new(CONFIG, seed=0)  # the same brain, stepped here
    s.run(400)
    want = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in leaves(s.state).items()}
    assert got == {"step": 400, "backend": "cpu", "state": want}


def test_orbax_is_imported_by_the_first_save_not_by_opening_a_store(tmp_path):
    """Starting a brain with a workdir (as `jbrain chat` does) does not
    import orbax (a good part of a chat's start-up); its first save does."""
    script = textwrap.dedent(
        f"""
        import sys
        from jbrain.config import BrainConfig
        from jbrain.session import Session
        s = Session.open(BrainConfig(n_neurons=2000), seed=0, workdir={str(tmp_path)!r})
        s.run(10)
        print("orbax" in " ".join(sys.modules))
        s.save(wait=True)
        print("orbax" in " ".join(sys.modules))
        s.close(save=False)
        """
    )
    run = [sys.executable, "-c", script]
    out = subprocess.run(run, capture_output=True, text=True, env=cli_env(), cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]


def test_a_brain_in_a_relative_workdir_restores(tmp_path, monkeypatch):
    """`jbrain chat`'s default workdir is relative (runs/default): its
    checkpoint must restore, not be set aside as damaged (orbax reads
    absolute paths only)."""
    monkeypatch.chdir(tmp_path)
    first = Session.open(small(), seed=0, workdir=os.path.join("runs", "rel"))
    first.run(20)
    first.close()
    again = Session.open(small(), seed=0, workdir=os.path.join("runs", "rel"))
    assert again.step == 20 and again.warnings == [], again.warnings
    assert_trees_equal(again.state, first.state)
    again.close(save=False)
    assert sorted(os.listdir(tmp_path / "runs" / "rel" / "checkpoints")) == ["20"]
