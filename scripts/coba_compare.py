"""The coba preset beside Brian2's COBA: mean E and I rates (Hz) over 1 s of
model time for seeds 1-3, and the wall seconds per model second (the
real-time factor: jbrain best of --reps more seconds, Brian2 its run
loop's timer), jbrain then Brian2 in the same run.

    .venv/bin/python scripts/coba_compare.py [--brian2_py=PY] [--out=FILE.json]

--brian2_py: a Python with brian2, "numpy<2.4" and cython (e.g. a venv made
with `pip install brian2 "numpy<2.4" cython`); without it, jbrain only.
Brian2's model: ../shared/peers/brian2_coba.py (--peers to move it).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np

from experiments.flagfiles import config_from_flagfile
from jbrain.plan import resolve
from jbrain.session import Session


def jbrain_rates(seed: int, steps: int, reps: int) -> tuple[float, float, list[float]]:
    """(E Hz, I Hz) over the first `steps` steps from birth, and the wall
    seconds of `reps` more bursts of `steps` steps (compiled by the first)."""
    config = config_from_flagfile("coba")
    session = Session.new(config, seed=seed, plan=resolve(config.circuit()))
    counts = session.run(steps)["pop_counts"].sum(axis=0)
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        session.run(steps)  # returns once the burst's metrics are on the host
        walls.append(time.perf_counter() - t0)
    seconds = steps * config.dt / 1000.0
    sizes = [p.size for p in session.circuit.populations]
    e, i = (float(c / n / seconds) for c, n in zip(counts, sizes, strict=True))
    return e, i, walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brian2_py", default="")
    ap.add_argument("--peers", default="../shared/peers")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--reps", type=int, default=3, help="timed model seconds per seed, after the first")
    ap.add_argument("--targets", default="cython", help="Brian2 targets: cython, cpp_standalone (comma list)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    result = {"jbrain": {}, "brian2": {}}
    for s in seeds:
        e, i, walls = jbrain_rates(s, 10_000, args.reps)
        result["jbrain"][s] = {"E": e, "I": i, "wall_s": walls}
        timed = f", {min(walls):.3f} s per model second" if walls else ""
        print(f"jbrain seed {s}: E {e:.2f} Hz, I {i:.2f} Hz{timed}", flush=True)
    if args.brian2_py:
        out = "/tmp/coba_compare_brian2"
        os.makedirs(out, exist_ok=True)
        subprocess.run(
            [args.brian2_py, os.path.join(args.peers, "brian2_coba.py"), "--seeds", args.seeds,
             "--targets", args.targets],
            env={**os.environ, "OUT": out}, check=True, stdout=sys.stderr,
        )  # fmt: skip
        with open(os.path.join(out, "brian2_coba.json")) as f:
            peer = json.load(f)
        result["brian2_raw"] = peer
    j = result["jbrain"]
    je, ji = np.mean([j[s]["E"] for s in seeds]), np.mean([j[s]["I"] for s in seeds])
    rtf = min(min(j[s]["wall_s"]) for s in seeds) if args.reps else float("nan")
    result["jbrain_rtf"] = rtf
    print(f"\n| simulator | E Hz (mean of {len(seeds)} seeds) | I Hz | wall s per model s (best) |")
    print("|---|---|---|---|")
    print(f"| jbrain coba preset ({jax.devices()[0].device_kind}) | {je:.2f} | {ji:.2f} | {rtf:.3f} |")
    if args.brian2_py:
        rows = [r for r in result["brian2_raw"]["rows"] if r.get("seed") in seeds]
        be, bi = np.mean([r["rate_e_hz"] for r in rows]), np.mean([r["rate_i_hz"] for r in rows])
        result["brian2"] = {"E": float(be), "I": float(bi)}
        result["jbrain_vs_brian2"] = {"E": float(je / be - 1.0), "I": float(ji / bi - 1.0)}
        version = rows[0].get("brian2", "") if rows else ""
        for target in args.targets.split(","):
            walls = [r["wall_s"] for r in rows if r.get("target") == target]
            rates = [r for r in rows if r.get("target") == target]
            te = np.mean([r["rate_e_hz"] for r in rates]) if rates else float("nan")
            ti = np.mean([r["rate_i_hz"] for r in rates]) if rates else float("nan")
            wall = f"{min(walls):.3f}" if walls else "-"
            print(f"| Brian2 {version} {target} | {te:.2f} | {ti:.2f} | {wall} |")
        print(f"| jbrain / Brian2 - 1 | {je / be - 1:+.1%} | {ji / bi - 1:+.1%} | |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
