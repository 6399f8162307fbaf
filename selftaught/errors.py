"""The one error type a user can cause (bad config, missing file, bad data row,
a model that will not load). The CLI prints its message on one line and exits
with code 2; anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """A problem in what the user gave us, with the fix in the message."""


class TrainingStopped(RuntimeError):
    """Too many consecutive non-finite steps: the run is diverging (the CLI exits with 1)."""


class Preempted(Exception):
    """Training stopped on SIGTERM / SIGINT after the step in progress and its checkpoint
    (`selftaught.preemption`); the CLI exits with `exit_code` (128 + the signal's number)."""

    def __init__(self, signum: int, step: int, checkpoint, exit_code: int, main_process: bool = True):
        import signal

        self.signum, self.step, self.checkpoint, self.exit_code = signum, step, checkpoint, exit_code
        self.main_process = main_process
        super().__init__(f"{signal.Signals(signum).name} after step {step}; checkpoint {checkpoint} is complete, "
                         "`--resume` continues from it")
