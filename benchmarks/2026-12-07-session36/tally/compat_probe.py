"""Where a Pallas run leaves XLA's in tests/test_compat.py's first case
(seed 7, 150 steps, a 200-step reply to "hello brain", 150 steps): the
hashes of both, the first logged step whose spike count differs and the
largest difference of each logged column. Args: the backends (default
pallas_gpu xla); run from the tree under test with PYTHONPATH=."""

import io
import sys

import numpy as np

sys.path.insert(0, "tests")
from test_compat import CASES, fingerprint  # noqa: E402

names = sys.argv[1:] or ["pallas_gpu", "xla"]
runs = {}
for backend in names:
    got = fingerprint(CASES[0], backend, f"/tmp/compat_{backend}")
    runs[backend] = np.loadtxt(io.StringIO(got["text"]), skiprows=1)
    print(backend, {k: v for k, v in got.items() if k != "text"})
a, b = runs[names[0]], runs[names[-1]]
differ = np.nonzero(a[:, 1] != b[:, 1])[0]
print("steps logged", len(a), "first spike-count differences:", differ[:5], a[differ[:1]], b[differ[:1]])
print("max |diff| per column (step, spikes, rate, means)", np.abs(a - b).max(axis=0))
