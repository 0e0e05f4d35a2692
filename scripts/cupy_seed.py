"""Baseline: the seed's own CuPy loop, re-created (one step per Python
iteration, a host read of the firing rate every step).

The hobbyist's GPUNeuronBrain (../shared/seed/gpu-brain-notes.md): N neurons,
K = 32 random connections each in a sparse matrix, `cp.roll` neighbours,
noise, a global bias, a homeostatic threshold, stepped from a Python loop that
reads the firing rate back to the host every step (for its log and
controller). Model constants are the peers' seed model
(../shared/peers/brainpy_seed.py, P), threshold units, dt = 1 ms:

    I   = W @ s                       cupyx.scipy.sparse CSR (post x pre) matvec
    v  <- v - (v - v_rest)/tau + bias + noise_sd*xi + I + nbr*(roll(s, 1) + roll(s, -1))
    s   = v > theta ;  v <- v_reset where s
    theta <- theta + eta*(s - target)
    rate = float(s.mean())            host read: one device sync per step

W: fixed in-degree K, presynaptic ids uniform (with replacement), weights
U[0, w_max), built on the device (rows are the K synapses of one post, so the
CSR needs no sort). Timing (experiments/benchkit.py's `time_calls`):
`--warmup` untimed steps, then `--reps` runs of `--steps` steps, host clock
around each run (the per-step host read already synchronises; the device is
synchronised once more at the end); best and median us/step. `build_s` is
the wiring and state build, `first_s` the first step (CuPy compiles its
kernels on first use, or loads them from its cache).

Usage (GPU machine, cupy-cuda12x/13x):
    python3 scripts/cupy_seed.py --sizes 200000,1000000,10000000 --steps 300 --reps 3
    python3 scripts/cupy_seed.py --numpy --sizes 2000 --steps 50   # CPU dry run of the same code
Writes JSON to --json (default $OUT/cupy_seed.json, else /tmp/cupy_seed.json)
after every size, and prints a table last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments.benchkit import time_calls  # noqa: E402

K = 32
P = dict(
    tau=20.0,
    v_rest=0.0,
    v_reset=0.0,
    theta0=1.0,
    bias=0.03,
    noise_sd=0.05,
    nbr=0.04,
    eta=0.01,
    target=0.05,
    w_max=0.05,
)


def backend(use_numpy: bool):
    """(xp, sparse module, synchronize, device name, version string)."""
    if use_numpy:
        import numpy as xp
        import scipy.sparse as sp

        return xp, sp, lambda: None, f"CPU (numpy {xp.__version__}, dry run)", f"numpy {xp.__version__}"
    import cupy as xp
    import cupyx.scipy.sparse as sp

    props = xp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return xp, sp, xp.cuda.Device().synchronize, name, f"cupy {xp.__version__}"


def build(xp, sp, n: int, seed: int):
    """W (CSR, post x pre, float32), v, theta, s: the seed brain at birth."""
    if xp.__name__ == "numpy":
        rng = xp.random.default_rng(seed)
        pre = rng.integers(0, n, size=n * K, dtype=xp.int32)
        w = rng.random(n * K, dtype=xp.float32) * xp.float32(P["w_max"])
        v = rng.random(n, dtype=xp.float32) * xp.float32(0.5)
    else:
        xp.random.seed(seed)
        pre = xp.random.randint(0, n, size=n * K, dtype=xp.int32)
        w = xp.random.random_sample(n * K, dtype=xp.float32) * xp.float32(P["w_max"])
        v = xp.random.random_sample(n, dtype=xp.float32) * xp.float32(0.5)
    indptr = xp.arange(0, n * K + 1, K, dtype=xp.int32)
    W = sp.csr_matrix((w, pre, indptr), shape=(n, n))
    theta = xp.full(n, P["theta0"], dtype=xp.float32)
    s = xp.zeros(n, dtype=xp.float32)
    return W, v, theta, s


def make_step(xp, n: int, seed: int):
    """One step of the seed loop, as a hobbyist writes it (separate array ops)."""
    if xp.__name__ == "numpy":
        rng = xp.random.default_rng(seed + 1)

        def normal():
            return rng.standard_normal(n, dtype=xp.float32)
    else:

        def normal():
            return xp.random.standard_normal(n, dtype=xp.float32)

    c = {k: xp.float32(v) for k, v in P.items()}

    def step(W, v, theta, s):
        i_syn = W.dot(s)  # CSR matvec
        i_nbr = c["nbr"] * (xp.roll(s, 1) + xp.roll(s, -1))
        noise = c["noise_sd"] * normal()
        v = v - (v - c["v_rest"]) / c["tau"] + c["bias"] + noise + i_syn + i_nbr
        spikes = v > theta
        v = xp.where(spikes, c["v_reset"], v)
        s = spikes.astype(xp.float32)
        theta = theta + c["eta"] * (s - c["target"])
        rate = float(s.mean())  # host read every step (the seed's log / controller)
        return v, theta, s, rate

    return step


def bench_one(xp, sp, sync, n: int, steps: int, reps: int, warmup: int, seed: int) -> dict:
    world = {}  # the loop's state: W, v, theta, s

    def birth():
        world["W"], world["v"], world["theta"], world["s"] = build(xp, sp, n, seed)

    step = make_step(xp, n, seed)
    rates: list[float] = []

    def run(k: int):
        w = world
        for _ in range(k):
            w["v"], w["theta"], w["s"], rate = step(w["W"], w["v"], w["theta"], w["s"])
            rates.append(rate)

    build_s = time_calls(birth, sync=lambda _: sync())["min_s"]
    first_s = time_calls(lambda: run(1), sync=lambda _: sync())["min_s"]
    run(max(0, warmup - 1))
    sync()
    del rates[:]
    timed = time_calls(lambda: run(steps), repeats=reps, sync=lambda _: sync())
    return dict(
        N=n,
        K=K,
        steps=steps,
        reps=reps,
        warmup_steps=max(1, warmup),
        init_s=round(build_s, 3),
        first_s=round(first_s, 3),
        start_to_first_s=round(build_s + first_s, 3),
        us_per_step_best=timed["min_s"] / steps * 1e6,
        us_per_step_median=timed["median_s"] / steps * 1e6,
        rate_mean=sum(rates) / len(rates),
        rate_max=max(rates),
        mean_threshold_end=float(world["theta"].mean()),
        nnz=int(world["W"].nnz),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="200000,1000000,10000000")
    ap.add_argument("--steps", type=int, default=300, help="timed steps per rep")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=300, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--numpy", action="store_true", help="CPU dry run with numpy/scipy (checks the code)")
    ap.add_argument("--json", default="", help="output path (default $OUT/cupy_seed.json)")
    args = ap.parse_args()
    if args.steps <= 0 or args.reps <= 0 or args.warmup < 0:
        ap.error("--steps and --reps must be > 0, --warmup >= 0")
    sizes = [int(x) for x in args.sizes.split(",")]
    out = args.json or os.path.join(os.environ.get("OUT") or "/tmp", "cupy_seed.json")

    xp, sp, sync, device, version = backend(args.numpy)
    info = dict(
        model="seed (peers' P)",
        params=P,
        K=K,
        device=device,
        version=version,
        python=platform.python_version(),
        rows=[],
    )
    print(json.dumps({k: v for k, v in info.items() if k != "rows"}), flush=True)
    for n in sizes:
        try:
            r = bench_one(xp, sp, sync, n, args.steps, args.reps, args.warmup, args.seed)
            print(
                f"cupy seed loop N={n:>10,}: {r['us_per_step_best']:9.1f} us/step best, "
                f"{r['us_per_step_median']:9.1f} median; rate {r['rate_mean']:.4f}; "
                f"mean theta {r['mean_threshold_end']:.3f}; build {r['init_s']} s, first {r['first_s']} s",
                flush=True,
            )
        except Exception as e:  # noqa: BLE001 (e.g. out of memory at one size: keep the others)
            traceback.print_exc(limit=3)
            r = dict(N=n, K=K, error=f"{type(e).__name__}: {str(e)[:500]}")
        info["rows"].append(r)
        with open(out + ".tmp", "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        os.replace(out + ".tmp", out)
        if not args.numpy:
            xp.get_default_memory_pool().free_all_blocks()

    print(f"\ndevice: {device}; {version}")
    print("| impl | N | us/step best | us/step median | build s | first step s | rate | mean theta |")
    print("|---|---|---|---|---|---|---|---|")
    for r in info["rows"]:
        if "error" in r:
            print(f"| cupy seed loop | {r['N']:,} | FAILED | | | | | {r['error'][:80]} |")
            continue
        print(
            f"| cupy seed loop | {r['N']:,} | {r['us_per_step_best']:.1f} | {r['us_per_step_median']:.1f} | "
            f"{r['init_s']:.2f} | {r['first_s']:.2f} | {r['rate_mean']:.4f} | {r['mean_threshold_end']:.3f} |"
        )
    print("wrote", out)


if __name__ == "__main__":
    main()
