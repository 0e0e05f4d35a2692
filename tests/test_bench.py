"""The benchmark harness (experiments/benchkit.py) and its drivers: the timing
helper, the alive statistics, the report, and smoke runs of `jbrain bench`,
scripts/bench_reply.py, scripts/bench_checkpoint.py and scripts/cupy_seed.py
at tiny sizes. No speed is asserted: speeds live in BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import benchkit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args: list[str], extra_env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", **(extra_env or {}))
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, **kw
    )


class FakeClock:
    """A clock that moves only when told: call durations are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_calls_times_each_call_and_leaves_hooks_out():
    clock = FakeClock()
    durations = iter([9.0, 8.0, 1.0, 4.0, 2.0, 3.0])  # two warm-up calls, then four timed
    events = []

    def fn():
        clock.now += next(durations)
        return "result"

    def sync(result):  # waiting is part of the call's time
        assert result == "result"
        clock.now += 0.5

    stats = benchkit.time_calls(
        fn,
        warmup=2,
        repeats=4,
        sync=sync,
        clock=clock,
        before=lambda: (events.append("before"), setattr(clock, "now", clock.now + 100)),
        after=lambda r: (events.append(r), setattr(clock, "now", clock.now + 100)),
    )
    assert stats["warmup"] == 2 and stats["warmup_s"] == [9.5, 8.5]
    assert stats["times_s"] == [1.5, 4.5, 2.5, 3.5] and stats["n"] == 4
    assert stats["min_s"] == 1.5 and stats["max_s"] == 4.5 and stats["total_s"] == 12.0
    assert stats["median_s"] == 3.0 and stats["mean_s"] == 3.0
    assert stats["p90_s"] == 4.5  # the ceil(0.9 * 4)-th smallest
    assert benchkit.summarize(range(1, 21))["p90_s"] == 18 and benchkit.summarize([2, 1])["p90_s"] == 2
    assert events == ["before", "result"] * 4


def test_time_calls_stops_on_budget_until_and_slow_warmup():
    clock = FakeClock()

    def take(seconds):
        def fn():
            clock.now += seconds

        return fn

    # budget 10 s, 4 s a call: 4, 8, then 8 + 4 > 10 stops
    s = benchkit.time_calls(take(4.0), repeats=5, budget_s=10.0, clock=clock, sync=lambda _: None)
    assert s["n"] == 2 and s["times_s"] == [4.0, 4.0]
    # a call longer than the budget still gets timed once
    s = benchkit.time_calls(take(30.0), repeats=5, budget_s=10.0, clock=clock, sync=lambda _: None)
    assert s["n"] == 1
    # a warm-up call over half the budget ends the warm-up
    s = benchkit.time_calls(take(6.0), warmup=5, repeats=1, budget_s=10.0, clock=clock, sync=lambda _: None)
    assert s["warmup"] == 1 and s["n"] == 1
    # until is checked before every call: here after three calls, and before the first
    calls = []
    s = benchkit.time_calls(
        lambda: calls.append(1), repeats=None, until=lambda: len(calls) == 3, clock=clock, sync=lambda _: None
    )
    assert s["n"] == 3
    s = benchkit.time_calls(take(1.0), repeats=None, until=lambda: True, clock=clock, sync=lambda _: None)
    assert s["n"] == 0 and s["min_s"] is None and s["median_s"] is None and s["total_s"] == 0
    with pytest.raises(ValueError, match="until"):
        benchkit.time_calls(take(1.0), repeats=None)
    with pytest.raises(ValueError, match="must be >= 0"):
        benchkit.time_calls(take(1.0), warmup=-1)


def test_time_calls_waits_for_jax_by_default():
    import jax.numpy as jnp

    out = []
    s = benchkit.time_calls(lambda: jnp.arange(1000.0).sum(), repeats=3, after=out.append)
    assert s["n"] == 3 and s["min_s"] > 0 and [float(x) for x in out] == [499500.0] * 3
    benchkit.wait("not an array")  # anything else passes through


def test_longest_run():
    assert benchkit.longest_run(np.array([], bool)) == 0
    assert benchkit.longest_run(np.array([0, 1, 1, 0, 1, 1, 1, 0], bool)) == 3
    assert benchkit.longest_run(np.ones(7, bool)) == 7


