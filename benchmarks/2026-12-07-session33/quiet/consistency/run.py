"""`jbrain eval consistency` with text.QUIET set: run.py QUIET [eval flags].

    python run.py 6 --flagfile=experiments/configs/teach.flags --sheet=50x40 \
        --n_neurons=2000 --radius=5 --seed=0 --out=q6.json
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")))
import jbrain.text as text  # noqa: E402
from experiments import eval as jbrain_eval  # noqa: E402

text.QUIET = int(sys.argv[1])
jbrain_eval.launch(["eval", "consistency", *sys.argv[2:]])
