"""Session 31 probe (needs the archived memory_recurrent patch applied):
`experiments.eval` with the memory_recurrent weights'
spread printed every 20 lessons (fraction grown, fraction at the bound, mean)."""

import sys

import numpy as np

from jbrain import learn

_teach, n = learn.teach, [0]


def teach(session, *a, **k):
    out = _teach(session, *a, **k)
    n[0] += 1
    p = session.state.projections.get("memory_recurrent")
    if p is not None and n[0] % 20 == 0:
        w = np.asarray(p.weights)
        hi = w.max()
        at_max = np.mean(w >= hi * 0.999) if hi > 0 else 0.0
        print(
            f"rec after {n[0]} lessons: grown {np.mean(w > 0):.5f} at-max {at_max:.5f} "
            f"mean {w.mean():.5f} max {hi:.4f}",
            file=sys.stderr,
            flush=True,
        )
    return out


learn.teach = teach
from experiments import eval as ev  # noqa: E402

ev.launch(sys.argv)
