"""The processes below a pid, read from /proc, and a bounded wait for them to be gone.

Used by the trainer side to make `PythonExecutor.close()` synchronous: the
sandbox's processes are not all our children (a worker's parent is the zygote,
or init of the zygote's PID namespace), so `waitpid` alone cannot tell when they
are gone. A process is named by (pid, start time) so a reused pid is never
mistaken for it. Linux only; elsewhere the tree is empty and nothing is awaited.
"""

from __future__ import annotations

import os
import signal
import time

Proc = tuple[int, int]  # (pid, start time in clock ticks since boot)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()  # the name may hold spaces or ')'
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[1]), int(fields[19])


def descendants(root: int) -> list[Proc]:
    """Every process below `root` (children, their children, ...), zombies included."""
    children: dict[int, list[Proc]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                children.setdefault(stat[1], []).append((int(name), stat[2]))
    found: list[Proc] = []
    todo = [root]
    while todo:
        for proc in children.get(todo.pop(), []):
            found.append(proc)
            todo.append(proc[0])
    return found


def alive(proc: Proc) -> bool:
    """True while the process exists and has not been reaped (a zombie still counts)."""
    stat = _stat(proc[0])
    return stat is not None and stat[2] == proc[1]


def kill_all(procs: list[Proc]) -> None:
    """SIGKILL each process that is still the one recorded."""
    for proc in procs:
        if alive(proc):
            try:
                os.kill(proc[0], signal.SIGKILL)
            except OSError:
                pass


def wait_gone(procs: list[Proc], timeout_s: float) -> list[Proc]:
    """Wait until none of `procs` exists any more (reaped by its parent), at most
    `timeout_s`; returns those still there."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in procs if alive(p)]
    pause = 0.001
    while left and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
        left = [p for p in left if alive(p)]
    return left
