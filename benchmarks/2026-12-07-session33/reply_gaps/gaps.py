"""Where a reply's time goes: bursts with and without a message's input,
200 and 1,000 steps, timed (median of 10, ms); with GAPS_TRACE=1 each is
also traced and its idle gaps between device kernels listed.

    PYTHONPATH=. python gaps.py --flagfile=experiments/configs/default.flags
"""

import collections
import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.getcwd())
from experiments import bench_engine, benchkit, common  # noqa: E402

FLAGS = flags.FLAGS
common.define_brain_flags()
FLAGS.set_default("plasticity", True)


def report(tag, ks):
    end = lambda e: float(e["ts"]) + float(e.get("dur", 0))  # noqa: E731
    busy = sum(float(e.get("dur", 0)) for e in ks)
    span = end(ks[-1]) - float(ks[0]["ts"])
    pairs = zip(ks, ks[1:], strict=False)
    gaps = [(float(b["ts"]) - end(a), a["name"][:50], b["name"][:50]) for a, b in pairs]
    by_next = collections.Counter()
    for g, _, b in gaps:
        by_next[b] += g
    idle = sum(g for g, _, _ in gaps)
    print(f"== {tag}: {len(ks)} kernels busy {busy / 1e3:.2f} ms", end=" ")
    print(f"span {span / 1e3:.2f} ms gaps {idle / 1e3:.2f} ms")
    print("   gap total by next kernel:", [(k, round(v)) for k, v in by_next.most_common(8)])
    print("   largest gaps:", [(round(g, 1), a, b) for g, a, b in sorted(gaps, reverse=True)[:8]])
    cuts = np.percentile([g for g, _, _ in gaps], [50, 90, 99])
    print("   gap percentiles 50/90/99:", cuts.round(2).tolist())


def main(argv):
    del argv
    import jax

    config = common.brain_config_from_flags()
    with tempfile.TemporaryDirectory() as wd:
        chat = bench_engine.ChatBrain(config, seed=0, workdir=wd, reply_steps=200, reply_chars=8)
        chat.birth()
        s = chat.session
        stims = chat.encode("hello")
        long = np.concatenate([stims] * 5)
        for _ in range(3):  # compile every program
            chat.reply("hello")
            s.run(200)
            s.run(1000, long)
            jax.block_until_ready(chat.burst_alone(stims))

        def ms(fn, n=10):
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                ts.append(time.perf_counter() - t0)
            return round(float(np.median(ts)) * 1e3, 3)

        cases = {
            "reply": lambda: chat.reply("hello"),
            "burst_alone stims": lambda: chat.burst_alone(stims),
            "run(200) no stims": lambda: s.run(200),
            "run(200, stims)": lambda: s.run(200, stims),
            "run(1000, stims)": lambda: s.run(1000, long),
            "run(1000)": lambda: s.run(1000),
        }
        print("ms median: " + " | ".join(f"{k} {ms(fn)}" for k, fn in cases.items()), flush=True)
        if os.environ.get("GAPS_TRACE"):
            for k in ("burst_alone stims", "run(200) no stims", "run(1000, stims)", "run(1000)"):
                report(k, benchkit.traced_kernels(cases[k]))
        chat.close()


if __name__ == "__main__":
    app.run(main)
