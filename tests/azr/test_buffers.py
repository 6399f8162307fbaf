"""Task buffers: seed, capacity policy, sampling, save/restore, export."""

import json
import random

import pytest
import torch

from selftaught.azr.buffers import TaskBuffer
from selftaught.azr.episodes import AZREpisodes
from selftaught.azr.tasks import IDENTITY_PROGRAM, Task, seed_task
from selftaught.config import build_config


def task(n, task_type="deduction", step=1):
    return Task(task_type, f"def f(a):\n    return a + {n}", [str(n)], [str(2 * n)], "", step)


def filled(capacity=5, count=3):
    buffer = TaskBuffer("deduction", capacity, [seed_task("deduction")])
    for n in range(count):
        buffer.add(task(n))
    return buffer


def test_buffers_start_with_the_identity_triplet_only():
    episodes = AZREpisodes(build_config({"method": "azr"}), tokenizer=None)
    for task_type, buffer in episodes.buffers.items():
        [seed] = buffer.tasks()
        assert seed.program == IDENTITY_PROGRAM == "def f(a):\n    return a"
        assert seed.inputs == ["'Hello world'"] and seed.outputs == ["'Hello world'"] and seed.type == task_type
        assert buffer.num_proposed == 0


def test_capacity_keeps_the_seed_and_the_newest_proposals():
    buffer = filled(capacity=4, count=6)
    kept = buffer.tasks()
    assert len(buffer) == 4 and buffer.evicted == 3
    assert kept[0] == seed_task("deduction")  # pinned
    assert [t.inputs[0] for t in kept[1:]] == ["3", "4", "5"]  # newest, oldest first


def test_a_repeated_task_is_refreshed_not_duplicated():
    buffer = filled(capacity=10, count=3)
    assert buffer.add(task(0, step=9)) is False
    assert len(buffer) == 4 and [t.inputs[0] for t in buffer.tasks()[1:]] == ["1", "2", "0"]
    assert buffer.tasks()[-1].step == 9
    assert buffer.add(seed_task("deduction")) is False and len(buffer) == 4  # the seed is never duplicated
    different_input = Task("deduction", task(1).program, ["7"], ["8"])
    assert buffer.add(different_input) is True and len(buffer) == 5


def test_sampling_without_replacement_then_with_when_short():
    buffer = filled(capacity=10, count=3)
    rng = random.Random(0)
    picked = buffer.sample(4, rng)
    assert sorted(t.inputs[0] for t in picked) == sorted(t.inputs[0] for t in buffer.tasks())
    many = buffer.sample(10, rng)
    assert len(many) == 10 and {t.key() for t in many} == {t.key() for t in buffer.tasks()}
    assert len({t.key() for t in buffer.sample(3, rng)}) == 3


def test_capacity_must_leave_room_for_a_proposal():
    with pytest.raises(ValueError):
        TaskBuffer("deduction", 1, [seed_task("deduction")])


def test_state_dict_round_trip_through_torch_save(tmp_path):
    buffer = filled(capacity=4, count=6)
    torch.save(buffer.state_dict(), tmp_path / "b.pt")
    restored = TaskBuffer("deduction", 4, [])
    restored.load_state_dict(torch.load(tmp_path / "b.pt", weights_only=False))
    assert restored.tasks() == buffer.tasks() and restored.evicted == buffer.evicted
    assert restored.add(task(5)) is False  # keys are rebuilt, so dedup survives a restore


def test_episodes_state_restores_buffers_rng_and_progress():
    config = build_config({"method": "azr", "seed": 3})
    first = AZREpisodes(config, tokenizer=None)
    first.buffers["abduction"].add(task(1, "abduction"))
    first.buffers["induction"].add(Task("induction", IDENTITY_PROGRAM, ["1", "2"], ["1", "2"], "same", 2))
    first.rng.random()
    first.seeded, first.rollouts = True, 7
    state = first.state_dict()
    second = AZREpisodes(config, tokenizer=None)
    second.load_state_dict(state)
    for task_type in first.buffers:
        assert second.buffers[task_type].tasks() == first.buffers[task_type].tasks()
    assert second.rng.random() == first.rng.random()
    assert (second.seeded, second.rollouts) == (True, 7)


def test_export_writes_one_task_per_line_per_type(tmp_path):
    episodes = AZREpisodes(build_config({"method": "azr"}), tokenizer=None)
    episodes.buffers["deduction"].add(task(4))
    episodes.buffers["induction"].add(Task("induction", "def f(a):\n    return -a", ["1", "2"], ["-1", "-2"],
                                           "negates", 5))
    episodes.export(tmp_path, step=5)
    files = sorted(p.name for p in (tmp_path / "buffers").iterdir())
    assert files == ["abduction.jsonl", "deduction.jsonl", "induction.jsonl"]
    deduction = [json.loads(line) for line in (tmp_path / "buffers" / "deduction.jsonl").read_text().splitlines()]
    assert deduction == [
        {"program": IDENTITY_PROGRAM, "input": "'Hello world'", "output": "'Hello world'", "message": "", "step": 0},
        {"program": "def f(a):\n    return a + 4", "input": "4", "output": "8", "message": "", "step": 1},
    ]
    induction = [json.loads(line) for line in (tmp_path / "buffers" / "induction.jsonl").read_text().splitlines()]
    assert induction[1] == {"program": "def f(a):\n    return -a", "inputs": ["1", "2"], "outputs": ["-1", "-2"],
                            "message": "negates", "step": 5}
    assert not list((tmp_path / "buffers").glob("*.partial"))
