"""jbrain bench: microseconds per step of the jbrain step inside a scan, beside
peer baselines run in the same process tree on the same device.

For each N in --sizes and each path in --paths (event, gather: the jbrain
step; bcoo: the same step with plain `BCOO @` propagation) it times --reps
bursts of --steps steps after --warmup steps, and the time from start to the
first burst (init + compile + first burst). Baselines (--baselines) run first,
as subprocesses: `cupy` (scripts/cupy_seed.py, the seed's own CuPy loop; only
where cupy is importable) and `brainpy` (the BrainPy 2.9 peer script named by
--brainpy_script, its wheels on --brainpy_path). --alive_steps > 0 adds the
"alive, not exploding" check on the default brain at --alive_neurons.
--record_sheet times each (N, path) again with the whole brain's spikes
recorded (the plan's record_sheet; rows PATH+sheet, their overhead in a table).

Writes JSON (--out; default $OUT/bench.json if OUT is set, else
WORKDIR/bench.json) after every row, and prints markdown tables last
(`python -m experiments.benchkit BENCH.json` prints them again). What is
measured: experiments/benchkit.py; method and results: BENCHMARKS.md.
"""

from __future__ import annotations

import datetime
import os
import sys
import time

from absl import flags

from experiments import benchkit, common

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["200000", "1000000", "10000000"], "Numbers of neurons N to time.")
flags.DEFINE_list("paths", list(benchkit.PATHS), "Propagation paths: event, gather, bcoo (plain BCOO @).")
flags.DEFINE_integer("fan_in", 32, "Synapses per neuron K.")
flags.DEFINE_integer("steps", 1000, "Timed steps per rep (one burst, one lax.scan).")
flags.DEFINE_integer("reps", 3, "Timed bursts per row (best, median and p90 reported).")
flags.DEFINE_integer("warmup", 1000, "Untimed steps first (the compiling burst counts).")
flags.DEFINE_integer("seed", 0, "Seed of the brains.")
flags.DEFINE_integer("bcoo_max_neurons", 1_000_000, "Skip the bcoo path above this N (it is slow).")
flags.DEFINE_float(
    "row_budget_s",
    60.0,
    "Seconds of timed bursts per row: fewer reps past it; a burst over half ends the warm-up.",
)
flags.DEFINE_float(
    "wait_idle",
    0.0,
    "Shared CPU machines: before each timed rep wait (<= 60 s) until the CPUs are this idle.",
)
flags.DEFINE_list("baselines", ["cupy"], "Baselines to run first: cupy, brainpy (empty: none).")
flags.DEFINE_integer("baseline_steps", 300, "CuPy baseline: timed steps per rep.")
flags.DEFINE_integer("baseline_warmup", 300, "CuPy baseline: untimed steps first.")
flags.DEFINE_float("baseline_timeout_s", 240.0, "Timeout of one baseline subprocess.")
flags.DEFINE_string("brainpy_script", "", "Path of brainpy_seed.py (../shared/peers/; copy it into .bench/).")
flags.DEFINE_string("brainpy_path", "", "PYTHONPATH entry holding the BrainPy wheels, e.g. /tmp/site.")
flags.DEFINE_list("brainpy_api", ["raw", "dyn"], "BrainPy styles: raw, dyn, state.")
flags.DEFINE_integer("brainpy_T", 500, "BrainPy: steps per timed chunk.")
flags.DEFINE_integer("brainpy_warmup", 500, "BrainPy: untimed steps first.")
flags.DEFINE_integer("brainpy_reps", 3, "BrainPy: timed chunks.")
flags.DEFINE_float("brainpy_budget_s", 300.0, "BrainPy: total seconds for all its subprocesses.")
flags.DEFINE_boolean(
    "record_sheet", False, "Also time each row with --record_sheet's recording on (rows PATH+sheet)."
)
flags.DEFINE_integer("alive_steps", 0, "0: skip; else steps of the alive check after its warm-up.")
flags.DEFINE_integer("alive_neurons", 200_000, "N of the alive check (default brain otherwise).")
flags.DEFINE_integer("alive_warmup", 1000, "Warm-up steps of the alive check.")
flags.DEFINE_string("out", "", "JSON path; default $OUT/bench.json if OUT is set, else WORKDIR/bench.json.")
flags.DEFINE_string("workdir", "runs/bench", "Folder for bench.json when --out and $OUT are unset.")


