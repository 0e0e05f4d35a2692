"""Where the tally's Pallas run leaves XLA's in tests/test_compat.py's first
case (seed 7, small() seed brain): the same run in bursts, then one step at
a time; after each, how many of v, theta differ, ctrl and rate, and at the
first differing step the values at one differing neuron. Args: the two
backends (default pallas_gpu xla); run from the tree under test with
PYTHONPATH=. (checked on the CPU with cpu_native xla)."""

import os
import sys

import numpy as np

sys.path.insert(0, "tests")
from conftest import small  # noqa: E402

from jbrain import plan as plans  # noqa: E402
from jbrain.session import Session  # noqa: E402
from jbrain.text import Codec  # noqa: E402

names = sys.argv[1:] or ["pallas_gpu", "xla"]


def snap(s):
    ns, h = s.state.neurons, s.state.homeostasis
    return dict(
        v=np.asarray(ns.v),
        theta=np.asarray(ns.theta),
        spikes=np.asarray(ns.spikes),
        ctrl=np.asarray(h.ctrl),
        rate=np.asarray(h.rate),
    )


def runs(segments):
    out = {}
    for b in names:
        config = small()
        plan = plans.resolve(config.circuit(), backend=b, propagation="event")
        os.makedirs(f"/tmp/probe_{b}", exist_ok=True)
        s = Session.new(config, seed=7, workdir=f"/tmp/probe_{b}", plan=plan)
        codec = Codec.for_circuit(s.circuit)
        snaps = []
        for n, stim in segments:
            s.run(n, codec.encode("hello brain") if stim else None)
            snaps.append(snap(s))
        s.close(save=False)
        out[b] = snaps
    return out


def compare(label, segments):
    got = runs(segments)
    a, b = got[names[0]], got[names[-1]]
    step = 0
    for (n, stim), x, y in zip(segments, a, b, strict=True):
        step += n
        dv = np.nonzero(x["v"] != y["v"])[0]
        dt = np.nonzero(x["theta"] != y["theta"])[0]
        ds = np.nonzero(x["spikes"] != y["spikes"])[0]
        same_c = x["ctrl"] == y["ctrl"]
        print(
            f"{label} step {step} stim={stim}: v differ {len(dv)}, theta {len(dt)}, spikes {len(ds)},"
            f" ctrl same {same_c} ({x['ctrl']!r} {y['ctrl']!r}), rate same {x['rate'] == y['rate']}"
        )
        if len(dv) or len(dt) or not same_c:
            for name, d in (("v", dv), ("theta", dt)):
                if len(d):
                    j = d[0]
                    print(
                        f"  {name}[{j}]: {x[name][j]!r} vs {y[name][j]!r}; spike {x['spikes'][j]},"
                        f" max|diff| {np.abs(x[name] - y[name]).max()!r};"
                        f" differing that spiked {int(x['spikes'][d].sum())}/{len(d)}"
                    )
            return step
    return None


first = compare("bursts", [(150, False), (200, True), (150, False)])
if first is not None:
    lo = {150: 0, 350: 150, 500: 350}[first]
    segs = [(lo, False)] if lo else []
    stim = lo == 150
    segs += [(1, stim)] * min(60, first - lo)
    compare("steps", [s for s in segs if s[0]])
