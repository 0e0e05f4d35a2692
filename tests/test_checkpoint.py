"""Checkpoints (jbrain/checkpoint.py, Session.open/save/close): exact resume,
atomic and verified saves, damaged and mismatched checkpoints, disk errors,
CPU restore in another process, `jbrain inspect`, chat resume."""

from __future__ import annotations

import dataclasses
import hashlib
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

from jbrain import checkpoint
from jbrain.config import BrainConfig
from jbrain.session import Session

# orbax leaves un-awaited coroutines behind when it fails to read a damaged
# checkpoint or to write to a full disk; pytest reports them at GC time.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = BrainConfig(n_neurons=2000, plasticity=True)


def env() -> dict[str, str]:
    e = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    e.pop("OUT", None)
    return e


def jbrain_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jbrain.cli", *args],
        input=stdin,
        capture_output=True,
        env=env(),
        cwd=ROOT,
        timeout=120,
    )


def leaves(state) -> dict[str, np.ndarray]:
    """Host copies of every field of a BrainState (or Wiring)."""
    return {f.name: np.asarray(jax.device_get(getattr(state, f.name))) for f in dataclasses.fields(state)}


def digest(state) -> str:
    h = hashlib.sha256()
    for name, a in sorted(leaves(state).items()):
        h.update(name.encode() + str(a.dtype).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def assert_same_state(a, b) -> None:
    la, lb = leaves(a), leaves(b)
    for name in la:
        assert la[name].dtype == lb[name].dtype and np.array_equal(la[name], lb[name]), name


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
        states[s.step] = leaves(s.state)
    assert s.close() == os.path.join(workdir, "checkpoints", "600")
    assert s.warnings == []
    return workdir, states


def copy_of(template, tmp_path) -> str:
    dst = str(tmp_path / "wd")
    shutil.copytree(template[0], dst)
    return dst


# ------------------------------------------------------------- exactness ---


def test_1000_steps_exit_restore_1000_more_equals_2000_steps(tmp_path):
    one = str(tmp_path / "one")
    two = str(tmp_path / "two")
    a = Session.open(CONFIG, seed=3, workdir=one, save_every=600)
    for _ in range(10):
        a.run(200)
    a.close()

    b = Session.open(CONFIG, seed=3, workdir=two, save_every=600)
    for _ in range(5):
        b.run(200)
    assert b.close() == os.path.join(two, "checkpoints", "1000")
    c = Session.open(CONFIG, seed=3, workdir=two, save_every=600)
    assert c.step == 1000 and c.notes[0].startswith("restored step 1000 from ")
    for _ in range(5):
        c.run(200)
    c.close()

    log_one = (tmp_path / "one" / "brain_debug.log").read_bytes()
    log_two = (tmp_path / "two" / "brain_debug.log").read_bytes()
    assert log_one == log_two and log_one.count(b"\n") == 2001  # byte-identical lines
    assert_same_state(a.state, c.state)  # weights, traces, thresholds, key, step, ...
    assert not np.array_equal(
        leaves(a.state)["weights"], leaves(Session.new(CONFIG, seed=3).state)["weights"]
    )
    # the same autosaves (600, 1200, 1800) and last checkpoints, bit for bit
    r1 = checkpoint.restore(os.path.join(one, "checkpoints", "2000"))
    r2 = checkpoint.restore(os.path.join(two, "checkpoints", "2000"))
    assert r1.meta["arrays"] == r2.meta["arrays"]
    # autosaves (every 600 steps, deferred by a burst while the previous one
    # is still being written, so which ones exist depends on timing) plus the
    # exit save; the newest --keep=3 stay
    kept = sorted(int(x) for x in os.listdir(os.path.join(one, "checkpoints")))
    assert kept[-1] == 2000 and len(kept) <= 3 and all(x % 200 == 0 and x >= 600 for x in kept)


def test_restore_gives_the_saved_state_config_seed_and_keeps_the_newest(template):
    workdir, states = template
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["400", "600"]  # --keep=2
    r = checkpoint.restore(os.path.join(workdir, "checkpoints", "600"))
    assert r.step == 600 and r.config == CONFIG and r.seed == 0
    for name, a in leaves(r.state).items():
        assert np.array_equal(a, states[600][name]), name
    assert_same_state(r.wiring, Session.new(CONFIG, seed=0).wiring)
    meta = r.meta
    assert meta["jbrain_version"] and meta["rate"] == pytest.approx(float(states[600]["rate"]))
    assert set(meta["arrays"]) == {f"state.{k}" for k in states[600]} | {"wiring.pre", "wiring.out_post"}


def test_save_twice_at_one_step_is_one_checkpoint(tmp_path):
    s = Session.open(CONFIG, seed=0, workdir=str(tmp_path))
    s.run(200)
    p = s.save(wait=True)
    assert s.save(wait=True) == p == s.close() == str(tmp_path / "checkpoints" / "200")
    assert os.listdir(tmp_path / "checkpoints") == ["200"] and s.warnings == []


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


def test_flags_passed_override_the_checkpoint_the_rest_come_from_it(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    other = BrainConfig(n_neurons=200_000, a_plus=0.002, noise_sd=0.2, plasticity=False)
    s = Session.open(other, seed=7, workdir=workdir, explicit={"a_plus", "plasticity", "seed"})
    assert s.step == 600 and s.seed == 0
    assert s.config == CONFIG.replace(a_plus=0.002, plasticity=False)  # n_neurons, noise_sd: checkpoint's
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
    assert old in s.notes[0]
    s.run(200)
    assert s.close() == os.path.join(workdir, "checkpoints", "200")


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
        env=env(),
        cwd=ROOT,
    )
    return p, workdir


def test_kill_9_while_a_save_is_being_finalized_keeps_the_previous_one(tmp_path):
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
    assert not [n for n in os.listdir(ck) if "tmp" in n]


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
            f.write('{"format": "jbrain-checkpoint/1", "step": ')
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
    for name, a in leaves(s.state).items():
        assert np.array_equal(a, template[1][400][name]), name
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


def test_every_checkpoint_damaged_starts_a_new_brain_with_warnings(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    for step in ("400", "600"):
        _damage(os.path.join(workdir, "checkpoints", step), "flip")
    s = Session.open(CONFIG, seed=0, workdir=workdir)
    assert s.step == 0 and len(s.warnings) == 3
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
        f"fan_in=32, sheet='' in {workdir}/checkpoints: drop the flag to continue that brain, or pass "
        "--fresh to start a new one (the old checkpoints are kept aside)"
    )
    assert tree_snapshot(workdir) == before
    # the same through the launcher: one line on stderr, exit 2, nothing written
    p = jbrain_cli("run", "--n_neurons=2500", f"--workdir={workdir}", "--steps=200")
    assert p.returncode == 2 and p.stdout == b""
    assert p.stderr.decode().splitlines() == [
        "jbrain run: error: --n_neurons=2500 conflicts with the checkpoint's n_neurons=2000 in "
        f"{workdir}/checkpoints: drop the flag to continue that brain, or pass --fresh to start a new one "
        "(the old checkpoints are kept aside)"
    ]
    assert tree_snapshot(workdir) == before


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
    s.warnings.clear()
    s.run(200)
    os.remove(ck)
    os.rename(ck + ".away", ck)
    assert sorted(os.listdir(ck)) == ["400", "600"]
    assert s.close() == os.path.join(ck, "1000")


def test_a_file_where_the_checkpoints_folder_should_be_is_a_clear_error(tmp_path):
    open(tmp_path / "checkpoints", "w").close()
    with pytest.raises(ValueError, match=r"checkpoints exists but is not a folder: move it away"):
        Session.open(CONFIG, seed=0, workdir=str(tmp_path))


def test_bad_checkpoint_flags_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"--keep=0 must be >= 1"):
        Session.open(CONFIG, seed=0, workdir=str(tmp_path), keep=0)
    with pytest.raises(ValueError, match=r"--save_every=-5 must be >= 0"):
        Session.open(CONFIG, seed=0, workdir=str(tmp_path), save_every=-5)


