"""Probe: bench_presets with pallas_gpu.REPLAY_CTAS set from argv[1]."""

import runpy
import sys

from jbrain.backends import pallas_gpu

pallas_gpu.REPLAY_CTAS = int(sys.argv.pop(1))
runpy.run_path("scripts/bench_presets.py", run_name="__main__")
