"""Stopping on SIGTERM or SIGINT without losing work.

SLURM, Kubernetes and spot/preemptible cloud machines stop a job with SIGTERM and, after a
grace period, SIGKILL; Ctrl-C sends SIGINT. While `Trainer.train()` runs (in the main thread):

- the first signal is noted (one line on stderr) and the step in progress finishes: its
  rollout's optimizer steps, so that the checkpoint falls on a rollout boundary and `--resume`
  continues exactly. Then a checkpoint is written (unless that step's was just written), the
  trackers, the episode source (AZR's sandbox) and the sampler (vLLM's engine) are closed, and
  `train()` raises `Preempted`. The command line prints one line and exits with
  128 + the signal's number — 143 for SIGTERM, 130 for SIGINT — the shell's code for "ended by
  that signal", so a scheduler or a `set -e` script sees an interrupted job, not a finished one;
- a second signal ends the process at once, by the signal's default action (the shell sees
  the same code). A checkpoint being written then stays a `.step-N.partial` directory, which
  `--resume` never reads: the last complete checkpoint is the one it resumes from;
- under several processes (`accelerate launch`) the ranks agree after every rollout (one
  gather of a flag), so all stop after the same step even when the signal reached only one of
  them, or reached them at different moments. torchrun forwards a SIGTERM it receives to
  every rank and waits 30 s before killing them.

The helper processes (the math-verify worker, the sandbox's zygotes) ignore SIGTERM and SIGINT
and end with the trainer, so a signal sent to every process of the job (as SLURM does) does not
take them away from the step being finished.
"""

from __future__ import annotations

import os
import signal
import threading

from .distributed import Processes

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(signum: int) -> int:
    """128 + the signal's number: 143 for SIGTERM, 130 for SIGINT."""
    return 128 + signum


class StopOnSignal:
    """A context in which SIGTERM / SIGINT ask for a stop (`received`) instead of ending the process;
    the previous handlers come back on exit. Outside the main thread Python cannot install signal
    handlers: there it does nothing (the process ends as it would without it)."""

    def __init__(self, announce: bool = True):
        self.announce = announce
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) != signal.SIG_IGN:  # one the caller ignores stays ignored (nohup, `&`)
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:  # the second signal: end now, as the signal would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self.announce:  # os.write: a handler may run while the main thread is inside a print
            os.write(2, f"selftaught: {signal.Signals(signum).name} received: finishing the current step, then a "
                        "checkpoint (send it again to stop at once)\n".encode())

    def agreed(self, processes: Processes) -> int | None:
        """The signal any rank received so far (every rank gets the same answer), or None."""
        if processes.world == 1:
            return self.received
        return next((s for s in processes.gather(self.received) if s is not None), None)