def test_alive_stats_pass_and_each_failure():
    rng = np.random.default_rng(0)
    rates = 0.05 + 0.005 * rng.standard_normal(3000)
    spikes = np.full(3000, 100)
    ok = benchkit.alive_stats(rates, spikes, target=0.05, warmup=1000, window=1000)
    assert ok["alive"] and ok["steps"] == 2000 and ok["longest_silent"] == 0
    assert abs(ok["moving_min"] - 0.05) < 0.01 and abs(ok["moving_max"] - 0.05) < 0.01

    silent = spikes.copy()
    silent[2000:2050] = 0
    bad = benchkit.alive_stats(rates, silent, target=0.05)
    assert bad["longest_silent"] == 50 and not bad["silent_ok"] and not bad["alive"]

    spiky = rates.copy()
    spiky[2500] = 0.6
    bad = benchkit.alive_stats(spiky, spikes, target=0.05)
    assert not bad["max_ok"] and not bad["alive"]

    drift = rates + np.linspace(0, 0.05, 3000)  # moving mean leaves the band
    bad = benchkit.alive_stats(drift, spikes, target=0.05)
    assert not bad["band_ok"] and not bad["alive"]

    bad = benchkit.alive_stats(rates, spikes, target=0.05, nonfinite=True)
    assert bad["nonfinite"] and not bad["alive"]

    with pytest.raises(ValueError, match="warmup"):
        benchkit.alive_stats(rates[:500], spikes[:500], target=0.05, warmup=1000)


def test_warmup_is_excluded_from_the_checks():
    rates = np.concatenate([np.zeros(900), np.full(2100, 0.05)])  # silent start
    spikes = (rates * 1000).astype(int)
    a = benchkit.alive_stats(rates, spikes, target=0.05, warmup=1000, window=10)
    assert a["alive"] and a["longest_silent"] == 0
    # the trailing window may reach back into the warm-up (stricter, not laxer)
    a = benchkit.alive_stats(rates, spikes, target=0.05, warmup=1000, window=200)
    assert not a["band_ok"] and a["silent_ok"]


def test_report_compares_with_baselines(tmp_path):
    row = dict(impl="jbrain", path="event", N=200_000, us_per_step_best=20.0, us_per_step_median=21.0)
    bp = dict(impl="brainpy raw", path="cuda_raw", N=200_000, us_per_step_best=25.0, us_per_step_median=25.0)
    skip = benchkit.skipped_row("cupy seed loop", "csr", 200_000, "cupy is not importable")
    result = dict(device=dict(device_kind="NVIDIA H100", platform="gpu"), rows=[row, bp, skip])
    text = benchkit.format_table(result)
    assert "NVIDIA H100" in text and "0.80x" in text and "<= 30 met" in text
    assert "cupy is not importable" in text
    slow = dict(row, us_per_step_best=31.0)
    assert "<= 30 MISSED" in benchkit.format_table(dict(result, rows=[slow]))
    # `python -m experiments.benchkit BENCH.json` prints the same report again
    path = tmp_path / "bench.json"
    benchkit.write_json(str(path), result)
    p = _run(["-m", "experiments.benchkit", str(path)])
    assert p.returncode == 0 and text in p.stdout


