"""The benchmark harness: one timing helper, the machine's description, and
what `jbrain bench` measures and prints. Speeds live in BENCHMARKS.md (method
there), never in tests.

Every timed figure of the harness and of the drivers in scripts/ comes from
`time_calls`. Every call into jbrain's engine goes through
experiments/bench_engine.py (one small adapter class per thing timed).

What a `jbrain bench` row holds (`time_brain`), per (N, propagation path):
    init_s        `init_brain`, waited for (wiring build, its compile included)
    first_s       the first burst of `steps` steps: compile + run
    start_to_first_s = init_s + first_s: what a user waits for before the first
                  burst's metrics (BrainPy's "compile + first chunk" counts the same)
    us_per_step   `reps` further bursts of `steps` steps each, after `warmup`
                  steps in all (the compiling burst counts as warm-up), each
                  timed around burst + block_until_ready; best, median and p90
                  over the reps, divided by `steps`.
The XLA caches are cleared before each row, so every row pays its own compile.
Rates and status bits are read back outside the timed region.

Paths: `event` and `gather` are the jbrain step with that propagation; `bcoo`
is the same step with plain `jax.experimental.sparse` `BCOO @ s` propagation.
A row with record_sheet (`jbrain bench --record_sheet`, path shown as
`PATH+sheet`) times the same step with the plan's `record_sheet` on: every
step also packs all N spikes into ceil(N/32) words of the burst's packed
output, what `--record_sheet` costs a run (`sheet_overhead`: its best over
the plain row's best, minus 1).

Peers run as subprocesses (their own CUDA context, so JAX's preallocated pool
does not starve them); run them before the first JAX device call:
    cupy     scripts/cupy_seed.py: the seed's own CuPy loop (CSR matvec, roll,
             noise, a host read of the rate every step)
    brainpy  ../shared/peers/brainpy_seed.py (BrainPy 2.9, brainevent kernels),
             one subprocess per (N, api) so that a timeout loses one row only.

`alive_stats` is the pure-numpy check of "alive, not exploding" over per-step
rates; `alive_check` runs a brain and applies it.

`python -m experiments.benchkit BENCH.json` prints the report of a (partial)
`jbrain bench` run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import glob
import gzip
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from experiments import bench_engine

PATHS = ("event", "gather", "bcoo")
BASELINES = ("cupy", "brainpy")

# Step targets of the issue-2 brief, us/step (GPU: H100 / H200; CPU: a 2-core machine).
GPU_TARGETS_US = {200_000: 30.0, 1_000_000: 80.0, 10_000_000: 800.0}
CPU_TARGETS_US = {200_000: 4000.0}

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUPY_SCRIPT = os.path.join(REPO_ROOT, "scripts", "cupy_seed.py")


# ----------------------------------------------------------------------------
# device kernels from a profile
# ----------------------------------------------------------------------------
def traced_kernels(fn: Callable[[], Any]) -> list[dict[str, Any]]:
    """Run fn() once under `jax.profiler.trace` and return the device
    kernels it launched, in start order: the Perfetto trace's complete
    events ("ts", "dur" in us, "name") on GPU stream threads, named like
    "Stream #N(...)". Empty on CPUs, or when the trace has no GPU stream."""
    import jax

    if jax.default_backend() == "cpu":
        return []
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            wait(fn())
        files = glob.glob(os.path.join(tmp, "**", "*.trace.json.gz"), recursive=True)
        if not files:
            return []
        with gzip.open(files[0], "rt") as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e.get("pid"), e.get("tid"))] = e.get("args", {}).get("name", "")
    stream = {k for k, v in names.items() if "Stream" in v}
    kernels = [e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in stream]
    return sorted(kernels, key=lambda e: float(e["ts"]))


def device_kernels(fn: Callable[[], Any]) -> dict[str, Any] | None:
    """`traced_kernels` of fn() summed by name: {"kernels": {name:
    [launches, total us]}, "launches", "busy_us" (their summed durations),
    "span_us" (first kernel's start to last kernel's end)}. None on CPUs,
    or when the trace has no GPU stream."""
    kernels = traced_kernels(fn)
    if not kernels:
        return None
    total: dict[str, list] = {}
    for e in kernels:
        t = total.setdefault(e.get("name", "?"), [0, 0.0])
        t[0] += 1
        t[1] += float(e.get("dur", 0.0))
    start = float(kernels[0]["ts"])  # in start order
    end = max(float(e["ts"]) + float(e.get("dur", 0.0)) for e in kernels)
    return {
        "kernels": dict(sorted(total.items(), key=lambda x: -x[1][1])),
        "launches": len(kernels),
        "busy_us": sum(t[1] for t in total.values()),
        "span_us": end - start,
    }


def print_kernels(profile: dict[str, Any], per: int = 1, what: str = "step") -> None:
    """`device_kernels`'s table: launches and us per `what` (totals / per), heaviest first."""
    print(f"  kernels (launches/{what}, us/{what}), by time:", flush=True)
    for name, (count, dur) in profile["kernels"].items():
        print(f"    {count / per:6.2f} {dur / per:7.2f}  {name[:90]}", flush=True)


