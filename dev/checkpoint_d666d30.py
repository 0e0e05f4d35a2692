"""Write a jbrain-checkpoint/1 (commit d666d30's format) and the fingerprint of
its continuation: tests/data/v1_checkpoint_n2000.tgz + v1_continuation.json."""
import hashlib, json, os, shutil, sys, tarfile, tempfile
import numpy as np
from jbrain.config import BrainConfig
from jbrain.session import Session
from jbrain.text import Codec

def h(a):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(a)).tobytes()).hexdigest()[:16]

cfg = BrainConfig(n_neurons=2000, fan_in=32, plasticity=True)
codec = Codec.for_config(cfg)
d = tempfile.mkdtemp()
s = Session.open(cfg, seed=3, workdir=d)
s.run(250)
s.run(200, codec.encode("hi"))
s.close()
with tarfile.open(sys.argv[1], "w:gz") as t:
    t.add(d, arcname="workdir")
s = Session.open(cfg, seed=3, workdir=d)
s.run(200, codec.encode("hello"))
s.run(100)
s.close(save=False)
log = open(os.path.join(d, "brain_debug.log")).read()
json.dump(dict(commit="d666d30", step=int(s.state.step), log=hashlib.sha256(log.encode()).hexdigest()[:16],
               weights=h(s.state.weights), v=h(s.state.v)), open(sys.argv[2], "w"), indent=1)
print(open(sys.argv[2]).read())
