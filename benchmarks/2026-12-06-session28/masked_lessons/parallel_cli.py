"""Probe for the next device call: `jbrain eval ...` with the whole cue on
the relay at once (position p's character on relay block p for the whole
input phase; the sheet still hears the text one character at a time).
argv: the eval's own arguments. Run from the repo root (PYTHONPATH=.)."""

import sys

import numpy as np

from jbrain.text import CHANNEL_OF_BYTE, Codec, to_bytes

serial = Codec.encode


def parallel(self, text, teach=None):
    stims = serial(self, text, teach=teach)
    c = self.input_channels
    data = np.frombuffer(to_bytes(text), np.uint8)[: self.relay_positions]
    stims[: self.input_steps, c : c * (1 + self.relay_positions)] = 0
    for p, b in enumerate(data):
        stims[: self.input_steps, c * (1 + p) + CHANNEL_OF_BYTE[c][b]] = 1.0
    return stims


Codec.encode = parallel
from experiments import eval as ev  # noqa: E402

ev.launch(["jbrain eval", *sys.argv[1:]])
