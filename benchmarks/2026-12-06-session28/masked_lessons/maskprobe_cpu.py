"""Probe: lessons that blank one relay position (cue dropout) on some
presentations. argv: MASK SEED PRESENTATIONS [JSON config changes].
MASK: none | alt (every 2nd lesson of a pair) | all (every lesson after the first)."""

import json
import sys
import time

import numpy as np

sys.path.insert(0, "tests")
from conftest import preset_config

from jbrain import learn
from jbrain.evals import associations
from jbrain.text import Codec, to_bytes

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
mask, seed, pres = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
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
    **extra,
)
rng = np.random.default_rng(1000 + seed)
seen: dict = {}
orig_encode = Codec.encode


def teach(session, cue, answer, *, codec=None):
    codec = codec or Codec.for_circuit(session.circuit)
    k = seen[cue] = seen.get(cue, 0) + 1
    n = len(to_bytes(cue))
    blank = None
    if n >= 2 and ((mask == "alt" and k % 2 == 0) or (mask == "all" and k > 1)):
        blank = int(rng.integers(min(n, codec.relay_positions)))
    stims = orig_encode(codec, cue, teach=answer)
    if blank is not None:
        c = codec.input_channels
        stims[:, c * (1 + blank) : c * (2 + blank)] = 0
    m = session.run(codec.reply_steps, stims, teaching=True)
    return codec.decode(m["out_counts"])


learn.teach = teach
t = time.time()
r = associations.evaluate(
    cfg,
    pairs=PAIRS,
    presentations=pres,
    interference_pairs=10,
    retain_steps=0,
    warmup=0,
    seed=seed,
    plan_options={"spike_buffer": 0.3},
)
print(
    json.dumps(
        {
            "mask": mask,
            "seed": seed,
            "P": pres,
            **extra,
            "exact": r["exact"],
            "curve": [c["exact"] for c in r["curve"]],
            "corrupted": r["corrupted_exact"],
            "ideal": r["corrupted_matcher_exact"],
            "interference": r["interference_exact"],
            "untrained": r["untrained_exact"],
            "ablated": r["ablated_exact"],
            "s": round(time.time() - t),
            "miss": [
                (x["corrupted_cue"], x["corrupted_said"])
                for x in r["taught"]
                if x["corrupted_said"] != x["reply"].ljust(8)
            ],
        }
    ),
    flush=True,
)