def _positive_ints(name: str, values: list[str]) -> list[int]:
    try:
        out = [int(v.replace("_", "")) for v in values]
    except ValueError:
        raise ValueError(
            f"--{name}={','.join(values)} must be a comma list of integers, e.g. 200000,1000000"
        ) from None
    if not out or min(out) <= 0:
        raise ValueError(f"--{name} must list positive integers (got {','.join(values)!r})")
    return out


def _check_flags() -> tuple[list[int], list[str], list[str], list[str]]:
    sizes = _positive_ints("sizes", FLAGS.sizes)
    for p in FLAGS.paths:
        if p not in benchkit.PATHS:
            raise ValueError(f"--paths: unknown path {p!r}; use a comma list of {', '.join(benchkit.PATHS)}")
    for b in FLAGS.baselines:
        if b not in benchkit.BASELINES:
            raise ValueError(
                f"--baselines: unknown baseline {b!r}; use a comma list of "
                f"{', '.join(benchkit.BASELINES)}, or --baselines= for none"
            )
    for a in FLAGS.brainpy_api:
        if a not in ("raw", "dyn", "state"):
            raise ValueError(f"--brainpy_api: unknown style {a!r}; use raw, dyn or state")
    if "brainpy" in FLAGS.baselines and not FLAGS.brainpy_script:
        raise ValueError("--baselines=brainpy needs --brainpy_script=PATH/brainpy_seed.py")
    for name in ("steps", "reps", "fan_in", "baseline_steps", "brainpy_T", "brainpy_reps"):
        if getattr(FLAGS, name) <= 0:
            raise ValueError(f"--{name}={getattr(FLAGS, name)} must be a positive integer")
    if not 0.0 <= FLAGS.wait_idle < 1.0:
        raise ValueError(f"--wait_idle={FLAGS.wait_idle} must be in [0, 1): a fraction of idle CPU time")
    for name in ("warmup", "alive_steps", "baseline_warmup", "brainpy_warmup"):
        if getattr(FLAGS, name) < 0:
            raise ValueError(f"--{name}={getattr(FLAGS, name)} must be >= 0")
    if FLAGS.alive_steps and FLAGS.alive_steps < 1000:
        raise ValueError(
            f"--alive_steps={FLAGS.alive_steps}: use 0 (skip) or >= 1000 (one moving-mean window)"
        )
    return sizes, list(FLAGS.paths), list(FLAGS.baselines), list(FLAGS.brainpy_api)


def _out_path() -> str:
    if FLAGS.out:
        folder = os.path.dirname(os.path.abspath(FLAGS.out))
        common.prepare_workdir(folder)
        return FLAGS.out
    if os.environ.get("OUT"):
        return os.path.join(common.prepare_workdir(os.environ["OUT"]), "bench.json")
    return os.path.join(common.prepare_workdir(FLAGS.workdir), "bench.json")


