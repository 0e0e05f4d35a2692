"""Session 27's cue-layer diagnostic (with prototype.patch applied to acf0382;
CUE_THETA, CUE_TARGET and R from the environment): teaches 10 pairs R rounds,
then counts the cue layer U's spikes for clean and corrupted cues, step by
step, against the taught code. Output: diag.log. Run from the repo root."""

import json
import sys

import numpy as np

sys.path.insert(0, "tests")
from conftest import preset_config

from jbrain import learn
from jbrain.plan import resolve
from jbrain.session import Session
from jbrain.text import Codec, cue_code

PAIRS = [
    ("hello", "hi"),
    ("cat", "meow"),
    ("dog", "woof"),
    ("car", "drive"),
    ("moon", "night"),
    ("tree", "green"),
    ("fish", "swim"),
    ("bird", "fly"),
    ("milk", "white"),
    ("book", "read"),
]
extra = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
cfg = preset_config(
    "cortex_small",
    sheet=(25, 40),
    n_neurons=1000,
    radius=4,
    teach=True,
    plasticity=True,
    memory_neurons=2048,
    teach_fan_in=512,
    cue_positions=8,
    memory_fan_in=64,
    cue_units=512,
    **extra,
)
s = Session.new(cfg, seed=0, plan=resolve(cfg.circuit(), spike_buffer=0.3))
codec = Codec.for_circuit(s.circuit)
off = s.circuit.offset("U")
nu = cfg.cue_units


def u_counts(text, teach=None):
    stims = codec.encode(text, teach=teach)
    counts = np.zeros(nu)
    per = []
    for t in range(codec.reply_steps):
        s.run(1, stims[t : t + 1], teaching=teach is not None)
        sp = np.asarray(s.state.neurons.spikes[off : off + nu]) > 0
        counts += sp
        per.append(int(sp.sum()))
    return counts, per


for _ in range(int(__import__("os").environ.get("R", "4"))):
    for c, r in PAIRS:
        s.run(200)
        learn.teach(s, c, r, codec=codec)
for cue in ["cat", "cxt", "moon", "moog", "hello", "zzz"]:
    s.run(200)
    counts, per = u_counts(cue)
    code = set(
        cue_code(
            codec.relayed(cue if cue not in ("cxt", "moog") else {"cxt": "cat", "moog": "moon"}[cue]),
            nu,
            cfg.cue_k,
        ).tolist()
    )
    top = set(np.argsort(-counts)[: cfg.cue_k].tolist())
    print(
        cue,
        "U spikes",
        int(counts.sum()),
        "per step (input / reply)",
        sum(per[:100]),
        sum(per[100:]),
        "top-k in code",
        len(top & code),
        "code spikes",
        int(counts[list(code)].sum()),
    )
w = np.asarray(s.state.projections["relay_cue"].weights)
print(f"relay_cue w: min {w.min():.3f} max {w.max():.3f} mean|w| {np.abs(w).mean():.4f}")
counts, per = u_counts("cat", teach="meow")
print("teaching cat: U spikes", int(counts.sum()), sum(per[:100]), sum(per[100:]))
print(s.circuit.population("U").neuron)
