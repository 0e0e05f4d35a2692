"""Where a step's time goes: a JAX profiler trace of one burst, summed per kernel.

    PYTHONPATH=. python3 scripts/profile_step.py 200000:gather 10000000:event 200000:event:stdp:eager

Spec N:path[:stdp[:eager|deferred]]: stdp turns plasticity on, then --stdp.

For each N:path, runs a warm-up burst, then traces one 100-step burst with
`jax.profiler.trace(create_perfetto_trace=True)` and prints the device-side
(GPU stream) events by total time per step. Copies each perfetto trace to
$OUT (or /tmp) as prof_<N>_<path>.trace.json.gz. A development tool, not a
benchmark: tracing adds overhead to every launch.
"""

import collections
import glob
import gzip
import json
import os
import shutil
import sys
import tempfile

import jax

from jbrain import brain
from jbrain.config import BrainConfig

T = 100


def device_totals(trace_path: str) -> tuple[collections.Counter, collections.Counter, list[str]]:
    """(total us, count) per event name on the device streams of a perfetto
    trace (every event when there is no GPU, e.g. XLA:CPU thunks), and the
    device names."""
    with gzip.open(trace_path, "rt") as f:
        events = json.load(f)["traceEvents"]
    meta = [e for e in events if e.get("ph") == "M" and e.get("name") == "process_name"]
    names = {e["pid"]: e["args"]["name"] for e in meta}
    device = {pid for pid, n in names.items() if "GPU" in n or "gpu" in n}
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and (not device or e["pid"] in device):
            total[e["name"]] += e.get("dur", 0)
            count[e["name"]] += 1
    return total, count, sorted(names[p] for p in device)


def summarize(trace_path: str, steps: int, top: int = 18) -> None:
    total, count, devices = device_totals(trace_path)
    print(f"  device pids: {devices[:3]}")
    all_us = sum(total.values()) / steps
    print(f"  sum of device events: {all_us:.1f} us/step over {sum(count.values()) / steps:.1f} events/step")
    for name, dur in total.most_common(top):
        print(f"  {dur / steps:9.2f} us/step  {count[name] / steps:5.2f}/step  {name[:90]}")


def main() -> None:
    out = os.environ.get("OUT", "/tmp")
    os.makedirs(out, exist_ok=True)
    for spec in sys.argv[1:]:
        n, path, *extra = spec.split(":")
        mode = next((m for m in ("eager", "deferred") if m in extra), "auto")
        cfg = BrainConfig(n_neurons=int(n), propagation=path, plasticity="stdp" in extra, stdp=mode)
        w, s = brain.init_brain(cfg, seed=1)
        s, _ = brain.burst(cfg, w, s, None, length=T)
        s, _ = brain.burst(cfg, w, s, None, length=T)
        jax.block_until_ready(s)
        d = tempfile.mkdtemp()
        with jax.profiler.trace(d, create_perfetto_trace=True):
            s, _ = brain.burst(cfg, w, s, None, length=T)
            jax.block_until_ready(s)
        found = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
        print(f"{spec}: {len(found)} trace file(s)", flush=True)
        if found:
            dst = os.path.join(out, f"prof_{spec.replace(':', '_')}.trace.json.gz")
            shutil.copy(found[0], dst)
            summarize(dst, T)
        del w, s


if __name__ == "__main__":
    main()