def test_jbrain_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    p = _run(
        [
            "-m", "experiments.cli", "bench", "--sizes=5000", "--paths=event,gather", "--steps=20",
            "--reps=2", "--warmup=40", "--baselines=", "--alive_steps=1000", "--alive_neurons=5000",
            "--alive_warmup=100", f"--out={out}",
        ]
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["device"]["platform"] == "cpu" and result["device"]["jax"]
    rows = [r for r in result["rows"] if r["impl"] == "jbrain"]
    assert [r["path"] for r in rows] == ["event", "gather"]
    for r in rows:
        assert r["reps"] == 2 and r["warmup_steps"] == 40 and r["steps"] == 20 and r["N"] == 5000
        assert 0 < r["us_per_step_best"] <= r["us_per_step_median"] <= r["us_per_step_p90"]
        assert r["first_s"] > 0 and r["init_s"] > 0
        assert r["start_to_first_s"] == pytest.approx(r["init_s"] + r["first_s"], abs=2e-3)
        assert r["status"] == 0 and r["status_names"] == [] and 0 < r["rate_mean"] <= r["rate_max"] < 0.5
    alive = result["alive"]
    assert alive["steps"] == 1000 and alive["warmup"] == 100 and alive["N"] == 5000
    assert not alive["nonfinite"] and alive["path"] in benchkit.PATHS
    assert "| jbrain | event | 5,000 |" in p.stdout


def test_bench_bad_flag_is_one_line():
    p = _run(["-m", "experiments.cli", "bench", "--paths=warp"])
    assert p.returncode == 2
    assert "--paths" in p.stderr and "warp" in p.stderr and "Traceback" not in p.stderr


def test_bench_reply_smoke(tmp_path):
    p = _run(
        ["scripts/bench_reply.py", "--n_neurons=2000", "--warmup=1", "--repeats=3", "--ttfr_runs=2",
         "--kernels", f"--out={tmp_path}"]
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((tmp_path / "bench_reply.json").read_text())
    assert r["n_neurons"] == 2000 and r["plasticity"] and r["repeats"] == 3
    assert 0 < r["reply_ms_min"] <= r["reply_ms_median"] <= r["reply_ms_p90"] <= r["reply_ms_max"]
    assert r["burst_ms_median"] > 0 and r["first_reply_s"] > 0 and r["distinct_replies"] >= 1
    # the first launch compiles into an empty cache, the second loads from it
    assert len(r["ttfr_s_runs"]) == 2 and r["ttfr_s_cold"] == r["ttfr_s_runs"][0] > 0
    assert r["ttfr_s_warm_median"] == r["ttfr_s_runs"][1] > 0
    assert "| cpu (" in p.stdout
    assert r["reply_kernels"] is None  # --kernels profiles GPU streams only


def test_bench_checkpoint_smoke(tmp_path):
    p = _run(
        ["scripts/bench_checkpoint.py", "--n_neurons=2000", "--repeats=2", "--burst=20", "--loop_bursts=2",
         f"--tmp={tmp_path}", f"--out={tmp_path}"]
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((tmp_path / "bench_checkpoint.json").read_text())
    save, restore, loop = r["save"], r["restore"], r["loop"]
    assert len(save["blocking_s"]) == len(save["write_s"]) == 2
    assert all(w >= b > 0 for b, w in zip(save["blocking_s"], save["write_s"], strict=True))
    assert save["checkpoint_bytes"] > save["state_bytes"] > 0
    assert len(restore["restore_s"]) == 2 and len(restore["session_open_s"]) == 2
    assert len(loop["burst_s"]) == 2 and len(loop["save_call_s"]) == 2
    assert len(loop["bursts_during_write"]) == len(loop["extra_s_during_write"]) == 2
    assert "checkpoint: 2,000 neurons" in p.stdout
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith("bench_checkpoint_")] == []


def test_cupy_seed_dry_run_on_numpy(tmp_path):
    out = tmp_path / "cupy.json"
    p = _run(
        ["scripts/cupy_seed.py", "--numpy", "--sizes=2000", "--steps=20", "--reps=2", "--warmup=200",
         f"--json={out}"]
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["N"] == 2000 and row["reps"] == 2 and row["warmup_steps"] == 200
    assert 0 < row["us_per_step_best"] <= row["us_per_step_median"] and 0 < row["rate_mean"] < 0.5


def test_bench_shard_smoke(tmp_path):
    # experiments/bench_shard.py on 2 forced CPU devices: every row kind comes back
    out = tmp_path / "shard.json"
    p = _run(
        [
            "-m", "experiments.bench_shard", "--devices=1,2", "--exchanges=words,list", "--sizes=4000",
            "--steps=5", "--reps=1", "--sharded_plan", "--exchange_cost", f"--out={out}",
        ],
        extra_env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    kinds = [(r.get("devices"), r.get("sharded_plan"), r.get("exchange")) for r in rows]
    assert kinds[:4] == [(1, False, "none"), (1, True, "none"), (2, True, "words"), (2, True, "list")]
    assert rows[2]["bytes_per_step"] == 4000 // 8 and rows[2]["paths"] == ["gather"]
    assert set(rows[4]["exchange_cost_us"]) == {"words", "list"} and rows[4]["list_capacity"] == 400
