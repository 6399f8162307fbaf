"""The one error type a user can cause (bad config, missing file, bad data row,
a model that will not load). The CLI prints its message on one line and exits
with code 2; anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """A problem in what the user gave us, with the fix in the message."""


class TrainingStopped(RuntimeError):
    """Too many consecutive non-finite steps: the run is diverging (the CLI exits with 1)."""