def main(argv: list[str]) -> None:
    del argv
    sizes, paths, baselines, apis = _check_flags()
    out = _out_path()
    t_start = time.monotonic()
    result: dict = dict(
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        command=" ".join(sys.argv),
        flags={f.name: f.value for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])},
        device={},
        rows=[],
        baselines={},
        notes=[],
    )

    def save() -> None:
        result["wall_s"] = round(time.monotonic() - t_start, 1)
        benchkit.write_json(out, result)

    # Baselines first: each is its own process (own CUDA context), and this
    # process has not touched the device yet, so JAX's memory pool is not held.
    if "cupy" in baselines:
        print(f"cupy seed loop at N = {sizes} ...", flush=True)
        rows, raw = benchkit.run_cupy_baseline(
            sizes,
            steps=FLAGS.baseline_steps,
            reps=FLAGS.reps,
            warmup=FLAGS.baseline_warmup,
            seed=FLAGS.seed,
            timeout_s=FLAGS.baseline_timeout_s,
        )
        result["rows"] += rows
        result["baselines"]["cupy"] = raw
        save()
    if "brainpy" in baselines:
        print(f"BrainPy peer ({','.join(apis)}) at N = {sizes} ...", flush=True)
        rows, raws = benchkit.run_brainpy_baseline(
            sizes,
            apis,
            script=FLAGS.brainpy_script,
            pythonpath=FLAGS.brainpy_path,
            T=FLAGS.brainpy_T,
            warmup=FLAGS.brainpy_warmup,
            reps=FLAGS.brainpy_reps,
            seed=FLAGS.seed,
            timeout_s=FLAGS.baseline_timeout_s,
            budget_s=FLAGS.brainpy_budget_s,
        )
        result["rows"] += rows
        result["baselines"]["brainpy"] = raws
        save()

    result["device"] = benchkit.device_info()
    print(f"jbrain on {result['device']['device_kind']} (jax {result['device']['jax']})", flush=True)
    save()
    if FLAGS.alive_steps:  # before the rows: cheap on a GPU, and kept if a time limit cuts the rows
        print(
            f"alive check at N = {FLAGS.alive_neurons:,}, "
            f"{FLAGS.alive_warmup} + {FLAGS.alive_steps} steps ...",
            flush=True,
        )
        try:
            result["alive"] = benchkit.alive_check(
                FLAGS.alive_neurons, steps=FLAGS.alive_steps, warmup=FLAGS.alive_warmup, seed=FLAGS.seed
            )
        except Exception as e:  # noqa: BLE001
            result["alive"] = dict(error=f"{type(e).__name__}: {str(e)[:500]}")
        save()
        print(benchkit.format_alive(result["alive"]), flush=True)
    for n in sizes:
        for path in paths:
            for sheet in (False, True) if FLAGS.record_sheet else (False,):
                row = _row(n, path, sheet)
                result["rows"].append(row)
                save()
                label = path + ("+sheet" if sheet else "")
                if "us_per_step_best" in row:
                    over = benchkit.sheet_overhead(result["rows"], row)
                    print(
                        f"  jbrain {label:6s} N={n:>10,}: {row['us_per_step_best']:10.1f} us/step best, "
                        f"{row['us_per_step_median']:10.1f} median; rate {row['rate_mean']:.4f}; "
                        f"start to first burst {row['start_to_first_s']:.2f} s; status {row['status']}"
                        + ("" if over is None else f"; {100 * over:+.1f}% vs {path}"),
                        flush=True,
                    )
                else:
                    print(
                        f"  jbrain {label:6s} N={n:>10,}: {row.get('skipped') or row.get('error')}",
                        flush=True,
                    )

    save()
    print(f"\nwrote {out}\n")
    print(benchkit.format_report(result), flush=True)


def _row(n: int, path: str, sheet: bool) -> dict:
    """One timed row (or a skipped / failed one) of the jbrain step."""
    extra = {"record_sheet": True} if sheet else {}
    if path == "bcoo" and n > FLAGS.bcoo_max_neurons:
        return benchkit.skipped_row(
            "jbrain", path, n, f"N > --bcoo_max_neurons={FLAGS.bcoo_max_neurons:,}", **extra
        )
    try:
        return benchkit.time_brain(
            n,
            path,
            fan_in=FLAGS.fan_in,
            steps=FLAGS.steps,
            reps=FLAGS.reps,
            warmup=FLAGS.warmup,
            seed=FLAGS.seed,
            row_budget_s=FLAGS.row_budget_s,
            idle_threshold=FLAGS.wait_idle,
            record_sheet=sheet,
        )
    except Exception as e:  # noqa: BLE001 (an OOM at one size must not lose the others)
        return dict(impl="jbrain", path=path, N=n, error=f"{type(e).__name__}: {str(e)[:500]}", **extra)


def launch(argv: list[str]) -> None:
    common.run_app("bench", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
