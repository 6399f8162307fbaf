"""What a run prints while it works, readable on a terminal and in a log file.

On a terminal (stdout and stderr both TTYs) training draws a tqdm bar.
Anywhere else (`> log`, a pipe, CI, SLURM) a bar's redraws would be `\\r` frames in
one ever-growing line, so training prints one plain line every `log_every` steps
(and at the last step) on stdout instead, and the libraries' own bars
(transformers' weight loading, huggingface_hub, datasets) are turned off.
"""

from __future__ import annotations

import sys


def interactive() -> bool:
    """True when both stdout and stderr are terminals."""
    return all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdout, sys.stderr))


def silence_library_bars() -> None:
    """Turn off the tqdm bars transformers, huggingface_hub and datasets draw on their own."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass
    if "datasets" in sys.modules:  # loaded only for a hub/disk data set; importing it is slow
        sys.modules["datasets"].disable_progress_bars()


def silence_library_bars_in_logs() -> None:
    """`silence_library_bars` when the output is not a terminal: a library's bar (e.g. weight
    loading) writes \r frames into a log file; on a terminal it is left to draw."""
    if not interactive():
        silence_library_bars()


def step_line(row: dict, total: int, seconds_per_step: float) -> str:
    """The plain progress line: step, reward, self-certainty, completion length, s/step."""
    def figure(key: str, spec: str) -> str:
        value = row.get(key)
        return format(value, spec) if isinstance(value, (int, float)) else "—"

    return (f"step {row['step']}/{total}  reward {figure('reward/mean', '.4f')}  "
            f"self-certainty {figure('self_certainty/mean', '.4f')}  length {figure('completion_length/mean', '.1f')}  "
            f"{seconds_per_step:.2f} s/step")


class TrainProgress:
    """A tqdm bar on a terminal, else a `step_line` every `log_every` steps; `enabled` False: silent."""

    def __init__(self, total: int, initial: int, *, enabled: bool = True, bar: bool = True, log_every: int = 10,
                 label: str = "train"):
        self.total, self.log_every, self.label = total, log_every, label
        self.bar = None
        self.plain = False
        self._pending: list[float] = []  # step times since the last line
        if not enabled:
            return
        if interactive():
            if bar:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, initial=initial, desc=label, dynamic_ncols=True)
        else:
            self.plain = log_every > 0

    def update(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(reward=f"{row['reward/mean']:.3f}", sc=f"{row['self_certainty/mean']:.3f}",
                                 len=f"{row['completion_length/mean']:.0f}", loss=f"{row['loss']:.4f}")
        elif self.plain:
            self._pending.append(float(row.get("time/step_s", 0.0)))
            if row["step"] % self.log_every == 0 or row["step"] >= self.total:
                seconds = sum(self._pending) / len(self._pending)
                self._pending = []
                print(f"{self.label} {step_line(row, self.total, seconds)}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
