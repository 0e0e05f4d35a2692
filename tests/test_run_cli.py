"""`jbrain run`: bad input gets one line naming the flag (exit 2), the log, Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

import pytest

from jbrain.config import BrainConfig, parse_sheet
from jbrain.logs import HEADER, read_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = os.path.join(ROOT, "experiments", "configs", "small.flags")


def jbrain(*args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "jbrain.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kw,
    )


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--n_neurons=0"], "--n_neurons must be a positive integer (got 0)"),
        (["--n_neurons=-5"], "--n_neurons must be a positive integer (got -5)"),
        (["--fan_in=0"], "--fan_in must be a positive integer (got 0)"),
        (["--n_neurons=100", "--fan_in=100"], "--fan_in=100 must be smaller than --n_neurons=100"),
        (["--target_rate=0"], "--target_rate=0.0 must lie strictly between 0 and 1"),
        (["--target_rate=1.5"], "--target_rate=1.5 must lie strictly between 0 and 1"),
        (["--sheet=20x"], "--sheet='20x' is malformed: write it as HxW"),
        (["--n_neurons=20000", "--sheet=100x100"], "--sheet=100x100 has 10000 cells but --n_neurons=20000"),
        (["--n_neurons=abc"], "flag --n_neurons=abc: invalid literal for int()"),
        (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
        (["--steps=-1"], "--steps=-1 must be >= 0"),
    ],
)
def test_bad_flags_one_line_exit_2(flags, needle, tmp_path):
    r = jbrain("run", f"--workdir={tmp_path}", *flags)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("jbrain run: error: ")
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = jbrain("run", f"--workdir={blocker}/sub", "--steps=1")
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"jbrain run: error: --workdir='{blocker}/sub' is not writable")
    assert "pass a folder you can write to" in r.stderr


def test_unknown_command_and_usage():
    r = jbrain("fly")
    assert r.returncode == 2 and "unknown command 'fly'" in r.stderr
    r = jbrain("--help")
    assert r.returncode == 0 and "usage: jbrain" in r.stdout


def test_run_writes_debug_log(tmp_path):
    r = jbrain("run", f"--flagfile={SMALL}", f"--workdir={tmp_path}", "--steps=250", "--burst=100")
    assert r.returncode == 0, r.stderr
    assert "jbrain run done: 250 steps" in r.stdout
    text = (tmp_path / "brain_debug.log").read_text()
    lines = text.splitlines()
    assert lines[0] == HEADER and len(lines) == 251
    cols = read_log(str(tmp_path / "brain_debug.log"))
    assert list(cols["step"][:3]) == [1, 2, 3] and cols["step"][-1] == 250
    assert 0.02 < cols["rate"][-100:].mean() < 0.08
    fields = lines[-1].split("\t")
    assert len(fields) == 5 and fields[2].count(".") == 1 and len(fields[2].split(".")[1]) == 6


def test_ctrl_c_finishes_burst_and_exits_0(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    p = subprocess.Popen(
        [sys.executable, "-m", "jbrain.cli", "run", f"--flagfile={SMALL}", f"--workdir={tmp_path}",
         "--steps=0", "--burst=50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    log = tmp_path / "brain_debug.log"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 101):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "jbrain run interrupted:" in out and "Traceback" not in err
    lines = log.read_text().splitlines()
    assert (len(lines) - 1) % 50 == 0  # whole bursts only
    assert lines[-1].endswith("\n") or lines[-1].count("\t") == 4


def test_config_messages():
    with pytest.raises(
        ValueError, match=r"--propagation='fast' is unknown: use one of auto, event, gather, bcoo"
    ):
        BrainConfig(propagation="fast")
    with pytest.raises(ValueError, match=r"--stdp='lazy' is unknown: use one of auto, eager, deferred"):
        BrainConfig(stdp="lazy")
    with pytest.raises(
        ValueError,
        match=r"--stdp=deferred needs the event path, not --propagation=gather: "
        r"drop --propagation or use --stdp=eager",
    ):
        BrainConfig(stdp="deferred", propagation="gather")
    with pytest.raises(
        ValueError, match=r"--stdp=deferred cannot rescale rows \(--synaptic_scaling\): use --stdp=eager"
    ):
        BrainConfig(stdp="deferred", synaptic_scaling=True)
    with pytest.raises(ValueError, match=r"--spike_buffer=0.0 must be in \(0, 1\]"):
        BrainConfig(spike_buffer=0.0)
    assert parse_sheet("400x500") == (400, 500) and parse_sheet("") is None
    cfg = BrainConfig(n_neurons=1000, sheet=(20, 50), output_channels=8)
    assert BrainConfig.from_dict(cfg.to_dict()) == cfg
    assert hash(cfg) == hash(BrainConfig.from_dict(cfg.to_dict()))
