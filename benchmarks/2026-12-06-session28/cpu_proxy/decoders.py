"""Session 28: score other decoders on an associations record's window
counts (said_counts, corrupted_counts, after_more_counts). A window is a
space when its loudest group fires under 1/QUIET of the reply's loudest
window, or under LEAST spikes. argv: RECORD.json ..."""

import json
import sys

RULES = {  # name: (QUIET, LEAST)
    "shipped: < 1/4 of loudest is a space": (4, 1),
    "< 1/8": (8, 1),
    "< 1/12, and < 2 spikes": (12, 2),
    "< 1/12, and < 3 spikes": (12, 3),
    "argmax, < 2 spikes a space": (10**9, 2),
    "argmax, < 3 spikes a space": (10**9, 3),
}
ROWS = (
    ("said", "said_counts"),
    ("corrupted_said", "corrupted_counts"),
    ("after_more_said", "after_more_counts"),
)


def decode(windows: list[dict], quiet: int, least: int) -> str:
    tops = [max(w.values()) if w else 0 for w in windows]
    loud = max(tops)
    out = []
    for w, top in zip(windows, tops, strict=True):
        ch = next(iter(w)) if w else " "
        out.append(" " if top * quiet < loud or top < least else ch)
    return "".join(out)


for path in sys.argv[1:]:
    with open(path) as f:
        r = json.load(f)
    t = r["taught"]
    print(path, "recorded:", r["exact"], r["corrupted_exact"], r["interference_exact"])
    for name, (q, least) in RULES.items():
        row = []
        for said, counts in ROWS:
            if t[0].get(counts) is None:
                row.append(None)
                continue
            hits = [decode(x[counts], q, least) == x["reply"].ljust(len(x[said])) for x in t]
            row.append(sum(hits) / len(hits))
        print(f"  {name:40s} trained {row[0]}  corrupted {row[1]}  interference {row[2]}")
