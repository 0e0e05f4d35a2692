"""Chat reply latency: one reply after warm-up, and `jbrain chat` start to first reply.

    PYTHONPATH=. python scripts/bench_reply.py --flagfile=experiments/configs/small.flags
    PYTHONPATH=. python scripts/bench_reply.py --flagfile=experiments/configs/default.flags  # GPU

1. Reply latency (in process): a Session with the chat's defaults (plasticity
   on, a workdir so the reply is logged), `--warmup` replies (compile), then
   `--repeats` replies to texts of different lengths. One reply = encode +
   one `--reply_steps` burst + metrics to host + log lines + decode, i.e. what
   `jbrain chat` does per message. Targets: <= 10 ms at 200k neurons on an
   H100/H200; <= 1 s with the small preset on a 2-core CPU.
2. Time to first reply (`--ttfr_runs` subprocesses): from launching
   `python -m experiments.cli chat --live=false` with the same brain flags to its
   first `Brain:` line, imports, birth and compile included. Every launch
   shares one new, empty `--compile_cache` folder: the first launch compiles
   everything (cold), the others load the programs it cached (warm). Targets:
   <= 10 s on that CPU; <= 2 s to the first burst at 200k on an H200 with a
   warm cache.

3. With --kernels (GPUs): one more reply under the profiler, its device
   kernels listed with their launches and time, and their summed time
   against the span from the first kernel's start to the last one's end.

Writes bench_reply.json to --out (default: $OUT, else /tmp) and prints a table.
The machine's load average is recorded: other work on the CPU skews timings.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import bench_engine, benchkit, common  # noqa: E402

FLAGS = flags.FLAGS
common.define_brain_flags()
FLAGS.set_default("plasticity", True)  # as in jbrain chat
flags.DEFINE_integer("reply_steps", 200, "Steps of one reply burst.")
flags.DEFINE_integer("reply_chars", 8, "Characters per reply.")
flags.DEFINE_integer("warmup", 3, "Replies before timing (the first one compiles).")
flags.DEFINE_integer("repeats", 20, "Timed replies.")
flags.DEFINE_integer("ttfr_runs", 3, "`jbrain chat` launches timed to their first reply; 0 skips.")
flags.DEFINE_float("ttfr_timeout_s", 120.0, "Give up on one launch after this long.")
flags.DEFINE_bool("kernels", False, "GPUs: profile one more reply and list its device kernels.")
flags.DEFINE_string("out", "", "Folder for bench_reply.json; empty: $OUT, else /tmp.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def texts(n: int) -> list[str]:
    """n messages of different lengths (0 to ~1,000 characters, some non-ASCII)."""
    base = ["hello", "dog", "god", "why?", "1 = 1 yes", "caf\u00e9 \U0001f600", "", "tab\there"]
    return [
        (base[i % len(base)] + " ") * (1 + (i * 37) % 120) if i % 3 else base[i % len(base)] for i in range(n)
    ]


def bench_reply() -> dict:
    """Birth, `--warmup` replies, `--repeats` timed replies, then the same
    bursts alone (device work + dispatch, no host metrics, log or decode:
    reply minus burst is the host's share)."""
    config = common.brain_config_from_flags()
    with tempfile.TemporaryDirectory() as workdir:
        chat = bench_engine.ChatBrain(
            config,
            seed=FLAGS.seed,
            workdir=workdir,
            reply_steps=FLAGS.reply_steps,
            reply_chars=FLAGS.reply_chars,
        )
        birth = benchkit.time_calls(chat.birth)
        messages = iter(texts(FLAGS.warmup) + texts(FLAGS.repeats))
        answers: list[str] = []
        replies = benchkit.time_calls(
            lambda: chat.reply(next(messages)),
            warmup=FLAGS.warmup,
            repeats=FLAGS.repeats,
            after=answers.append,
        )
        stims = iter([chat.encode(text) for text in texts(FLAGS.repeats)])
        bursts = benchkit.time_calls(lambda: chat.burst_alone(next(stims)), repeats=FLAGS.repeats)
        profile = benchkit.device_kernels(lambda: chat.reply("hello")) if FLAGS.kernels else None
        final_rate = chat.last_rate()
        chat.close()
    ms = lambda x: round(x * 1e3, 2)  # noqa: E731
    return {
        "birth_s": round(birth["min_s"], 3),
        "first_reply_s": round(replies["warmup_s"][0], 3) if replies["warmup_s"] else None,
        "reply_ms_min": ms(replies["min_s"]),
        "reply_ms_median": ms(replies["median_s"]),
        "reply_ms_p90": ms(replies["p90_s"]),
        "reply_ms_max": ms(replies["max_s"]),
        "burst_ms_median": ms(bursts["median_s"]),
        "repeats": replies["n"],
        "distinct_replies": len(set(answers)),
        "final_rate": final_rate,
        # one reply's kernels: summed durations against first start to last end (the rest: gaps)
        "reply_kernels": profile,
    }


def brain_flag_args() -> list[str]:
    """The brain flags as set here, for the `jbrain chat` subprocess."""
    args = []
    for flag in FLAGS.get_flags_for_module(common.__name__):
        if flag.name != "workdir" and flag.value is not None:  # unset optional flags: not passed
            args.append(flag.serialize())
    return args


def bench_ttfr() -> list[float]:
    """Seconds from launching `jbrain chat` (piped input) to its first reply
    line, for each launch; the first with an empty compilation cache."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    workdirs: list[tempfile.TemporaryDirectory] = []
    cache = tempfile.TemporaryDirectory()

    def launch() -> tuple[subprocess.Popen, bytes]:
        workdirs.append(tempfile.TemporaryDirectory())
        cmd = [sys.executable, "-m", "experiments.cli", "chat", *brain_flag_args(),
               f"--reply_steps={FLAGS.reply_steps}", f"--reply_chars={FLAGS.reply_chars}",
               "--live=false", f"--workdir={workdirs[-1].name}", f"--compile_cache={cache.name}"]  # fmt: skip
        p = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO
        )
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        return p, p.stdout.readline()  # blocks until the first reply (or exit)

    def finish(launched: tuple[subprocess.Popen, bytes]) -> None:
        p, line = launched
        try:  # closes stdin: end of input, the chat exits
            _, err = p.communicate(timeout=FLAGS.ttfr_timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            raise RuntimeError("jbrain chat did not exit after end of input") from None
        finally:
            workdirs.pop().cleanup()
        if not line.startswith(b"Brain: "):
            raise RuntimeError(f"jbrain chat gave no reply: {err.decode(errors='replace').strip()[-300:]}")

    runs = benchkit.time_calls(launch, repeats=FLAGS.ttfr_runs, after=finish, sync=lambda _: None)
    cache.cleanup()
    return [round(t, 3) for t in runs["times_s"]]


def main(argv: list[str]) -> None:
    del argv
    import jax

    dev = jax.devices()[0]
    result = {
        "device": dev.device_kind if dev.platform != "cpu" else "cpu",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "n_neurons": FLAGS.n_neurons,
        "fan_in": FLAGS.fan_in,
        "reply_steps": FLAGS.reply_steps,
        "reply_chars": FLAGS.reply_chars,
        "plasticity": FLAGS.plasticity,
        "stdp": FLAGS.stdp,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    result.update(bench_reply())
    if FLAGS.ttfr_runs > 0:
        runs = bench_ttfr()
        result["ttfr_s_runs"] = runs  # the first: cold compilation cache
        result["ttfr_s_cold"] = runs[0]
        result["ttfr_s_warm_median"] = statistics.median(runs[1:]) if len(runs) > 1 else None
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out = FLAGS.out or os.environ.get("OUT") or "/tmp"
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "bench_reply.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(
        "| device | N | reply steps | reply ms median (min, p90) | burst alone ms | first reply s "
        "| start to first reply s, cold / warm cache |"
    )
    print("|---|---|---|---|---|---|---|")
    cold, warm = result.get("ttfr_s_cold"), result.get("ttfr_s_warm_median")
    print(
        f"| {result['device']} ({result['cpu_count']} CPUs) | {FLAGS.n_neurons:,} | {FLAGS.reply_steps} | "
        f"{result['reply_ms_median']:.1f} ({result['reply_ms_min']:.1f}, {result['reply_ms_p90']:.1f}) | "
        f"{result['burst_ms_median']:.1f} | {result['first_reply_s']} | "
        f"{'-' if cold is None else f'{cold:.2f}'} / {'-' if warm is None else f'{warm:.2f}'} |"
    )
    print(f"load average before/after: {result['load_before']} / {result['load_after']}; wrote {path}")
    profile = result["reply_kernels"]
    if profile is not None:
        print(
            f"one reply: {profile['launches']} kernels, busy {profile['busy_us'] / 1e3:.2f} ms of a "
            f"{profile['span_us'] / 1e3:.2f} ms span (first kernel's start to last kernel's end)"
        )
        benchkit.print_kernels(profile, what="reply")


if __name__ == "__main__":
    common.run_app("bench_reply", main, sys.argv)
