"""How the benchmarks (and scripts/gpu_check.py) measure time and memory, in one process.

CPU: time is the process's CPU seconds (`time.process_time`): on a shared machine wall
time measures the neighbours as much as the code. Memory is the resident set size:
`VmHWM` (the peak) in /proc/self/status sees every allocation, torch's included
(tracemalloc does not), and writing 5 to /proc/self/clear_refs (Linux ≥ 4.0) resets it
to the current size, so whatever ran before the measured work cannot hide its peak.

CUDA: time is wall time between device synchronisations (kernels run asynchronously,
so an unsynchronised clock measures the launches); memory is torch's allocator
(`max_memory_allocated`, reset by `reset_peak_memory_stats`): the tensors, not the
cache the allocator keeps.
"""

from __future__ import annotations

import os
import time


def rss_bytes() -> int:
    """The process's resident set size now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The largest resident set size since the process started or `reset_peak_rss`."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def reset_peak_rss() -> int:
    """Reset the peak to the current size; returns the current size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return rss_bytes()


class CpuMeter:
    """CPU seconds and resident memory of this process."""

    device = "cpu"
    clock = "cpu_s"

    def now(self) -> float:
        return time.process_time()

    def reset_peak(self) -> int:
        """Start a new peak; returns the memory in use now (the baseline the peak is compared with)."""
        return reset_peak_rss()

    def peak(self) -> int:
        return peak_rss_bytes()


class CudaMeter:
    """Synchronised wall seconds and the allocator's device memory."""

    device = "cuda"
    clock = "wall_s"

    def __init__(self):
        import torch

        self.torch = torch

    def now(self) -> float:
        self.torch.cuda.synchronize()
        return time.perf_counter()

    def reset_peak(self) -> int:
        self.torch.cuda.synchronize()
        self.torch.cuda.reset_peak_memory_stats()
        return self.torch.cuda.memory_allocated()

    def peak(self) -> int:
        self.torch.cuda.synchronize()
        return self.torch.cuda.max_memory_allocated()


def meter_for(device: str) -> CpuMeter | CudaMeter:
    """The meter of `device` ("cpu" or "cuda")."""
    return CudaMeter() if device == "cuda" else CpuMeter()
