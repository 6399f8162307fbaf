"""Where a training run's resident memory is: live allocations or memory the C allocator keeps.

    OMP_NUM_THREADS=1 python scripts/heap_probe.py --steps 301 [--trim] [--config configs/grpo_tiny.yaml]

Trains in this process and, every `--every` steps (before the step's rollout, after a garbage
collection), prints the RSS, glibc's `mallinfo2()` (the heap it holds, what of it is handed out
and what is free), the number of Python objects and the types whose count grew since the last
print. With `--trim`, `malloc_trim(0)` then gives the free heap back and the RSS after it is
printed. Linux with glibc only. docs/reliability.md §5 has what it showed for the soak's growth.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selftaught.config import load_config  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

MB = 2 ** 20


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "grpo_tiny.yaml"))
    parser.add_argument("--steps", type=int, default=301)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after each print")
    parser.add_argument("--output-dir", default="runs/heap_probe")
    args = parser.parse_args()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    config = load_config(args.config, [f"max_steps={args.steps}", f"output_dir={args.output_dir}", "save_steps=100",
                                       "save_total_limit=2", "progress_bar=false", "log_every=0"])
    trainer = Trainer(config)
    sample, started, previous = trainer.sampler.sample, time.monotonic(), None

    def probed_sample(*a, **k):
        nonlocal previous
        if trainer.step % args.every == 0:
            gc.collect()
            heap = libc.mallinfo2()
            types = Counter(type(o).__name__ for o in gc.get_objects())
            grew = (types - previous).most_common(6) if previous is not None else []
            previous = types
            line = (f"step {trainer.step}: rss {rss_mb():.1f} MB; malloc heap {heap.arena / MB:.1f} MB, in use "
                    f"{heap.uordblks / MB:.1f}, free {heap.fordblks / MB:.1f}, mmapped {heap.hblkhd / MB:.1f}; "
                    f"{sum(types.values())} Python objects, grew {grew}")
            if args.trim:
                libc.malloc_trim(0)
                line += f"; rss after malloc_trim {rss_mb():.1f} MB"
            print(f"{line}; {time.monotonic() - started:.0f} s", flush=True)
        return sample(*a, **k)

    trainer.sampler.sample = probed_sample
    trainer.train()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
