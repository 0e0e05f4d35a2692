"""Probe: the relay hears the whole cue at once (position p's character on
relay block p for the whole input phase) instead of each character in its
time slot. argv: MODE(serial|parallel) SEED PRESENTATIONS [JSON config changes]."""

import json
import sys
import time

import numpy as np

sys.path.insert(0, "tests")
from conftest import preset_config

from jbrain.evals import associations
from jbrain.text import CHANNEL_OF_BYTE, Codec, to_bytes

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
mode, seed, pres = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
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
serial = Codec.encode


def parallel(self, text, teach=None):
    stims = serial(self, text, teach=teach)
    c = self.input_channels
    data = np.frombuffer(to_bytes(text), np.uint8)[: self.relay_positions]
    stims[: self.input_steps, c : c * (1 + self.relay_positions)] = 0
    for p, b in enumerate(data):
        stims[: self.input_steps, c * (1 + p) + CHANNEL_OF_BYTE[c][b]] = 1.0
    return stims


if mode == "parallel":
    Codec.encode = parallel
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
miss = [
    (x["corrupted_cue"], x["corrupted_said"])
    for x in r["taught"]
    if x["corrupted_said"] != x["reply"].ljust(8)
]
out = {"mode": mode, "seed": seed, "P": pres, **extra}
for k in ("exact", "corrupted_exact", "corrupted_matcher_exact", "interference_exact", "untrained_exact"):
    out[k] = r[k]
out["ablated_exact"] = r["ablated_exact"]
out["curve"] = [c["exact"] for c in r["curve"]]
out["s"] = round(time.time() - t)
out["miss"] = miss
print(json.dumps(out), flush=True)
