"""Where a reply's idle time sits: trace bursts with and without stims, list gaps."""
import collections, glob, gzip, json, os, sys, tempfile, time
import numpy as np
from absl import app, flags
sys.path.insert(0, os.getcwd())
from experiments import bench_engine, common, benchkit  # noqa
FLAGS = flags.FLAGS
common.define_brain_flags()
FLAGS.set_default("plasticity", True)

def trace(fn):
    import jax
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(fn())
        f = glob.glob(os.path.join(tmp, "**", "*.trace.json.gz"), recursive=True)[0]
        ev = json.load(gzip.open(f, "rt"))
    ev = ev["traceEvents"] if isinstance(ev, dict) else ev
    names = {(e.get("pid"), e.get("tid")): e.get("args", {}).get("name", "") for e in ev
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    ks = sorted([e for e in ev if e.get("ph") == "X" and "Stream" in names.get((e.get("pid"), e.get("tid")), "")],
                key=lambda e: float(e["ts"]))
    return ks, names

def report(tag, ks):
    busy = sum(float(e.get("dur", 0)) for e in ks)
    span = float(ks[-1]["ts"]) + float(ks[-1].get("dur", 0)) - float(ks[0]["ts"])
    gaps = []
    for a, b in zip(ks, ks[1:]):
        g = float(b["ts"]) - (float(a["ts"]) + float(a.get("dur", 0)))
        gaps.append((g, a["name"][:50], b["name"][:50]))
    by_next = collections.Counter()
    for g, a, b in gaps:
        by_next[b] += g
    print(f"== {tag}: {len(ks)} kernels busy {busy/1e3:.2f} ms span {span/1e3:.2f} ms gaps {sum(g for g,_,_ in gaps)/1e3:.2f} ms", flush=True)
    print("   gap total by next kernel:", [(k, round(v)) for k, v in by_next.most_common(8)])
    print("   largest gaps:", [(round(g, 1), a, b) for g, a, b in sorted(gaps, reverse=True)[:8]])
    arr = np.array([g for g, _, _ in gaps])
    print("   gap percentiles 50/90/99:", np.percentile(arr, [50, 90, 99]).round(2).tolist())
    streams = collections.Counter((e.get("pid"), e.get("tid")) for e in ks)
    print("   streams:", len(streams))

def main(argv):
    import jax
    from jbrain import brain
    config = common.brain_config_from_flags()
    with tempfile.TemporaryDirectory() as wd:
        chat = bench_engine.ChatBrain(config, seed=0, workdir=wd, reply_steps=200, reply_chars=8)
        chat.birth()
        s = chat.session
        stims = chat.encode("hello")
        long = np.concatenate([stims] * 5)
        for _ in range(3):
            chat.reply("hello"); s.run(200); s.run(1000, long)
            jax.block_until_ready(chat.burst_alone(stims))
        def t(fn, n=10):
            ts = []
            for _ in range(n):
                t0 = time.perf_counter(); jax.block_until_ready(fn()); ts.append(time.perf_counter() - t0)
            return round(np.median(ts) * 1e3, 3)
        print("ms median: reply", t(lambda: chat.reply("hello")), "| burst_alone stims", t(lambda: chat.burst_alone(stims)),
              "| run(200) no stims", t(lambda: s.run(200)), "| run(200, stims)", t(lambda: s.run(200, stims)),
              "| run(1000, stims)", t(lambda: s.run(1000, long)), "| run(1000)", t(lambda: s.run(1000)), flush=True)
        if not os.environ.get("GAPS_TRACE"):
            chat.close(); return
        report("burst_alone stims 200", trace(lambda: chat.burst_alone(stims))[0])
        report("run(200) no stims", trace(lambda: s.run(200))[0])
        report("run(1000, stims)", trace(lambda: s.run(1000, long))[0])
        report("run(1000) no stims", trace(lambda: s.run(1000))[0])
        chat.close()

if __name__ == "__main__":
    app.run(main)
