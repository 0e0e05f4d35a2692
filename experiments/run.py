"""jbrain run: step the brain for --steps steps (or until Ctrl-C with --steps=0).

Writes WORKDIR/brain_debug.log (one line per step, once per burst) and shows a
progress bar (steps/s, firing rate). Checkpoints go to WORKDIR/checkpoints
every --save_every steps and on exit; a later run continues the latest one
(its flags come from the checkpoint; --fresh starts a new brain). Ctrl-C
finishes the current burst, saves, flushes the log, prints a summary and
exits 0.
"""

from __future__ import annotations

import signal
import sys
import time

from absl import flags
from tqdm import tqdm

from experiments import common
from jbrain.session import BrainFault, Session

FLAGS = flags.FLAGS
common.define_brain_flags()
common.define_checkpoint_flags()
common.define_distributed_flags()
flags.DEFINE_integer("steps", 1000, "Steps to run; 0 runs until Ctrl-C.")
flags.DEFINE_integer("burst", 200, "Steps per burst (one lax.scan, one compiled program).")


class _Interrupt:
    """SIGINT sets a flag; the loop stops after the burst in flight."""

    def __init__(self) -> None:
        self.hit = False
        self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.hit:  # second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self._old)
            raise KeyboardInterrupt
        self.hit = True

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._old)


def main(argv: list[str]) -> None:
    del argv
    common.start_distributed()  # --coordinator: join the other hosts before anything touches a device
    if FLAGS.steps < 0:
        raise ValueError(f"--steps={FLAGS.steps} must be >= 0 (0 runs until Ctrl-C)")
    if FLAGS.burst <= 0:
        raise ValueError(f"--burst={FLAGS.burst} must be a positive number of steps, e.g. --burst=200")
    config = common.brain_config_from_flags()
    workdir = common.prepare_workdir(FLAGS.workdir)
    session = common.open_session("run", config, workdir)  # restores WORKDIR/checkpoints unless --fresh
    summary = run_loop(session, FLAGS.steps, FLAGS.burst)
    print(summary)
    if session.saved_step != session.step:
        sys.exit(1)  # the last checkpoint failed (the warning says why)


def run_loop(session: Session, steps: int, burst: int) -> str:
    """Run bursts until `steps` (0: until Ctrl-C); return the summary line."""
    interrupt = _Interrupt()
    endless = steps == 0
    bar = tqdm(
        total=None if endless else steps, unit="step", dynamic_ncols=True, file=sys.stderr, disable=None
    )
    done, rate_sum, t0 = 0, 0.0, time.perf_counter()
    try:
        while (endless or done < steps) and not interrupt.hit:
            n = burst if endless else min(burst, steps - done)
            m = session.run(n)
            done += n
            rate_sum += float(m["rate"].sum())
            bar.update(n)
            bar.set_postfix(rate=f"{m['rate'].mean():.4f}", step=session.step)
            for w in session.warnings:
                bar.write(f"warning: {w}")
            session.warnings.clear()
    except BrainFault as e:
        session.close()
        bar.close()
        common.fail("run", str(e))
    finally:
        interrupt.restore()
        bar.close()
    saved = session.close()  # saves a last checkpoint (Ctrl-C included)
    for w in session.warnings:
        print(f"jbrain run: warning: {w}", file=sys.stderr, flush=True)
    session.warnings.clear()
    wall = time.perf_counter() - t0
    how = "interrupted" if interrupt.hit else "done"
    mean_rate = rate_sum / max(done, 1)
    return (
        f"jbrain run {how}: {done} steps (now at step {session.step}) in {wall:.1f} s, "
        f"{done / max(wall, 1e-9):.0f} steps/s, mean rate {mean_rate:.4f}, "
        + (f"log {session.log.path}" if session.log is not None else "log written by process 0")
        + (f", checkpoint {saved}" if saved else ", no checkpoint saved")
    )


def launch(argv: list[str]) -> None:
    common.run_app("run", main, argv)


if __name__ == "__main__":
    launch(sys.argv)