_READER = textwrap.dedent(
    """
    import hashlib, sys
    import jax, numpy as np
    from jbrain import checkpoint

    cpu = jax.devices("cpu")[0]
    r = checkpoint.restore(sys.argv[1], device=cpu)
    h = hashlib.sha256()
    for name in sorted(r.state.__dataclass_fields__):
        a = np.asarray(getattr(r.state, name))
        assert getattr(r.state, name).devices() == {cpu}, name
        h.update(name.encode() + str(a.dtype).encode() + np.ascontiguousarray(a).tobytes())
    print(r.step, h.hexdigest(), jax.default_backend())
    """
)


def test_a_checkpoint_written_by_another_process_restores_on_cpu_in_a_fresh_one(tmp_path):
    workdir = str(tmp_path / "wd")
    p = jbrain_cli("run", "--n_neurons=2000", "--plasticity", "--steps=400", f"--workdir={workdir}")
    assert p.returncode == 0, p.stderr
    reader = tmp_path / "reader.py"
    reader.write_text(_READER)
    q = subprocess.run(
        [sys.executable, str(reader), os.path.join(workdir, "checkpoints", "400")],
        capture_output=True,
        env=env(),
        cwd=ROOT,
        timeout=120,
    )
    assert q.returncode == 0, q.stderr
    s = Session.new(CONFIG, seed=0)  # the same brain, stepped here
    s.run(400)
    assert q.stdout.decode().split() == ["400", digest(s.state), "cpu"]


