"""Where a chat reply's time goes (development probe; the benchmark is bench_reply.py).

    PYTHONPATH=. python3 scripts/profile_reply.py [N [donate] [kernel]]   (default 200000, plasticity on)

1. Host phases of `text.reply` timed one by one over 20 replies (medians):
   encode, burst launch (dispatch, returns before the device finishes), device
   wait, metrics to host, log append, decode.
2. A profiler trace of 3 replies: device events per reply, summed by kernel,
   and the device's busy time against the wall time.
Writes $OUT/profile_reply.trace.json.gz.
"""

import glob
import os
import shutil
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profile_step import summarize  # noqa: E402

from jbrain import brain  # noqa: E402
from jbrain.config import BrainConfig  # noqa: E402
from jbrain.session import Session  # noqa: E402
from jbrain.text import Codec, reply  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
STEPS = 200
DONATE = "donate" in sys.argv[2:]  # A/B: the donating burst (Session keeps its input)
if "kernel" in sys.argv[2:]:  # A/B: STDP as kernels.event_stdp
    from jbrain import kernels

    kernels.EVENT_STDP = True
OUT = os.environ.get("OUT", "/tmp")


def phases(session, codec, text):
    t = [time.perf_counter()]
    stims = codec.encode(text)
    t.append(time.perf_counter())
    run = brain.burst_packed if DONATE else brain.burst_packed_keeping_input
    state, packed, raster = run(session.config, session.wiring, session.state, stims, length=STEPS)
    t.append(time.perf_counter())
    jax.block_until_ready((state, packed))
    t.append(time.perf_counter())
    packed = np.asarray(packed)  # as Session._burst
    raster = np.asarray(raster) if raster.size else np.zeros(raster.shape, raster.dtype)
    host = dict(brain.unpack_metrics(packed, raster, xp=np).items())
    t.append(time.perf_counter())
    session.state = state
    if session.log is not None:
        session.log.append(session.step + 1, host)
    session.step += STEPS
    t.append(time.perf_counter())
    codec.decode(host["out_counts"])
    t.append(time.perf_counter())
    return np.diff(t) * 1e3


def main():
    config = BrainConfig(n_neurons=N, plasticity=True)
    codec = Codec.for_config(config, reply_steps=STEPS)
    with tempfile.TemporaryDirectory() as workdir:
        session = Session.new(config, seed=1, workdir=workdir)
        for text in ("hello", "warm", "up"):
            reply(session, codec, text)
        rows = np.array([phases(session, codec, f"message {i} " * (i % 7)) for i in range(20)])
        names = ["encode", "launch", "device wait", "to host", "log", "decode"]
        med = np.median(rows, axis=0)
        kind = jax.devices()[0].device_kind
        print(f"N={N} plasticity on, donate={DONATE}, device {kind}: host phases (median ms of 20)")
        for name, ms in zip(names, med, strict=True):
            print(f"  {name:12s} {ms:7.3f}")
        print(f"  {'sum':12s} {med.sum():7.3f}")
        whole = []
        for i in range(10):
            t0 = time.perf_counter()
            reply(session, codec, f"whole {i}")
            whole.append((time.perf_counter() - t0) * 1e3)
        print(f"  text.reply as a whole: median {statistics.median(whole):.3f} ms")
        d = tempfile.mkdtemp()
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for i in range(3):
                reply(session, codec, f"traced {i}")
        (path,) = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
        dst = os.path.join(OUT, "profile_reply.trace.json.gz")
        shutil.copy(path, dst)
        print("device events per reply (3 traced replies):")
        summarize(dst, 3, top=25)
        session.close()


if __name__ == "__main__":
    main()
