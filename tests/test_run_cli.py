"""`jbrain run` (experiments/run.py) and the `jbrain` dispatcher: bad input
gets one line naming the flag (exit 2) and writes nothing; the log; Ctrl-C
saves and the next run continues. (README's commands, the COBA preset's
among them, run in test_readme.py.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, cli_env, jbrain_cli

from jbrain import checkpoint
from jbrain.logs import HEADER, read_log

SMALL = "--flagfile=experiments/configs/small.flags"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n_neurons=abc"], "flag --n_neurons=abc: invalid literal for int() with base 10: 'abc'"),
        (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
        (["--steps=-1"], "--steps=-1 must be >= 0 (0 runs until Ctrl-C)"),
        (["extra"], "unexpected argument 'extra': every option is a --flag"),
        (
            ["--flagfile=no/such.flags"],
            "jbrain run: error: Unable to open flagfile: [Errno 2] No such file or directory: "
            "'no/such.flags' (see `jbrain run --help`)",
        ),
        (
            ["--plasticity", "--stdp=deferred", "--propagation=gather"],
            "--stdp=deferred cannot run projection 'W' on the gather path: use --stdp=eager, or drop "
            "--propagation / --synaptic_scaling",
        ),
        (
            ["--backend=pallas_gpu"],
            "--backend=pallas_gpu does not run on this cpu: use --backend=xla or auto",
        ),
    ],
    ids=[
        "absl-type",
        "unknown-flag",
        "launcher-value",
        "positional",
        "no-flagfile",
        "deferred-gather",
        "pallas-on-cpu",
    ],
)
def test_bad_flags_are_one_line_exit_2_and_write_nothing(flags, message, tmp_path):
    p = jbrain_cli("run", "--n_neurons=2000", f"--workdir={tmp_path}", *flags)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert len(err.splitlines()) == 1 and err.startswith("jbrain run: error: "), err
    assert message in err
    assert p.stdout == b"" and os.listdir(tmp_path) == []


def test_an_unwritable_workdir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = jbrain_cli("run", f"--workdir={blocker}/sub", "--steps=1")
    assert p.returncode == 2
    assert p.stderr.decode() == (
        f"jbrain run: error: --workdir='{blocker}/sub' is not writable (Not a directory): "
        "pass a folder you can write to\n"
    )


def test_the_compile_cache_holds_the_programs_and_a_bad_folder_is_one_line(tmp_path):
    # --compile_cache=PATH (experiments/common.py -> jbrain/compile_cache.py): a second
    # start finds the brain's burst there; "off" writes no cache
    cache, work = tmp_path / "cache", tmp_path / "work"
    p = jbrain_cli("run", SMALL, "--steps=20", "--burst=20", f"--workdir={work}", f"--compile_cache={cache}")
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert any(name.startswith("jit__burst_packed-") for name in os.listdir(cache)), os.listdir(cache)
    env_cache = tmp_path / "env_cache"  # "off" turns JAX_COMPILATION_CACHE_DIR's cache off too
    args = ["run", SMALL, "--steps=20", "--burst=20", "--fresh", f"--workdir={work}", "--compile_cache=off"]
    p = subprocess.run(
        [sys.executable, "-m", "experiments.cli", *args], cwd=ROOT, capture_output=True, timeout=300,
        env=dict(cli_env(), JAX_COMPILATION_CACHE_DIR=str(env_cache)),
    )  # fmt: skip
    assert p.returncode == 0 and not (env_cache.exists() and os.listdir(env_cache)), p.stderr.decode()[-2000:]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = jbrain_cli("run", SMALL, "--steps=1", f"--workdir={work}", f"--compile_cache={blocker}/sub")
    assert p.returncode == 2
    assert p.stderr.decode() == (
        f"jbrain run: error: --compile_cache={blocker}/sub cannot be created or written: pass a writable "
        "folder, auto (the default) or off\n"
    )


def test_unknown_command_and_usage():
    usage = (
        "usage: jbrain {run,chat,plot,bench,inspect,stress,eval} [--flags]   "
        "(jbrain COMMAND --help for flags)"
    )
    p = jbrain_cli("fly")
    assert p.returncode == 2 and p.stderr.decode() == f"jbrain: error: unknown command 'fly'; {usage}\n"
    p = jbrain_cli("--help")
    assert p.returncode == 0 and p.stdout.decode() == usage + "\n"
    p = jbrain_cli()
    assert p.returncode == 2 and p.stdout.decode() == usage + "\n"


def test_run_logs_each_step_and_ctrl_c_saves_for_the_next_run(tmp_path):
    workdir = str(tmp_path)
    log = tmp_path / "brain_debug.log"
    p = jbrain_cli("run", SMALL, f"--workdir={workdir}", "--steps=250", "--burst=100")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(
        rf"jbrain run done: 250 steps \(now at step 250\) in .* s, \d+ steps/s, mean rate 0\.\d{{4}}, "
        rf"log {workdir}/brain_debug.log, checkpoint {workdir}/checkpoints/250\n",
        p.stdout.decode(),
    )
    lines = log.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 251
    assert all(re.fullmatch(r"\d+\t\d+(\t-?\d+\.\d{6}){3}", ln) for ln in lines[1:]), lines[-1]
    cols = read_log(str(log))
    np.testing.assert_array_equal(cols["step"], np.arange(1, 251))
    np.testing.assert_allclose(cols["rate"], cols["spikes"] / 20_000, atol=1e-6)
    assert 0.02 < cols["rate"][-100:].mean() < 0.08  # homeostasis near the 5% target

    # --steps=0 runs until Ctrl-C, which finishes the burst, saves and exits 0;
    # no model flag: the brain is the checkpoint's
    q = subprocess.Popen(
        [sys.executable, "-m", "experiments.cli", "run", f"--workdir={workdir}", "--steps=0", "--burst=50",
         "--save_every=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(log.read_text().splitlines()) < 1 + 250 + 100:
        time.sleep(0.1)
    q.send_signal(signal.SIGINT)
    out, err = q.communicate(timeout=120)
    assert q.returncode == 0, err
    assert f"jbrain run: restored step 250 from {workdir}/checkpoints/250 (saved " in err.decode()
    assert "Traceback" not in err.decode()
    m = re.fullmatch(
        r"jbrain run interrupted: (\d+) steps \(now at step (\d+)\) .*, checkpoint (\S+)\n", out.decode()
    )
    assert m, out
    done, step = int(m.group(1)), int(m.group(2))
    assert step == 250 + done and done % 50 == 0 and done >= 100  # whole bursts only
    assert m.group(3) == os.path.join(workdir, "checkpoints", str(step))
    assert checkpoint.complete_steps(os.path.join(workdir, "checkpoints")) == [250, step]
    assert checkpoint.restore(m.group(3)).config.n_neurons == 20_000
    lines = log.read_text().splitlines()
    assert len(lines) == step + 1 and lines[-1].startswith(f"{step}\t")  # flushed


@pytest.mark.parametrize("given, expected", [(None, "false"), ("true", "true")])
def test_the_launchers_let_the_gpu_memory_pool_grow_unless_told(given, expected):
    # experiments/__init__.py: no 75% reservation at start (it cost ~1.1 s of a
    # GPU start); a value in the environment is kept
    env = {k: v for k, v in os.environ.items() if k != "XLA_PYTHON_CLIENT_PREALLOCATE"}
    if given is not None:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = given
    code = "import os, experiments.cli; print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'])"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True)
    assert p.stdout.decode().strip() == expected
