"""Session 27's cue-layer runs (with prototype.patch applied to acf0382): `jbrain
eval associations` on the CPU proxy brain, argv: CUE_UNITS SEED [JSON of config
changes]; one JSON line each (runs.jsonl). Run from the repo root."""

import json
import sys
import time

sys.path.insert(0, "tests")
from conftest import preset_config

from jbrain.evals import associations

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
cu = int(sys.argv[1])
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
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
    cue_units=cu,
    **extra,
)
t = time.time()
r = associations.evaluate(
    cfg,
    pairs=PAIRS,
    presentations=4,
    interference_pairs=0,
    retain_steps=0,
    warmup=0,
    seed=seed,
    plan_options={"spike_buffer": 0.3},
)
print(
    json.dumps(
        {
            "cue_units": cu,
            "seed": seed,
            **extra,
            "exact": r["exact"],
            "curve": [c["exact"] for c in r["curve"]],
            "corrupted": r["corrupted_exact"],
            "ideal": r["corrupted_matcher_exact"],
            "untrained": r["untrained_exact"],
            "ablated": r["ablated_exact"],
            "s": round(time.time() - t),
            "miss": [
                (x["corrupted_cue"], x["corrupted_said"])
                for x in r["taught"]
                if x["corrupted_said"] != x["reply"].ljust(8)
            ],
        }
    )
)
