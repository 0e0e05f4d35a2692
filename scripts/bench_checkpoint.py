"""Checkpoint save and restore times, and how long a save blocks the stepping loop.

    PYTHONPATH=. python scripts/bench_checkpoint.py                  # the 200k seed brain
    PYTHONPATH=. python scripts/bench_checkpoint.py --flagfile=experiments/configs/small.flags

For the brain of the flags (default 200k neurons x 32 synapses, plasticity on
so the weights change), in one process:

1. save (`--repeats` times): `Session.save()` returns after the device-to-host
   copy, the crc32 checksums and orbax's synchronous part ("blocking"); orbax
   writes the files in a background thread ("write", until the checkpoint is
   renamed into place). The host copy and the checksums are also timed alone.
   Size on disk of one checkpoint.
2. restore (`--repeats` times): `checkpoint.restore` (read, verify every crc32,
   place on the default device) and the whole `Session.open` of the workdir
   (find the latest + restore + a CheckpointManager). On a GPU, also a
   restore onto the CPU device.
3. stepping loop: `--loop_bursts` bursts of `--burst` steps without saving
   (baseline per burst), then with a save issued between bursts: how long the
   loop stopped for the save call, and how much slower the bursts that ran
   while the background write was going on were (CPU contention; ~0 on GPU).

Writes bench_checkpoint.json to --out (default: $OUT, else /tmp) and prints a
table. The checkpoints go to a temporary folder under --tmp (default /tmp):
its disk speed is part of the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile

from absl import app, flags, logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import bench_engine, benchkit, common  # noqa: E402

FLAGS = flags.FLAGS
common.define_brain_flags()
FLAGS.set_default("plasticity", True)
flags.DEFINE_integer("repeats", 3, "Timed saves and restores.")
flags.DEFINE_integer("burst", 200, "Steps per burst in the loop measurement.")
flags.DEFINE_integer("loop_bursts", 10, "Baseline bursts (no save).")
flags.DEFINE_string("out", "", "Folder for bench_checkpoint.json; empty: $OUT, else /tmp.")
flags.DEFINE_string("tmp", "/tmp", "Where the benchmark's workdir (and checkpoints) go.")


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def bench() -> dict:
    import jax

    config = common.brain_config_from_flags()
    workdir = tempfile.mkdtemp(prefix="bench_checkpoint_", dir=FLAGS.tmp)
    out: dict = {
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "n_neurons": config.n_neurons,
        "fan_in": config.fan_in,
        "plasticity": config.plasticity,
        "burst": FLAGS.burst,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "tmp": FLAGS.tmp,
    }
    time_calls, burst = benchkit.time_calls, FLAGS.burst
    try:
        brain = bench_engine.CheckpointedBrain(config, seed=FLAGS.seed, workdir=workdir, keep=2)
        brain.open()
        brain.run(burst)  # compiles
        brain.run(burst)

        # 1. save: the blocking part, then until the background write is done
        host = {}
        copy = time_calls(lambda: host.update(brain.host_copy()))
        crc = time_calls(lambda: brain.checksums(host))
        paths, waits = [], []

        def written(path: str | None) -> None:
            paths.append(check_path(path))
            waits.append(time_calls(brain.wait, after=check_errors)["min_s"])

        blocking = time_calls(
            brain.save, repeats=FLAGS.repeats, before=lambda: brain.run(burst), after=written
        )
        out["save"] = {
            "blocking_s": blocking["times_s"],
            "write_s": [b + w for b, w in zip(blocking["times_s"], waits, strict=True)],
            "host_copy_state_s": copy["min_s"],
            "checksums_state_s": crc["min_s"],
            "checkpoint_bytes": _size(paths[-1]),
            "state_bytes": bench_engine.CheckpointedBrain.nbytes(host),
        }

        # 2. restore
        path = paths[-1]
        restore = time_calls(lambda: brain.restore(path), repeats=FLAGS.repeats)
        out["restore"] = {"restore_s": restore["times_s"]}
        if jax.default_backend() != "cpu":
            onto_cpu = time_calls(lambda: brain.restore(path, onto_cpu=True), repeats=FLAGS.repeats)
            out["restore"]["restore_onto_cpu_s"] = onto_cpu["times_s"]
        brain.close()
        opens = time_calls(brain.open, repeats=FLAGS.repeats, after=lambda _: brain.close())
        out["restore"]["session_open_s"] = opens["times_s"]

        # 3. the stepping loop: bursts alone, then a save between bursts
        brain.open()
        base = time_calls(lambda: brain.run(burst), warmup=1, repeats=FLAGS.loop_bursts)
        calls, extra, overlapped = [], [], []
        for _ in range(FLAGS.repeats):
            calls.append(time_calls(brain.save, after=check_path)["min_s"])
            during = time_calls(lambda: brain.run(burst), repeats=None, until=lambda: not brain.busy())
            check_errors(brain.wait())
            extra.append(during["total_s"] - during["n"] * base["median_s"])
            overlapped.append(during["n"])
        brain.close()
        out["loop"] = {
            "burst_s_median": base["median_s"],
            "burst_s": base["times_s"],
            "save_call_s": calls,
            "bursts_during_write": overlapped,
            "extra_s_during_write": extra,
        }
        out["load_avg_end"] = os.getloadavg()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def check_path(path: str | None) -> str:
    if not path:
        raise RuntimeError("Session.save() wrote no checkpoint")
    return path


def check_errors(errors: list) -> None:
    if errors:
        raise RuntimeError(f"checkpoint write failed: {errors}")


def table(r: dict) -> str:
    med = statistics.median
    ms = lambda xs: f"{1e3 * med(xs):8.1f} ms"  # noqa: E731
    sv, rs, lp = r["save"], r["restore"], r["loop"]
    rows = [
        f"checkpoint: {r['n_neurons']:,} neurons x {r['fan_in']} on {r['device']} ({r['backend']}), "
        f"{sv['checkpoint_bytes'] / 1e6:.1f} MB on disk (state {sv['state_bytes'] / 1e6:.1f} MB + wiring)",
        f"  save: blocking (copy + crc32 + orbax sync)   {ms(sv['blocking_s'])}",
        f"          of which host copy of the state      {1e3 * sv['host_copy_state_s']:8.1f} ms",
        f"          of which crc32 of the state          {1e3 * sv['checksums_state_s']:8.1f} ms",
        f"        until written (background)            {ms(sv['write_s'])}",
        f"  restore: checkpoint.restore (read+verify)   {ms(rs['restore_s'])}",
        f"           Session.open (find+restore+mgr)    {ms(rs['session_open_s'])}",
    ]
    if "restore_onto_cpu_s" in rs:
        rows.append(f"           onto the CPU device               {ms(rs['restore_onto_cpu_s'])}")
    rows += [
        f"  loop: one {r['burst']}-step burst               {ms([lp['burst_s_median']])}",
        f"        stopped for the save call             {ms(lp['save_call_s'])}",
        f"        extra time of the {med(lp['bursts_during_write']):.0f} burst(s) overlapping the write "
        f"{1e3 * med(lp['extra_s_during_write']):.1f} ms",
        f"  (medians of {len(sv['blocking_s'])}; load average {r['load_avg_start'][0]:.2f} -> "
        f"{r['load_avg_end'][0]:.2f} on {r['cpus']} CPUs)",
    ]
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every step of a save at INFO
    out_dir = FLAGS.out or os.environ.get("OUT") or "/tmp"
    r = bench()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "bench_checkpoint.json")
    with open(path, "w") as f:
        json.dump(r, f, indent=1)
    print(table(r))
    print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
