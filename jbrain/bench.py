"""Benchmark and alive check of the jbrain step, beside peer baselines.

What is timed (`time_brain`), per (N, propagation path):
    init_s        `init_brain` + block_until_ready (wiring build, its compile included)
    first_s       the first `burst` of `steps` steps: compile + run (block_until_ready)
    start_to_first_s = init_s + first_s: what a user waits for before the first
                  burst's metrics (BrainPy's "compile + first chunk" counts the same)
    us_per_step   `reps` further bursts of `steps` steps each, after `warmup`
                  steps in all (the compiling burst counts as warm-up), each
                  timed with `perf_counter` around burst + block_until_ready;
                  best and median over the reps, divided by `steps`.
The XLA caches are cleared before each row, so every row pays its own compile.
Rates and status bits are read back after the timed region.

Paths: `event` and `gather` are the jbrain step with that propagation; `bcoo`
is the same step with plain `jax.experimental.sparse` `BCOO @ s` propagation.

Baselines run as subprocesses (their own CUDA context, so JAX's preallocated
pool does not starve them); run them before the first JAX device call:
    cupy     scripts/cupy_seed.py: the seed's own CuPy loop (CSR matvec, roll,
             noise, a host read of the rate every step)
    brainpy  ../shared/peers/brainpy_seed.py (BrainPy 2.9, brainevent kernels),
             one subprocess per (N, api) so that a timeout loses one row only.

`alive_stats` is the pure-numpy check of "alive, not exploding" (issue 2,
item 7) over per-step rates; `alive_check` runs a brain and applies it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

PATHS = ("event", "gather", "bcoo")
BASELINES = ("cupy", "brainpy")

# Issue 2 targets, us/step (GPU: H100 / H200; CPU: the 2-core machine).
GPU_TARGETS_US = {200_000: 30.0, 1_000_000: 80.0, 10_000_000: 800.0}
CPU_TARGETS_US = {200_000: 4000.0}
# BrainPy 2.9 `raw`, NVIDIA H200, peers/README.md (orientation only).
BRAINPY_H200_US = {200_000: 24.8, 1_000_000: 60.4, 10_000_000: 542.0}

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUPY_SCRIPT = os.path.join(REPO_ROOT, "scripts", "cupy_seed.py")


# ----------------------------------------------------------------------------
# environment
# ----------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def device_info() -> dict[str, Any]:
    """Device and software versions. Initialises the JAX backend."""
    import jax

    dev = jax.devices()[0]
    info = dict(
        device_kind=dev.device_kind,
        platform=dev.platform,
        device_count=jax.device_count(),
        jax=jax.__version__,
        python=platform.python_version(),
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        hostname=platform.node(),
    )
    with contextlib.suppress(Exception):
        import jaxlib

        info["jaxlib"] = jaxlib.__version__
    info["git"] = git_revision()
    info["loadavg_start"] = loadavg()
    return info


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages (other processes skew CPU timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def git_revision() -> str | None:
    """`git describe --always --dirty` of the checkout, if it is one."""
    try:
        p = subprocess.run(
            ["git", "-C", REPO_ROOT, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() or None if p.returncode == 0 else None


def cpu_idle(interval_s: float = 0.5) -> float | None:
    """Fraction of all CPUs' time spent idle over `interval_s` (Linux /proc/stat)."""

    def snap() -> tuple[int, int]:
        with open("/proc/stat", encoding="utf-8") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, total

    try:
        i0, t0 = snap()
        time.sleep(interval_s)
        i1, t1 = snap()
    except (OSError, ValueError, IndexError):
        return None
    return (i1 - i0) / max(1, t1 - t0)


def wait_for_idle(threshold: float, max_wait_s: float = 60.0) -> float | None:
    """On a shared CPU machine: wait until the CPUs are at least `threshold`
    idle (other processes quiet), at most `max_wait_s`. Returns the idle
    fraction last seen (None where /proc/stat is unavailable)."""
    end = time.perf_counter() + max_wait_s
    while True:
        idle = cpu_idle()
        if idle is None or idle >= threshold or time.perf_counter() >= end:
            return None if idle is None else round(idle, 2)
        time.sleep(1.0)


def targets_for(platform_name: str) -> dict[int, float]:
    return CPU_TARGETS_US if platform_name == "cpu" else GPU_TARGETS_US


