"""Freed heap memory goes back to the OS during a long run (selftaught.memory)."""

import platform

import pytest

from selftaught import memory, trainer as trainer_module
from selftaught.config import build_config
from selftaught.trainer import Trainer

from conftest import tiny_overrides


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_release_gives_freed_pages_back():
    blocks = [bytearray(4096) for _ in range(60_000)]  # ~240 MB of small heap blocks
    survivors = blocks[::10]  # one block in ten stays: the heap's free space is in the middle, not at its top,
    del blocks                # so glibc keeps it (what a long run's fragmented arenas look like)
    held = _rss_mb()
    assert memory.release_freed_memory() is True
    assert _rss_mb() < held - 100, "the freed pages stayed resident"
    assert len(survivors) == 6000


def test_the_trainer_releases_every_so_many_steps(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(trainer_module, "release_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(trainer_module, "RELEASE_MEMORY_EVERY", 2)
    Trainer(build_config(tiny_overrides(tmp_path, max_steps=4))).train()
    assert len(calls) == 2  # after steps 2 and 4
