"""Re-read recorded `jbrain eval associations` runs with other quiet
thresholds: each record keeps every test reply's window counts ({character:
spikes} of the groups that fired, `associations.spoken`), and the decoder
does not feed back into the brain, so a row decoded here is what the run
would have reported with that `text.QUIET` (None: argmax in every window).

    python benchmarks/2026-12-07-session33/quiet/requiet.py RECORD.json[.gz] ...
"""

import gzip
import json
import os
import sys

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, REPO)
from jbrain import text  # noqa: E402
from jbrain.text import ALPHABET, as_said  # noqa: E402

QUIETS = [None, 2, 3, 4, 5, 6, 8, 12]
ROWS = {"trained": "said_counts", "corrupted": "corrupted_counts", "after 20 more": "after_more_counts"}


def decode(windows: list[dict[str, int]], quiet: int | None) -> str:
    """`Codec.decode_windows` of a teachable brain (quiet None: of a brain
    without a motor layer, argmax in every window) on recorded windows."""
    counts = np.zeros((len(windows), len(ALPHABET)), np.int64)
    for r, w in enumerate(windows):
        for c, n in w.items():
            counts[r, ALPHABET.index(c)] = n
    text.QUIET = quiet or text.QUIET
    return text.Codec(teacher=quiet is not None).decode_windows(counts)


def exact(record: dict, counts: list, quiet: int | None) -> float:
    pairs = zip(counts, record["taught"], strict=True)
    hits = [decode(c, quiet) == as_said(p["reply"], len(c)) for c, p in pairs]
    return sum(hits) / len(hits)


def main(paths: list[str]) -> None:
    print("record | row | " + " | ".join("argmax" if q is None else f"1/{q}" for q in QUIETS))
    for path in paths:
        with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
            record = json.load(f)
        name = path.split("benchmarks/")[-1]
        for row, key in ROWS.items():
            counts = [p.get(key) for p in record["taught"]]
            if any(c is None for c in counts):
                continue
            print(f"{name} | {row} | " + " | ".join(f"{exact(record, counts, q):.2f}" for q in QUIETS))
        for c in record.get("curve") or []:
            if "counts" in c:
                scores = " | ".join(f"{exact(record, c['counts'], q):.2f}" for q in QUIETS)
                print(f"{name} | curve after {c['presentations']} | {scores}")


if __name__ == "__main__":
    main(sys.argv[1:])