# ----------------------------------------------------------------------------
# jbrain timing
# ----------------------------------------------------------------------------
def time_brain(
    n_neurons: int,
    path: str,
    *,
    fan_in: int = 32,
    steps: int = 1000,
    reps: int = 3,
    warmup: int = 1000,
    seed: int = 0,
    row_budget_s: float = 60.0,
    idle_threshold: float = 0.0,
) -> dict[str, Any]:
    """Time the jbrain step at N = n_neurons on one propagation path (see the
    module docstring). Returns one JSON-ready row. idle_threshold > 0 (shared
    CPU machines): before each timed burst, wait until the CPUs are that idle."""
    import jax

    from jbrain import brain
    from jbrain.config import BrainConfig
    from jbrain.state import describe_status

    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}: use one of {', '.join(PATHS)}")
    config = BrainConfig(n_neurons=n_neurons, fan_in=fan_in, propagation=path)
    jax.clear_caches()
    gc.collect()

    t0 = time.perf_counter()
    wiring, state = brain.init_brain(config, seed=seed)
    jax.block_until_ready((wiring, state))
    init_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    state, metrics = brain.burst(config, wiring, state, None, length=steps)
    jax.block_until_ready(state)
    first_s = time.perf_counter() - t0

    n_warm, est = 1, first_s
    for _ in range(max(1, math.ceil(warmup / steps)) - 1):
        if 2 * est > row_budget_s:  # a slow row: the compiling burst is warm-up enough
            break
        n_warm += 1
        t0 = time.perf_counter()
        state, metrics = brain.burst(config, wiring, state, None, length=steps)
        jax.block_until_ready(state)
        est = time.perf_counter() - t0
    reps_run = max(1, min(reps, int(row_budget_s // max(est, 1e-9))))

    times, rates, idles = [], [], []
    for _ in range(reps_run):
        if idle_threshold > 0:
            idles.append(wait_for_idle(idle_threshold))
        t0 = time.perf_counter()
        state, metrics = brain.burst(config, wiring, state, None, length=steps)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
        rates.append(np.asarray(jax.device_get(metrics.rate)))
    status = int(jax.device_get(state.status))
    rate = np.concatenate(rates)
    unroll = brain.resolved_unroll(config)
    row = dict(
        impl="jbrain",
        path=path,
        N=n_neurons,
        K=fan_in,
        steps=steps,
        reps=reps_run,
        warmup_steps=n_warm * steps,
        unroll=min(unroll, steps),
        init_s=round(init_s, 3),
        first_s=round(first_s, 3),
        start_to_first_s=round(init_s + first_s, 3),
        compile_s_est=round(max(0.0, first_s - min(times)), 3),
        us_per_step_best=min(times) / steps * 1e6,
        us_per_step_median=statistics.median(times) / steps * 1e6,
        rate_mean=float(rate.mean()),
        rate_max=float(rate.max()),
        status=status,
        status_names=describe_status(status),
        loadavg=loadavg(),
    )
    if idles:
        row["cpu_idle_before_reps"] = idles
    if reps_run < reps:
        row["note"] = f"{reps_run} of {reps} reps (row budget {row_budget_s:.0f} s)"
    del wiring, state, metrics
    jax.clear_caches()
    gc.collect()
    return row


def skipped_row(impl: str, path: str, n: int, why: str, **extra: Any) -> dict[str, Any]:
    return dict(impl=impl, path=path, N=n, skipped=why, **extra)


# ----------------------------------------------------------------------------
# alive, not exploding
# ----------------------------------------------------------------------------
def longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    if edges.size == 0:
        return 0
    return int((edges[1::2] - edges[::2]).max())


def alive_stats(
    rates: np.ndarray,
    spikes: np.ndarray,
    *,
    target: float,
    warmup: int = 1000,
    window: int = 1000,
    band: float = 0.01,
    max_silent: int = 50,
    max_rate: float = 0.5,
    nonfinite: bool = False,
) -> dict[str, Any]:
    """Issue 2, item 7, over per-step `rates` (T,) and spike counts `spikes` (T,).

    After `warmup` steps, at every later step t the trailing `window`-step
    mean of the rate (steps t-window+1 .. t; it may reach back into the
    warm-up) must lie in target +- band; no run of `max_silent` or more
    consecutive spike-free steps; no step above `max_rate`; nothing
    non-finite (`nonfinite`: the state's status bit).
    """
    rates = np.asarray(rates, np.float64)
    spikes = np.asarray(spikes)
    if rates.shape != spikes.shape or rates.ndim != 1:
        raise ValueError("rates and spikes must be 1-D arrays of the same length")
    if rates.shape[0] <= warmup:
        raise ValueError(f"need more than warmup={warmup} steps, got {rates.shape[0]}")
    csum = np.concatenate([[0.0], np.cumsum(rates)])
    ends = np.arange(warmup + 1, rates.shape[0] + 1)
    starts = np.maximum(ends - window, 0)
    moving = (csum[ends] - csum[starts]) / (ends - starts)
    post_r, post_s = rates[warmup:], spikes[warmup:]
    nan = bool(nonfinite or not np.isfinite(rates).all())
    out = dict(
        steps=int(post_r.shape[0]),
        warmup=warmup,
        window=window,
        target=target,
        band=band,
        moving_min=float(np.nanmin(moving)),
        moving_max=float(np.nanmax(moving)),
        rate_mean=float(np.nanmean(post_r)),
        rate_max=float(np.nanmax(post_r)),
        rate_min=float(np.nanmin(post_r)),
        longest_silent=longest_run(post_s == 0),
        nonfinite=nan,
    )
    out["band_ok"] = bool(abs(out["moving_min"] - target) <= band and abs(out["moving_max"] - target) <= band)
    out["silent_ok"] = out["longest_silent"] < max_silent
    out["max_ok"] = out["rate_max"] <= max_rate
    out["alive"] = bool(out["band_ok"] and out["silent_ok"] and out["max_ok"] and not nan)
    return out


def alive_check(
    n_neurons: int,
    *,
    steps: int = 20_000,
    warmup: int = 1000,
    window: int = 1000,
    burst: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the default brain at N = n_neurons (auto propagation) for warmup +
    steps steps in bursts of `burst`, and apply `alive_stats`."""
    import jax

    from jbrain import brain
    from jbrain.config import BrainConfig
    from jbrain.state import STATUS_NONFINITE, describe_status

    config = BrainConfig(n_neurons=n_neurons)
    total = warmup + steps
    wiring, state = brain.init_brain(config, seed=seed)
    rates, spikes = [], []
    t0 = time.perf_counter()
    for _ in range(math.ceil(total / burst)):
        state, metrics = brain.burst(config, wiring, state, None, length=burst)
        r, s = jax.device_get((metrics.rate, metrics.spikes))
        rates.append(np.asarray(r))
        spikes.append(np.asarray(s))
    wall = time.perf_counter() - t0
    status = int(jax.device_get(state.status))
    theta = float(jax.device_get(state.theta.mean()))
    out = alive_stats(
        np.concatenate(rates)[:total],
        np.concatenate(spikes)[:total],
        target=config.target_rate,
        warmup=warmup,
        window=window,
        nonfinite=bool(status & STATUS_NONFINITE),
    )
    out.update(
        N=n_neurons,
        K=config.fan_in,
        path=brain.propagation(config),
        seed=seed,
        status=status,
        status_names=describe_status(status),
        mean_threshold_end=theta,
        wall_s=round(wall, 2),
    )
    del wiring, state
    jax.clear_caches()
    return out


# ----------------------------------------------------------------------------
# baselines (subprocesses)
# ----------------------------------------------------------------------------
def _run_logged(
    cmd: list[str], env: dict[str, str], timeout_s: float, log_path: str
) -> tuple[int | str, str]:
    """Run cmd with stdout+stderr to log_path; (returncode or 'timeout', tail)."""
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            p = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout_s, check=False
            )
            rc: int | str = p.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    with open(log_path, encoding="utf-8", errors="replace") as f:
        tail = f.read()[-3000:]
    return rc, tail


def run_cupy_baseline(
    sizes: Sequence[int],
    *,
    steps: int,
    reps: int,
    warmup: int,
    seed: int,
    timeout_s: float,
    script: str = CUPY_SCRIPT,
    python: str = sys.executable,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """scripts/cupy_seed.py in a subprocess: (rows, raw JSON or error info)."""
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        why = "cupy is not importable here (GPU only: pip install cupy-cuda12x / cupy-cuda13x)"
        return [skipped_row("cupy seed loop", "csr", n, why) for n in sizes], dict(skipped=why)
    if not os.path.exists(script):
        why = f"{script} not found (run from a checkout of the repository)"
        return [skipped_row("cupy seed loop", "csr", n, why) for n in sizes], dict(skipped=why)
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "cupy_seed.json")
        cmd = [
            python,
            script,
            "--sizes",
            ",".join(map(str, sizes)),
            "--steps",
            str(steps),
            "--reps",
            str(reps),
            "--warmup",
            str(warmup),
            "--seed",
            str(seed),
            "--json",
            js,
        ]
        t0 = time.perf_counter()
        rc, tail = _run_logged(cmd, dict(os.environ), timeout_s, os.path.join(tmp, "log"))
        wall = time.perf_counter() - t0
        raw: dict[str, Any] = dict(returncode=rc, wall_s=round(wall, 1), log_tail=tail)
        if os.path.exists(js):  # written after every size, so a timeout keeps the rows done
            with open(js, encoding="utf-8") as f:
                raw.update(json.load(f))
    rows = []
    done = {r["N"] for r in raw.get("rows", []) if "us_per_step_best" in r}
    for r in raw.get("rows", []):
        rows.append(dict(r, impl="cupy seed loop", path="csr"))
    for n in sizes:
        if n not in done and not any(r["N"] == n for r in rows):
            rows.append(skipped_row("cupy seed loop", "csr", n, f"no result (rc={rc}; see log_tail)"))
    return rows, raw


def run_brainpy_baseline(
    sizes: Sequence[int],
    apis: Sequence[str],
    *,
    script: str,
    pythonpath: str,
    T: int,
    warmup: int,
    reps: int,
    seed: int,
    timeout_s: float,
    budget_s: float,
    python: str = sys.executable,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The BrainPy peer, one subprocess per (N, api): (rows, raw results)."""
    rows: list[dict[str, Any]] = []
    raws: list[dict[str, Any]] = []
    if not script or not os.path.exists(script):
        why = f"BrainPy peer script {script!r} not found (--brainpy_script)"
        return [skipped_row(f"brainpy {a}", "-", n, why) for n in sizes for a in apis], [dict(skipped=why)]
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    start = time.perf_counter()
    for api in apis:  # api outer: every size of the fast style before the slow-compiling one
        for n in sizes:
            left = budget_s - (time.perf_counter() - start)
            impl = f"brainpy {api}"
            if left < 20:
                rows.append(skipped_row(impl, "-", n, f"BrainPy budget ({budget_s:.0f} s) spent"))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                env["OUT"] = tmp
                cmd = [
                    python,
                    script,
                    "--sizes",
                    str(n),
                    "--api",
                    api,
                    "--T",
                    str(T),
                    "--warmup",
                    str(warmup),
                    "--reps",
                    str(reps),
                    "--seed",
                    str(seed),
                ]
                t0 = time.perf_counter()
                rc, tail = _run_logged(cmd, env, min(timeout_s, left), os.path.join(tmp, "log"))
                raw: dict[str, Any] = dict(
                    N=n, api=api, returncode=rc, wall_s=round(time.perf_counter() - t0, 1)
                )
                js = os.path.join(tmp, "brainpy_seed.json")
                if os.path.exists(js):
                    with open(js, encoding="utf-8") as f:
                        raw.update(json.load(f))
                else:
                    raw["log_tail"] = tail
            raws.append(raw)
            print(f"  brainpy {api} N={n:,}: rc={rc}, {raw['wall_s']} s", flush=True)
            got = [r for r in raw.get("rows", []) if "us_per_step_best" in r]
            if not got:
                rows.append(skipped_row(impl, "-", n, f"failed (rc={rc}; see baselines.brainpy log_tail)"))
                raws[-1].setdefault("log_tail", tail)
                continue
            for r in got:
                rows.append(
                    dict(
                        impl=impl,
                        path=str(r.get("backend")),
                        N=n,
                        K=r.get("K"),
                        steps=r.get("T"),
                        reps=r.get("reps"),
                        warmup_steps=r.get("warmup_steps"),
                        init_s=r.get("build_s"),
                        first_s=r.get("compile_plus_first_chunk_s"),
                        start_to_first_s=round(
                            (r.get("build_s") or 0) + (r.get("compile_plus_first_chunk_s") or 0), 3
                        ),
                        us_per_step_best=r["us_per_step_best"],
                        us_per_step_median=r["us_per_step_median"],
                        rate_mean=r.get("rate_per_step"),
                        device=(raw.get("info") or {}).get("devices"),
                    )
                )
    return rows, raws


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------
def _f(x: Any, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def format_table(result: dict[str, Any]) -> str:
    """The markdown table of all rows (jbrain and baselines), then a comparison
    of jbrain's best path with the baselines and targets at each N."""
    dev = result.get("device", {})
    name = dev.get("device_kind", "?")
    if dev.get("platform") == "cpu":
        name = (
            f"CPU: {dev.get('cpu', '?')}, {dev.get('cpu_count', '?')} cores, load {dev.get('loadavg_start')}"
        )
    lines = [
        f"device: {name}; jax {dev.get('jax', '?')}; jbrain {dev.get('git')}",
        "",
        "| impl | path | N | us/step best | us/step median | init s | start to first burst s "
        "| rate | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = result.get("rows", [])
    for r in rows:
        if "skipped" in r or "error" in r:
            why = r.get("skipped") or r.get("error")
            lines.append(f"| {r['impl']} | {r.get('path', '')} | {r['N']:,} | - | - | | | | {why} |")
            continue
        st = r.get("status")
        st = "" if st is None else ("ok" if st == 0 else ",".join(r.get("status_names", [])) or str(st))
        lines.append(
            f"| {r['impl']} | {r.get('path', '')} | {r['N']:,} | {r['us_per_step_best']:.1f} | "
            f"{r['us_per_step_median']:.1f} | {_f(r.get('init_s'), '.2f')} | "
            f"{_f(r.get('start_to_first_s'), '.2f')} | {_f(r.get('rate_mean'), '.4f')} | {st} |"
        )
    targets = targets_for(dev.get("platform", "gpu"))
    sizes = sorted({r["N"] for r in rows})
    ok = [r for r in rows if "us_per_step_best" in r]
    if any(r["impl"] == "jbrain" for r in ok):
        lines += [
            "",
            "| N | jbrain best (path) | target | BrainPy raw | BrainPy dyn | CuPy seed loop "
            "| jbrain / BrainPy raw |",
            "|---|---|---|---|---|---|---|",
        ]
        for n in sizes:

            def best(impl, n=n):
                c = [r for r in ok if r["impl"] == impl and r["N"] == n]
                return min(c, key=lambda r: r["us_per_step_best"]) if c else None

            jb, bpr, bpd, cp = (
                best("jbrain"),
                best("brainpy raw"),
                best("brainpy dyn"),
                best("cupy seed loop"),
            )
            if jb is None:
                continue
            tgt = targets.get(n)
            mark = (
                ""
                if tgt is None
                else (f"<= {tgt:g} " + ("met" if jb["us_per_step_best"] <= tgt else "MISSED"))
            )
            ratio = f"{jb['us_per_step_best'] / bpr['us_per_step_best']:.2f}x" if bpr else ""
            lines.append(
                f"| {n:,} | {jb['us_per_step_best']:.1f} ({jb['path']}) | {mark} | "
                f"{_f(bpr and bpr['us_per_step_best'], '.1f')} | "
                f"{_f(bpd and bpd['us_per_step_best'], '.1f')} | "
                f"{_f(cp and cp['us_per_step_best'], '.1f')} | {ratio} |"
            )
    return "\n".join(lines)


def format_alive(a: dict[str, Any]) -> str:
    if "error" in a:
        return f"alive check failed to run: {a['error']}"
    return "\n".join(
        [
            f"alive check: N={a['N']:,} ({a['path']}), {a['warmup']} warm-up + {a['steps']} steps, "
            f"{a['window']}-step moving mean, target {a['target']} +- {a['band']}",
            "",
            "| moving mean min | max | longest silent run | max rate | NaN | status | alive |",
            "|---|---|---|---|---|---|---|",
            f"| {a['moving_min']:.4f} | {a['moving_max']:.4f} | {a['longest_silent']} | "
            f"{a['rate_max']:.4f} | "
            f"{'yes' if a['nonfinite'] else 'no'} | {a['status']} | {'PASS' if a['alive'] else 'FAIL'} |",
        ]
    )


def write_json(path: str, result: dict[str, Any]) -> None:
    """Write atomically (a partial run leaves the last complete file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=str)
    os.replace(tmp, path)


def format_report(result: dict[str, Any]) -> str:
    """Alive block (if any), then the tables: what `jbrain bench` prints last."""
    parts = []
    if result.get("alive"):
        parts.append(format_alive(result["alive"]))
    parts.append(format_table(result))
    return "\n\n".join(parts)


def main(argv: Sequence[str]) -> None:
    """`python -m jbrain.bench BENCH.json`: print the report of a (partial) run."""
    if len(argv) != 2:
        print("usage: python -m jbrain.bench BENCH.json", file=sys.stderr)
        sys.exit(2)
    with open(argv[1], encoding="utf-8") as f:
        print(format_report(json.load(f)))


if __name__ == "__main__":
    main(sys.argv)
