"""tests/test_compat.py's first case (event, static) on the Pallas backend:
which of its hashes equal d666d30's GPU record. Args: labels of the runs
("none"; each sets env JB_RATE, which no shipped code reads)."""

import os
import sys

sys.path.insert(0, "tests")
from test_compat import CASES, _expected, _name, fingerprint  # noqa: E402

want = _expected(_name(CASES[0]), gpu=True)
for variant in sys.argv[1:]:
    os.environ["JB_RATE"] = "" if variant == "none" else variant
    got = fingerprint(CASES[0], "pallas_gpu", f"/tmp/fp_{variant}")
    got.pop("text", None)
    print(variant, {k: got[k] == want[k] for k in want}, flush=True)
