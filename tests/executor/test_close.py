"""close() is synchronous: when it returns, every process the executor started is gone.

Counted independently of the executor: the descendants of this test process,
read from /proc (parent links), before and after close(), while neighbour
processes load every CPU and the programs in flight misbehave, and (every other
round) a sandbox is lost just before close(), so a restart races it — the case
that left zygotes behind before close() was made synchronous.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from pathlib import Path

import pytest

from selftaught import executor
from selftaught.executor import ExecResult, PythonExecutor

ZYGOTE = (str(Path(executor.__file__).parent / "zygote.py")).encode()

MISBEHAVING = [
    ("def f(n):\n    while True:\n        n += 1", "0"),  # spins past the timeout
    ("def f(s):\n    import time\n    time.sleep(s)", "60"),  # sleeps past it
    ("def f(n):\n    import os\n    while True:\n        os.fork()", "0"),  # fork bomb (RLIMIT_NPROC=0)
    ("def f(n):\n    import signal\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
     "    while True:\n        pass", "0"),  # ignores SIGTERM
    ("def f(n):\n    x = []\n    while True:\n        x.append(' ' * 10**6)", "0"),  # memory
    ("def f(n):\n    return f(n + 1)", "0"),  # recursion
    ("def f(a, b):\n    return a + b", "1, 2"),  # and an ordinary one
]


def _descendants(root: int) -> set[int]:
    """Every process below `root` not yet reaped (zombies count), by the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _sandbox_processes() -> set[int]:
    """Live processes running this package's zygote.py (zygotes and the sandboxes they fork),
    wherever they now hang in the tree: a sandbox orphaned by its zygote's death is
    re-parented to init and would escape `_descendants`. Zombies have no cmdline."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if ZYGOTE in fh.read():
                        found.add(int(name))
            except OSError:
                continue
    return found


def _orphans(before: set[int], grace_s: float = 5.0) -> int:
    """Sandbox processes started since `before` that are still alive after `grace_s`."""
    deadline = time.monotonic() + grace_s
    while (left := _sandbox_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(left)


def _spin(stop):
    while not stop.is_set():
        pass


def _rounds(rounds: int, workers: int = 2, isolation: str = "auto") -> list[int]:
    """Leftover process counts after each round's close()."""
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    neighbours = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 2)]
    for p in neighbours:
        p.start()
    leftovers = []
    try:
        others = {p.pid for p in neighbours} | _descendants(os.getpid())
        sandboxes_before = _sandbox_processes()
        for r in range(rounds):
            ex = PythonExecutor(workers=workers, timeout_s=0.5, memory_mb=128, isolation=isolation)
            assert len(_descendants(os.getpid()) - others) >= workers  # the sandbox is there to count
            # more work than close() would wait for: it must stop the runs, not outwait them
            items = [MISBEHAVING[(r + k) % len(MISBEHAVING)] for k in range(8 * workers)]
            results = []
            runner = threading.Thread(target=lambda: results.extend(ex.run_many(items)), daemon=True)
            runner.start()
            time.sleep(0.1 + 0.1 * (r % 4))  # close at different points of the runs
            if r % 2:  # a sandbox lost mid-run: its thread starts a new one while close() runs
                try:
                    os.killpg(ex.process_ids()[0], signal.SIGKILL)
                except OSError:
                    pass
                time.sleep(0.02 * (r % 3))
            ex.close()
            # below us, and anywhere else (a sandbox whose zygote was killed is init's child now)
            leftovers.append(len(_descendants(os.getpid()) - others) + _orphans(sandboxes_before))
            runner.join(30)
            assert not runner.is_alive()
            assert len(results) == len(items)  # every item settled (unfinished: 'executor_error')
            assert all(isinstance(res, ExecResult) for res in results)
            assert any(res.error == "executor_error" for res in results)  # close() cut the runs short
    finally:
        stop.set()
        for p in neighbours:
            p.join(5)
    return leftovers


@pytest.mark.parametrize("isolation", ["auto", "process"])  # PID namespace (as root) / none
def test_close_reaps_every_sandbox_process_under_load(isolation):
    assert _rounds(4, isolation=isolation) == [0] * 4


def test_close_from_the_context_manager_reaps_too():
    before = _descendants(os.getpid())
    with PythonExecutor(workers=2, timeout_s=0.5) as ex:
        ex.run_many(MISBEHAVING)
    assert _descendants(os.getpid()) - before == set()


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["auto", "process"])
def test_close_soak_many_rounds_under_load(isolation):
    assert _rounds(60, isolation=isolation) == [0] * 60
