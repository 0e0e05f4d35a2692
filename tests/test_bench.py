"""`jbrain bench`: the alive statistics, the report, and smoke runs (no timing
is asserted: speed lives in BENCHMARKS.md, never in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jbrain import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("OUT", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, **kw
    )


def test_longest_run():
    assert bench.longest_run(np.array([], bool)) == 0
    assert bench.longest_run(np.array([0, 1, 1, 0, 1, 1, 1, 0], bool)) == 3
    assert bench.longest_run(np.ones(7, bool)) == 7


def test_alive_stats_pass_and_each_failure():
    rng = np.random.default_rng(0)
    rates = 0.05 + 0.005 * rng.standard_normal(3000)
    spikes = np.full(3000, 100)
    ok = bench.alive_stats(rates, spikes, target=0.05, warmup=1000, window=1000)
    assert ok["alive"] and ok["steps"] == 2000 and ok["longest_silent"] == 0
    assert abs(ok["moving_min"] - 0.05) < 0.01 and abs(ok["moving_max"] - 0.05) < 0.01

    silent = spikes.copy()
    silent[2000:2050] = 0
    bad = bench.alive_stats(rates, silent, target=0.05)
    assert bad["longest_silent"] == 50 and not bad["silent_ok"] and not bad["alive"]

    spiky = rates.copy()
    spiky[2500] = 0.6
    bad = bench.alive_stats(spiky, spikes, target=0.05)
    assert not bad["max_ok"] and not bad["alive"]

    drift = rates + np.linspace(0, 0.05, 3000)  # moving mean leaves the band
    bad = bench.alive_stats(drift, spikes, target=0.05)
    assert not bad["band_ok"] and not bad["alive"]

    bad = bench.alive_stats(rates, spikes, target=0.05, nonfinite=True)
    assert bad["nonfinite"] and not bad["alive"]

    with pytest.raises(ValueError, match="warmup"):
        bench.alive_stats(rates[:500], spikes[:500], target=0.05, warmup=1000)


def test_warmup_is_excluded_from_the_checks():
    rates = np.concatenate([np.zeros(900), np.full(2100, 0.05)])  # silent start
    spikes = (rates * 1000).astype(int)
    a = bench.alive_stats(rates, spikes, target=0.05, warmup=1000, window=10)
    assert a["alive"] and a["longest_silent"] == 0
    # the trailing window may reach back into the warm-up (stricter, not laxer)
    a = bench.alive_stats(rates, spikes, target=0.05, warmup=1000, window=200)
    assert not a["band_ok"] and a["silent_ok"]


def test_report_compares_with_baselines():
    row = dict(impl="jbrain", path="event", N=200_000, us_per_step_best=20.0, us_per_step_median=21.0)
    bp = dict(impl="brainpy raw", path="cuda_raw", N=200_000, us_per_step_best=25.0, us_per_step_median=25.0)
    skip = bench.skipped_row("cupy seed loop", "csr", 200_000, "cupy is not importable")
    text = bench.format_table(
        dict(device=dict(device_kind="NVIDIA H100", platform="gpu"), rows=[row, bp, skip])
    )
    assert "NVIDIA H100" in text and "0.80x" in text and "<= 30 met" in text
    assert "cupy is not importable" in text


def test_jbrain_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    p = _run(
        [
            "-m", "jbrain.cli", "bench", "--sizes=5000", "--paths=event,gather", "--steps=20",
            "--reps=1", "--warmup=20", "--baselines=", "--alive_steps=1000", "--alive_neurons=5000",
            "--alive_warmup=100", f"--out={out}",
        ]
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["device"]["platform"] == "cpu" and result["device"]["jax"]
    rows = [r for r in result["rows"] if r["impl"] == "jbrain"]
    assert [r["path"] for r in rows] == ["event", "gather"]
    for r in rows:
        assert r["us_per_step_best"] > 0 and r["status"] == 0 and 0 < r["rate_mean"] < 0.5
    assert result["alive"]["steps"] == 1000 and not result["alive"]["nonfinite"]
    assert "| jbrain | event | 5,000 |" in p.stdout


def test_bench_bad_flag_is_one_line():
    p = _run(["-m", "jbrain.cli", "bench", "--paths=warp"])
    assert p.returncode == 2
    assert "--paths" in p.stderr and "warp" in p.stderr and "Traceback" not in p.stderr


def test_cupy_seed_dry_run_on_numpy(tmp_path):
    out = tmp_path / "cupy.json"
    p = _run(
        ["scripts/cupy_seed.py", "--numpy", "--sizes=2000", "--steps=20", "--reps=1", "--warmup=200",
         f"--json={out}"]
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["N"] == 2000 and row["us_per_step_best"] > 0 and 0 < row["rate_mean"] < 0.5