# ----------------------------------------------------------------------------
# the timing helper
# ----------------------------------------------------------------------------
def wait(result: Any) -> None:
    """Default `sync` of `time_calls`: block until every JAX array in `result`
    is computed (JAX dispatches asynchronously). A no-op before JAX is
    imported, so drivers without JAX (the CuPy loop) can use the helper."""
    jax = sys.modules.get("jax")
    if jax is not None and result is not None:
        jax.block_until_ready(result)


def summarize(times_s: Sequence[float]) -> dict[str, Any]:
    """Statistics of call times in seconds: n, total, min, median, p90, max,
    mean. p90 is the nearest rank, the ceil(0.9 n)-th smallest time (no
    interpolation). With no times every statistic but n and total is None."""
    t = sorted(float(x) for x in times_s)
    out: dict[str, Any] = dict(n=len(t), total_s=sum(t))
    if not t:
        return dict(out, min_s=None, median_s=None, p90_s=None, max_s=None, mean_s=None)
    return dict(
        out,
        min_s=t[0],
        median_s=statistics.median(t),
        p90_s=t[-(-9 * len(t) // 10) - 1],  # ceil(0.9 n) in integers
        max_s=t[-1],
        mean_s=sum(t) / len(t),
    )


def time_calls(
    fn: Callable[[], Any],
    *,
    warmup: int = 0,
    repeats: int | None = 1,
    budget_s: float = math.inf,
    until: Callable[[], bool] | None = None,
    before: Callable[[], Any] | None = None,
    after: Callable[[Any], Any] | None = None,
    sync: Callable[[Any], Any] = wait,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Call `fn()` `warmup` times, then up to `repeats` times timed (None: no
    limit but `until` and `budget_s`); return their statistics.

    Each call is timed with `clock` from just before `fn()` until `sync(result)`
    returns (default `wait`: `jax.block_until_ready`, so a call's time holds
    the device work it dispatched). Warm-up calls are timed too (`warmup_s`;
    the first one usually compiles) but stay out of the statistics; a warm-up
    call longer than budget_s / 2 ends the warm-up (it was warm-up enough).
    The timed calls stop early when `until()` is true (checked before every
    call, so there may be none) or, after the first, when one more call as
    long as the last would take their total past `budget_s`. `before()` runs
    before each timed call and `after(result)` after it, both outside the
    timed region (wait for idle CPUs; read results back).

    Returns `summarize(times_s)` plus "times_s" (in call order), "warmup_s"
    and "warmup" (warm-up calls made).
    """
    if warmup < 0 or (repeats is not None and repeats < 0):
        raise ValueError(f"warmup={warmup} and repeats={repeats} must be >= 0")
    if repeats is None and until is None and budget_s == math.inf:
        raise ValueError("repeats=None needs `until` or a finite `budget_s` to stop")
    warm: list[float] = []
    for _ in range(warmup):
        t0 = clock()
        sync(fn())
        warm.append(clock() - t0)
        if warm[-1] > budget_s / 2:
            break
    times: list[float] = []
    for _ in itertools.count() if repeats is None else range(repeats):
        if until is not None and until():
            break
        if times and sum(times) + times[-1] > budget_s:
            break
        if before is not None:
            before()
        t0 = clock()
        result = fn()
        sync(result)
        times.append(clock() - t0)
        if after is not None:
            after(result)
    return dict(summarize(times), times_s=times, warmup_s=warm, warmup=len(warm))


# ----------------------------------------------------------------------------
# the machine
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
    end = time.monotonic() + max_wait_s
    while True:
        idle = cpu_idle()
        if idle is None or idle >= threshold or time.monotonic() >= end:
            return None if idle is None else round(idle, 2)
        time.sleep(1.0)


def forget_compiled() -> None:
    """Drop JAX's compiled programs and free what they held: the next call
    compiles afresh (each `jbrain bench` row pays its own compile)."""
    import jax

    jax.clear_caches()
    gc.collect()


def targets_for(platform_name: str) -> dict[int, float]:
    return CPU_TARGETS_US if platform_name == "cpu" else GPU_TARGETS_US


def device_name() -> str:
    """The device in words: the GPU's kind, or the CPU's model and cores."""
    import jax

    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"CPU: {cpu_model()}, {os.cpu_count()} cores"
    return str(dev.device_kind)


def check_out(path: str) -> None:
    """ValueError (one line) unless the folder of an --out file exists."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--out={path!r}: its folder {folder} does not exist: create it")


def write_json(path: str, result: dict[str, Any]) -> None:
    """Write atomically (a partial run leaves the last complete file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=str)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------
# jbrain bench rows
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
    record_sheet: bool = False,
) -> dict[str, Any]:
    """Time the jbrain step at N = n_neurons on one propagation path (see the
    module docstring). Returns one JSON-ready row. A burst longer than
    row_budget_s / 2 ends the warm-up, and fewer reps run when they would
    take longer than row_budget_s. idle_threshold > 0 (shared CPU machines):
    before each timed burst, wait until the CPUs are that idle.
    record_sheet: with the plan's `record_sheet` on (the row says so)."""
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}: use one of {', '.join(PATHS)}")
    b = bench_engine.StepBrain(n_neurons, path=path, fan_in=fan_in, seed=seed)
    if record_sheet:  # the plan's field is the whole switch (jbrain/plan.py)
        b.plan = dataclasses.replace(b.plan, record_sheet=True)
    forget_compiled()
    init = time_calls(b.init)
    rates: list[np.ndarray] = []
    idles: list[float | None] = []
    run = time_calls(
        lambda: b.burst(steps),
        warmup=max(1, math.ceil(warmup / steps)),  # the compiling burst is the first
        repeats=reps,
        budget_s=row_budget_s,
        before=(lambda: idles.append(wait_for_idle(idle_threshold))) if idle_threshold > 0 else None,
        after=lambda _: rates.append(b.last_rates()[0]),
    )
    status = b.status()
    rate = np.concatenate(rates)
    init_s, first_s = init["min_s"], run["warmup_s"][0]
    per_step = 1e6 / steps
    row = dict(
        impl="jbrain",
        path=path,
        N=n_neurons,
        K=fan_in,
        steps=steps,
        reps=run["n"],
        warmup_steps=run["warmup"] * steps,
        unroll=min(b.unroll(), steps),
        init_s=round(init_s, 3),
        first_s=round(first_s, 3),
        start_to_first_s=round(init_s + first_s, 3),
        compile_s_est=round(max(0.0, first_s - run["min_s"]), 3),
        us_per_step_best=run["min_s"] * per_step,
        us_per_step_median=run["median_s"] * per_step,
        us_per_step_p90=run["p90_s"] * per_step,
        rate_mean=float(rate.mean()),
        rate_max=float(rate.max()),
        status=status,
        status_names=b.status_names(status),
        loadavg=loadavg(),
    )
    if record_sheet:
        row["record_sheet"] = True
    if idles:
        row["cpu_idle_before_reps"] = idles
    if run["n"] < reps:
        row["note"] = f"{run['n']} of {reps} reps (row budget {row_budget_s:.0f} s)"
    b.close()
    forget_compiled()
    return row


def skipped_row(impl: str, path: str, n: int, why: str, **extra: Any) -> dict[str, Any]:
    return dict(impl=impl, path=path, N=n, skipped=why, **extra)


def sheet_overhead(rows: Sequence[dict[str, Any]], row: dict[str, Any]) -> float | None:
    """A record_sheet row's best us/step over the plain row's of the same
    (impl, N, path), minus 1 (0.05: 5% slower); None without both."""
    if not row.get("record_sheet") or "us_per_step_best" not in row:
        return None
    for r in rows:
        same = (r["impl"], r["N"], r.get("path")) == (row["impl"], row["N"], row.get("path"))
        if same and not r.get("record_sheet") and "us_per_step_best" in r:
            return row["us_per_step_best"] / r["us_per_step_best"] - 1.0
    return None


def _path_label(r: dict[str, Any]) -> str:
    return r.get("path", "") + ("+sheet" if r.get("record_sheet") else "")


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
    """ "Alive, not exploding" over per-step `rates` (T,) and spike counts `spikes` (T,).

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
    b = bench_engine.StepBrain(n_neurons, seed=seed)
    total = warmup + steps
    wait(b.init())
    rates, spikes = [], []

    def keep(_: Any) -> None:
        r, s = b.last_rates()
        rates.append(r)
        spikes.append(s)

    run = time_calls(lambda: b.burst(burst), repeats=math.ceil(total / burst), after=keep)
    status = b.status()
    out = alive_stats(
        np.concatenate(rates)[:total],
        np.concatenate(spikes)[:total],
        target=b.target_rate,
        warmup=warmup,
        window=window,
        nonfinite=b.nonfinite(status),
    )
    out.update(
        N=n_neurons,
        K=b.fan_in,
        path=b.path(),
        seed=seed,
        status=status,
        status_names=b.status_names(status),
        mean_threshold_end=b.mean_threshold(),
        wall_s=round(run["total_s"], 2),
    )
    b.close()
    forget_compiled()
    return out


# ----------------------------------------------------------------------------
# peers (subprocesses)
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
        cmd = [python, script, "--sizes", ",".join(map(str, sizes)), "--steps", str(steps),
               "--reps", str(reps), "--warmup", str(warmup), "--seed", str(seed), "--json", js]  # fmt: skip
        t0 = time.monotonic()
        rc, tail = _run_logged(cmd, dict(os.environ), timeout_s, os.path.join(tmp, "log"))
        raw: dict[str, Any] = dict(returncode=rc, wall_s=round(time.monotonic() - t0, 1), log_tail=tail)
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
    start = time.monotonic()
    for api in apis:  # api outer: every size of the fast style before the slow-compiling one
        for n in sizes:
            left = budget_s - (time.monotonic() - start)
            impl = f"brainpy {api}"
            if left < 20:
                rows.append(skipped_row(impl, "-", n, f"BrainPy budget ({budget_s:.0f} s) spent"))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                env["OUT"] = tmp
                cmd = [python, script, "--sizes", str(n), "--api", api, "--T", str(T),
                       "--warmup", str(warmup), "--reps", str(reps), "--seed", str(seed)]  # fmt: skip
                t0 = time.monotonic()
                rc, tail = _run_logged(cmd, env, min(timeout_s, left), os.path.join(tmp, "log"))
                raw: dict[str, Any] = dict(
                    N=n, api=api, returncode=rc, wall_s=round(time.monotonic() - t0, 1)
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
                build, first = r.get("build_s"), r.get("compile_plus_first_chunk_s")
                rows.append(
                    dict(
                        impl=impl,
                        path=str(r.get("backend")),
                        N=n,
                        K=r.get("K"),
                        steps=r.get("T"),
                        reps=r.get("reps"),
                        warmup_steps=r.get("warmup_steps"),
                        init_s=build,
                        first_s=first,
                        start_to_first_s=round((build or 0) + (first or 0), 3),
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
    """The markdown table of all rows (jbrain and peers), then a comparison
    of jbrain's best path with the peers and targets at each N."""
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
            lines.append(f"| {r['impl']} | {_path_label(r)} | {r['N']:,} | - | - | | | | {why} |")
            continue
        st = r.get("status")
        st = "" if st is None else ("ok" if st == 0 else ",".join(r.get("status_names", [])) or str(st))
        lines.append(
            f"| {r['impl']} | {_path_label(r)} | {r['N']:,} | {r['us_per_step_best']:.1f} | "
            f"{r['us_per_step_median']:.1f} | {_f(r.get('init_s'), '.2f')} | "
            f"{_f(r.get('start_to_first_s'), '.2f')} | {_f(r.get('rate_mean'), '.4f')} | {st} |"
        )
    targets = targets_for(dev.get("platform", "gpu"))
    sizes = sorted({r["N"] for r in rows})
    ok = [r for r in rows if "us_per_step_best" in r and not r.get("record_sheet")]
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
                "" if tgt is None else f"<= {tgt:g} " + ("met" if jb["us_per_step_best"] <= tgt else "MISSED")
            )
            ratio = f"{jb['us_per_step_best'] / bpr['us_per_step_best']:.2f}x" if bpr else ""
            lines.append(
                f"| {n:,} | {jb['us_per_step_best']:.1f} ({jb['path']}) | {mark} | "
                f"{_f(bpr and bpr['us_per_step_best'], '.1f')} | "
                f"{_f(bpd and bpd['us_per_step_best'], '.1f')} | "
                f"{_f(cp and cp['us_per_step_best'], '.1f')} | {ratio} |"
            )
    sheet = [(r, sheet_overhead(rows, r)) for r in rows if r.get("record_sheet") and "us_per_step_best" in r]
    if sheet:
        lines += [
            "",
            "| N | path | us/step best | with --record_sheet | overhead |",
            "|---|---|---|---|---|",
        ]
        for r, over in sheet:
            plain = "" if over is None else f"{r['us_per_step_best'] / (1.0 + over):.1f}"
            lines.append(
                f"| {r['N']:,} | {r['path']} | {plain} | {r['us_per_step_best']:.1f} | "
                f"{'' if over is None else f'{100 * over:+.1f}%'} |"
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


def format_report(result: dict[str, Any]) -> str:
    """Alive block (if any), then the tables: what `jbrain bench` prints last."""
    parts = []
    if result.get("alive"):
        parts.append(format_alive(result["alive"]))
    parts.append(format_table(result))
    return "\n\n".join(parts)


def main(argv: Sequence[str]) -> None:
    """`python -m experiments.benchkit BENCH.json`: print the report of a (partial) run."""
    if len(argv) != 2:
        print("usage: python -m experiments.benchkit BENCH.json", file=sys.stderr)
        sys.exit(2)
    with open(argv[1], encoding="utf-8") as f:
        print(format_report(json.load(f)))


if __name__ == "__main__":
    main(sys.argv)
