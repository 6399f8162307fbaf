"""Task buffers, one per task type.

Capacity policy (AZR caps buffers at 16,384 and its code then silently drops every
new proposal, so the buffer freezes at its oldest tasks):

- the seed triplet is pinned: it is never evicted, so a buffer is never empty;
- past capacity the *oldest* proposal is evicted: the buffer holds the seed and
  the newest `capacity − 1` proposals, so solve tasks and references track what
  the current policy proposes instead of what the initial model did;
- a task already in the buffer (same program, same inputs) is not stored twice:
  proposing it again refreshes it to newest. Repeats are the cheapest way for a
  proposer to flood a buffer with one easy task.

Sampling is uniform over the buffer, without replacement; `sample(k)` for a
buffer smaller than k returns all of it plus uniform draws with replacement.
"""

from __future__ import annotations

import json
import os
import random
from collections import OrderedDict
from pathlib import Path

from .tasks import Task


class TaskBuffer:
    def __init__(self, task_type: str, capacity: int, seed: list[Task] = ()):
        if capacity < len(seed) + 1:
            raise ValueError(f"capacity {capacity} leaves no room beside {len(seed)} pinned seed task(s)")
        self.task_type, self.capacity = task_type, capacity
        self.pinned: list[Task] = list(seed)
        self._pinned_keys = {t.key() for t in self.pinned}
        self._proposed: OrderedDict[tuple, Task] = OrderedDict()  # oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.pinned) + len(self._proposed)

    @property
    def num_proposed(self) -> int:
        """Tasks the model added (not the seed)."""
        return len(self._proposed)

    def tasks(self) -> list[Task]:
        return self.pinned + list(self._proposed.values())

    def add(self, task: Task) -> bool:
        """Store a validated task; True if it was new (False: a refresh of one held)."""
        key = task.key()
        if key in self._pinned_keys:
            return False
        new = key not in self._proposed
        self._proposed.pop(key, None)
        self._proposed[key] = task
        self.evicted += self._trim()
        return new

    def _trim(self) -> int:
        """Drop the oldest proposed tasks beyond capacity; how many were dropped."""
        dropped = 0
        while len(self) > self.capacity:
            self._proposed.popitem(last=False)
            dropped += 1
        return dropped

    def sample(self, k: int, rng: random.Random) -> list[Task]:
        """k tasks uniformly, without replacement while the buffer lasts."""
        pool = self.tasks()
        if k <= len(pool):
            return rng.sample(pool, k)
        return pool + [rng.choice(pool) for _ in range(k - len(pool))]

    def mean_program_chars(self) -> float:
        tasks = self.tasks()
        return sum(len(t.program) for t in tasks) / len(tasks)

    # ------------------------------------------------------------ persistence

    def state_dict(self) -> dict:
        return {"task_type": self.task_type, "pinned": [t.state() for t in self.pinned],
                "tasks": [t.state() for t in self._proposed.values()], "evicted": self.evicted}

    def load_state_dict(self, state: dict) -> None:
        self.pinned = [Task.from_state(s) for s in state["pinned"]]
        self._pinned_keys = {t.key() for t in self.pinned}
        self._proposed = OrderedDict((t.key(), t) for t in map(Task.from_state, state["tasks"]))
        self.evicted = state.get("evicted", 0)
        self._trim()  # resumed with a smaller capacity

    def export(self, path: Path) -> None:
        """One task per line (`Task.to_json`), oldest first, written atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as handle:
            for task in self.tasks():
                handle.write(json.dumps(task.to_json()) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
