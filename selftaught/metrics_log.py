"""Per-step metrics: `metrics.jsonl` (one object per optimizer step), a few sampled
completions (`completions.jsonl`), and the same rows sent on to the experiment
trackers of `report_to` (`selftaught.trackers`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .storage import disk_writes


def _clean(value):
    """JSON has no NaN/inf: write them as strings so a bad step is still visible."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsWriter:
    """`trackers`: a function returning the started trackers, called by `start()` (or the
    first `log`), so a Trainer that is built but never trained opens no tracker run."""

    def __init__(self, output_dir: Path, resume_step: int | None = None, trackers=None):
        self.path = output_dir / "metrics.jsonl"
        self.completions_path = output_dir / "completions.jsonl"
        output_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            for path in (self.path, self.completions_path):
                path.unlink(missing_ok=True)
        else:  # drop rows written after the checkpoint we resume from
            for path in (self.path, self.completions_path):
                self._truncate_after(path, resume_step)
        self._start = trackers
        self.trackers: list | None = None

    def start(self) -> None:
        if self.trackers is None:
            self.trackers = list(self._start()) if self._start is not None else []

    @staticmethod
    def _truncate_after(path: Path, step: int) -> None:
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything after it is suspect
        path.write_text("".join(line + "\n" for line in kept))

    @staticmethod
    def _append(path: Path, *records: dict) -> None:
        """Append JSON lines and make them durable (one open and one fsync per call). A full disk is
        one line (`storage`); a line it cut short is dropped when the run resumes."""
        with disk_writes("metrics file", path), path.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in records))
            handle.flush()
            os.fsync(handle.fileno())

    def log(self, record: dict) -> None:
        self._append(self.path, record)
        self.start()
        for tracker in self.trackers:
            tracker.log(record, record["step"])

    def log_completions(self, step: int, samples: list[dict]) -> None:
        if samples:
            self._append(self.completions_path, *({"step": step, **sample} for sample in samples))
            self.start()
            for tracker in self.trackers:
                tracker.log_completions(step, samples)

    def close(self) -> None:
        trackers, self.trackers = self.trackers or [], None
        for tracker in trackers:
            tracker.finish()
