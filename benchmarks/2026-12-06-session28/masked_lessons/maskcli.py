"""Probe: `jbrain eval ...` with lessons that blank one relay position (cue
dropout) on some presentations. argv: MASK then the eval's own arguments.
MASK: none | alt (a pair's 2nd, 4th, ... lesson) | all (every lesson after its first)."""

import json
import sys

import numpy as np

from jbrain import learn
from jbrain.text import Codec, to_bytes

mask = sys.argv[1]
rng = np.random.default_rng(1234)
seen: dict = {}
log = []


def teach(session, cue, answer, *, codec=None):
    codec = codec or Codec.for_circuit(session.circuit)
    k = seen[cue] = seen.get(cue, 0) + 1
    n = len(to_bytes(cue))
    blank = None
    if codec.relay_positions and n >= 2 and ((mask == "alt" and k % 2 == 0) or (mask == "all" and k > 1)):
        blank = int(rng.integers(min(n, codec.relay_positions)))
    stims = codec.encode(cue, teach=answer)
    if blank is not None:
        c = codec.input_channels
        stims[:, c * (1 + blank) : c * (2 + blank)] = 0
    log.append((cue, k, blank))
    m = session.run(codec.reply_steps, stims, teaching=True)
    return codec.decode(m["out_counts"])


learn.teach = teach
from experiments import eval as ev  # noqa: E402

try:
    ev.launch(["jbrain eval", *sys.argv[2:]])
finally:
    print(json.dumps({"mask": mask, "lessons": len(log), "blanked": sum(b is not None for _, _, b in log)}))
