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

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, REPO)
from jbrain.text import ALPHABET, as_said  # noqa: E402

QUIETS = [None, 2, 3, 4, 5, 6, 8, 12]
ROWS = {"trained": "said_counts", "corrupted": "corrupted_counts", "after 20 more": "after_more_counts"}


def decode(windows: list[dict[str, int]], quiet: int | None) -> str:
    """`Codec.decode_windows` of a teachable brain on recorded windows."""
    tops, winners = [], []
    for w in windows:
        top = max(w.values(), default=0)
        tops.append(top)  # ties: the lowest group, as np.argmax
        winners.append(min((ALPHABET.index(c) for c, v in w.items() if v == top), default=0))
    loudest = max(tops)
    silent = lambda t: quiet is not None and t * quiet < loudest  # noqa: E731
    return "".join(ALPHABET[0] if silent(t) else ALPHABET[i] for t, i in zip(tops, winners, strict=True))


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