# --------------------------------------------------------------- inspect ---


def test_inspect_lists_the_checkpoints_and_prints_the_config(template, tmp_path):
    workdir = copy_of(template, tmp_path)
    ck = os.path.join(workdir, "checkpoints")
    shutil.copytree(os.path.join(ck, "600"), os.path.join(ck, "600.corrupt"))
    _damage(os.path.join(ck, "600.corrupt"), "metadata")
    os.makedirs(os.path.join(ck, "800.orbax-checkpoint-tmp-123"))
    p = jbrain_cli("inspect", f"--workdir={workdir}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0] == f"checkpoints in {ck}:"
    assert re.fullmatch(r"\s+step\s+saved \(UTC\)\s+size\s+rate", lines[1])
    row = r"\s+{step}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+\.\d kB\s+0\.\d{{4}}"
    assert re.fullmatch(row.format(step=400), lines[2])
    assert re.fullmatch(row.format(step=600), lines[3])
    assert re.fullmatch(
        r"\s+600\s+-\s+\d+\.\d kB\s+-\s+set aside: its metadata is unreadable .*\(600\.corrupt\)", lines[4]
    )
    assert re.fullmatch(r"\s+800\s+-\s+0 B\s+-\s+incomplete: an interrupted save", lines[5])
    assert lines[6] == "config of step 600 (jbrain 0.1.0, seed 0, 0 chat messages):"
    assert ' "n_neurons": 2000,' in lines and ' "plasticity": true,' in lines
    assert p.stderr == b""
    empty = jbrain_cli("inspect", f"--workdir={tmp_path}")
    assert empty.returncode == 0 and empty.stdout.decode() == f"no checkpoints in {tmp_path}/checkpoints\n"
    missing = jbrain_cli("inspect", f"--workdir={tmp_path}/nope")
    assert missing.returncode == 2
    assert missing.stderr.decode() == (
        f"jbrain inspect: error: --workdir='{tmp_path}/nope' is not a folder: pass the workdir of a brain\n"
    )


# ------------------------------------------------------------- launchers ---


def test_a_restored_chat_answers_as_the_chat_that_never_stopped(tmp_path):
    chat = ["chat", "--n_neurons=2000", "--live=false"]
    whole = jbrain_cli(*chat, f"--workdir={tmp_path / 'a'}", stdin=b"hello\ncat\ndog\nwhy?\n")
    first = jbrain_cli(*chat, f"--workdir={tmp_path / 'b'}", stdin=b"hello\ncat\n/save\n/quit\n")
    second = jbrain_cli(*chat, f"--workdir={tmp_path / 'b'}", stdin=b"dog\nwhy?\n/stats\n")
    for p in (whole, first, second):
        assert p.returncode == 0, p.stderr
    replies = whole.stdout.decode().splitlines()
    assert len(replies) == 4 and len(set(replies)) > 1
    assert first.stdout.decode().splitlines() == [
        *replies[:2],
        f"saved step 400 to {tmp_path}/b/checkpoints/400",
    ]
    assert second.stdout.decode().splitlines()[:2] == replies[2:]
    assert re.fullmatch(
        r"step 800, firing rate 0\.\d{4}, mean threshold \d\.\d{4}, messages 4",
        second.stdout.decode().splitlines()[2],
    )
    err = second.stderr.decode()
    assert f"jbrain chat: restored step 400 from {tmp_path}/b/checkpoints/400 (saved " in err
    assert err.splitlines()[-1].endswith(f", checkpoint {tmp_path}/b/checkpoints/800")
    assert (tmp_path / "a" / "brain_debug.log").read_bytes() == (
        tmp_path / "b" / "brain_debug.log"
    ).read_bytes()


def test_run_saves_on_ctrl_c_and_the_next_run_continues(tmp_path):
    workdir = str(tmp_path)
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jbrain.cli",
            "run",
            "--n_neurons=2000",
            "--steps=0",
            "--burst=100",
            "--save_every=0",
            f"--workdir={workdir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=ROOT,
    )
    log = os.path.join(workdir, "brain_debug.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not os.path.exists(log) or os.path.getsize(log) < 20_000):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    m = re.fullmatch(rb"jbrain run interrupted: \d+ steps \(now at step (\d+)\) .*, checkpoint (\S+)\n", out)
    assert m, out
    step = int(m.group(1))
    assert m.group(2).decode() == os.path.join(workdir, "checkpoints", str(step)) and step % 100 == 0
    assert checkpoint.complete_steps(os.path.join(workdir, "checkpoints")) == [step]
    q = jbrain_cli("run", "--steps=100", f"--workdir={workdir}")  # --n_neurons from the checkpoint
    assert q.returncode == 0, q.stderr
    assert f"(now at step {step + 100})" in q.stdout.decode()
