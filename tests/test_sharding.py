"""The brain sharded over several devices (jbrain/shard.py): bit for bit
the single-device run (2 and 4 CPU devices against 1, for the seed, cortex
and coba presets with plasticity on; both spike exchanges), checkpoints across device counts, a
two-process `jbrain run --coordinator`, and the flags' one-line errors.

The device count is fixed when jax starts, so the sharded runs happen in
subprocesses (tests/sharded.py) with XLA_FLAGS=--xla_force_host_platform_device_count;
this process keeps its one device."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_trees_equal, cli_env, jbrain_cli, once_per_run

SCRIPT = os.path.join(ROOT, "tests", "sharded.py")


def _python(*args: str, devices: int) -> subprocess.Popen:
    env = {**cli_env(), "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _finish(p: subprocess.Popen, timeout: float = 300) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err.decode()[-4000:]
    return out.decode()


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """tests/sharded.py's results on 4 CPU devices (one subprocess)."""

    def script() -> dict:
        workdir = tmp_path_factory.mktemp("sharded")
        return json.loads(_finish(_python("presets", "500", str(workdir), devices=4)).splitlines()[-1])

    return once_per_run("four_devices", script)


@pytest.mark.parametrize("preset", ["seed", "cortex", "coba"])
def test_2_and_4_devices_equal_1_bit_for_bit_after_500_steps(four_devices, preset):
    got = four_devices["presets"][preset]
    # every state leaf (spikes, voltages, thresholds, weights, traces, ...) and the integer metrics
    assert got["2"] == [] and got.get("4", []) == [], got
    assert ("4" in got) == (preset == "seed")  # 4 shards: the seed's
    assert got["spikes"] > 0


@pytest.mark.parametrize("preset", ["seed", "cortex"])
def test_the_spike_list_exchange_equals_the_words_exchange_bit_for_bit(four_devices, preset):
    # 2 devices, each shard's spiking ids all-gathered (brain.exchange_list) instead of packed words
    assert four_devices["presets"][preset]["2 exchange=list"] == []


def test_an_overflowing_exchange_list_reruns_the_burst_exactly(four_devices):
    seed = four_devices["presets"]["seed"]
    assert seed["2 exchange=list spike_buffer=0.01"] == []
    grown, warnings = seed["overflow"]
    assert grown > 0.01 and len(warnings) == 1, warnings
    assert warnings[0].startswith(
        "a shard's spikes in one step outgrew the spike-list exchange (11 ids a shard)"
    )


def test_the_one_device_reference_ran_its_own_plan(four_devices):
    # the sharded plan (xla, gather, eager STDP) matched today's plan: the event path where it applies
    assert four_devices["presets"]["seed"]["plan_1"][1] == ["event"]
    assert "event" in four_devices["presets"]["cortex"]["plan_1"][1]


@pytest.mark.parametrize("shapes", ["4->1", "4->2", "1->4"])
def test_a_checkpoint_restores_on_another_device_count_and_continues(four_devices, shapes):
    assert four_devices["checkpoints"][shapes] == []


def test_a_brain_born_partitioned_equals_one_born_whole(four_devices):
    """bench_shard's birth over 4 devices, each computing its own shard (so
    that a brain too big for one device can be born), gives the arrays of
    the birth on one device, laid out over the mesh."""
    assert four_devices["sharded_birth"] == []


def test_options_a_sharded_plan_cannot_run(four_devices):
    assert four_devices["errors"] == [
        "--devices=5 is more than the 4 devices in this run: pass --devices=4 or fewer (0: all of them)",
        "--backend=cpu_native, --propagation=event cannot run on --devices=2: a sharded brain runs the xla "
        "backend, the gather path and eager STDP; drop the flag or pass --devices=1",
    ]


@pytest.mark.parametrize("brain", ["seed", "teach"])
def test_chat_on_a_sharded_brain_says_what_one_device_says(four_devices, brain):
    # replies, /stats and /teach on 2 devices, character for character
    same, _ = four_devices["chats"][brain]["2"]
    assert same, four_devices["chats"][brain]["transcript"]


def test_a_taught_cortex_chat_is_bit_identical_on_2_devices(four_devices):
    # k-WTA memory blocks, the delta rule in teaching bursts, the relay, clock and teacher ports
    assert four_devices["chats"]["teach"]["2"][1] == []


def test_a_seed_chat_is_bit_identical_on_2_devices(four_devices):
    # the text port's stimulus current too: every voltage to the last bit (brain.py's `_step`)
    assert four_devices["chats"]["seed"]["2"][1] == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_jbrain_run_over_two_processes_equals_one_process(tmp_path):
    """`jbrain run --coordinator` in 2 processes of 2 CPU devices each (the
    brain sharded over all 4) on one WORKDIR, as two hosts sharing a
    folder: the checkpoint equals a one-device run bit for bit, and
    process 0 alone writes the log."""
    from jbrain import checkpoint
    from jbrain.config import BrainConfig
    from jbrain.logs import read_log
    from jbrain.session import Session

    address, workdir = f"localhost:{_free_port()}", str(tmp_path / "brain")
    flags = ["--n_neurons=2048", "--plasticity", "--steps=200", "--burst=100", f"--workdir={workdir}"]
    env = {**cli_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments.cli",
                "run",
                *flags,
                f"--coordinator={address}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in range(2)
    ]
    want = Session.new(BrainConfig(n_neurons=2048, plasticity=True), seed=0)  # meanwhile, here
    metrics = [want.run(100) for _ in range(2)]
    outs = [_finish(p) for p in procs]
    assert "log written by process 0" in outs[1] and f"checkpoint {workdir}/checkpoints/200" in outs[0]
    got = checkpoint.restore(os.path.join(workdir, "checkpoints", "200")).state
    assert_trees_equal(got, want.state)
    log = read_log(os.path.join(workdir, "brain_debug.log"))
    assert np.array_equal(log["spikes"], np.concatenate([m["spikes"] for m in metrics]))
    assert np.array_equal(log["step"], np.arange(1, 201))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--devices=3"], "--devices=3 is more than the 1 device in this run: pass --devices=1 or fewer"),
        (
            ["--process_id=1"],
            "--num_processes and --process_id need --coordinator=HOST:PORT (process 0's address, the "
            "same on every host)",
        ),
        (
            ["--coordinator=localhost:1234", "--num_processes=2", "--process_id=2"],
            "--process_id=2 must be in 0 .. --num_processes-1 = 1 (and --num_processes >= 1)",
        ),
    ],
    ids=["devices", "no-coordinator", "process-id"],
)
def test_bad_devices_and_distributed_flags_are_one_line_exit_2(flags, message, tmp_path):
    p = jbrain_cli("run", "--n_neurons=2000", f"--workdir={tmp_path}", *flags)
    err = p.stderr.decode()
    assert p.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"jbrain run: error: {message}"), err
    assert os.listdir(tmp_path) == []
