"""Self-play options: programs it must never train on, the solver-only ablation, completion tags."""

import json
import math

import pytest
import torch
from conftest import azr_overrides

from selftaught.azr.episodes import AZREpisodes, TrainedRow, excluded_programs, program_key
from selftaught.azr.scripted import CANNED, ScriptedSampler
from selftaught.azr.tasks import TASK_TYPES
from selftaught.config import build_config
from selftaught.data import programs
from selftaught.errors import UserError
from selftaught.rollout import Rollout
from selftaught.trainer import Trainer

EXCLUDED = CANNED[3].program  # def f(n): return n % 3


def scripted_trainer(config):
    return Trainer(config, sampler=lambda trainer: ScriptedSampler(
        trainer.tokenizer, max_prompt_length=config.max_prompt_length,
        max_completion_length=config.max_completion_length, seed=trainer.step, invalid_proposal_prob=0.0,
        malformed_prob=0.0))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_program_key_ignores_layout_and_comments_but_not_code():
    assert program_key("def f(a):\n    return a+1  # one more\n") == program_key("def f(a):\n  return a + 1")
    assert program_key("def f(a):\n    return a + 2") != program_key("def f(a):\n    return a + 1")
    assert program_key("def f(a) return") == "def f(a) return"  # does not parse: its text
    assert program_key("def f(a):\n    return 1_000x") == "def f(a):\n    return 1_000x"


def test_builtin_exclusion_is_the_dev_and_held_out_programs():
    keys = excluded_programs("builtin")
    for split, excluded in (("dev", True), ("heldout", True), ("pretrain", False)):
        assert all((program_key(p) in keys) == excluded for _, _, p in programs.all_programs(split))


def test_an_exclusion_file_needs_a_program_per_row(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "1"}\n')
    with pytest.raises(UserError, match="bad.jsonl:1: .*'program'"):
        excluded_programs(str(bad))
    with pytest.raises(UserError, match="not found"):
        excluded_programs(str(tmp_path / "missing.jsonl"))


def test_excluded_proposals_never_enter_the_buffers_or_the_update(tmp_path):
    banned = tmp_path / "banned.jsonl"
    banned.write_text(json.dumps({"program": EXCLUDED}) + "\n")
    config = build_config(azr_overrides(tmp_path, max_steps=2, **{"azr.exclude_programs": str(banned)}))
    trainer = scripted_trainer(config)
    try:
        trainer.train()
        buffers = {t: [task.program for task in trainer.episodes.buffers[t].tasks()] for t in TASK_TYPES}
    finally:
        trainer.episodes.close()
    assert all(EXCLUDED not in held for held in buffers.values())
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    excluded = sum(row.get(f"azr/{t}/propose/excluded", 0) for row in rows for t in TASK_TYPES)
    assert excluded > 0  # the scripted proposer writes it every fourth proposal


def test_an_excluded_row_has_no_reward_and_no_advantage_and_leaves_its_group_alone(tmp_path):
    source = AZREpisodes(build_config(azr_overrides(tmp_path)), tokenizer=None)
    rows = [TrainedRow("deduction", "solve", True, None, 10, correct=True),
            TrainedRow("deduction", "solve", True, None, 10, correct=False),
            TrainedRow("deduction", "propose", True, None, 10, solve_rate=0.5),
            TrainedRow("deduction", "propose", True, None, 10, solve_rate=0.25),
            TrainedRow("deduction", "propose", False, "excluded_program", None, excluded=True)]
    empty = torch.zeros(len(rows), 1, dtype=torch.long)
    rollout = Rollout(empty, empty.bool(), empty, empty.bool(), [""] * len(rows), [""] * len(rows),
                      extras={"azr": rows})
    rewards = source.rewards(rollout, scores=None)
    assert math.isnan(rewards["azr"][4]) and not rewards["azr"][:4].isnan().any()
    advantages = source.advantages(rollout, rewards)
    assert advantages[4] == 0
    # the two valid proposals are normalised between themselves alone: ±(0.75 − 0.5)/(σ + ε)
    assert advantages[2] == pytest.approx(-advantages[3].item()) and advantages[3] > 0
    metrics = source.metrics(rollout, rewards)
    assert metrics["azr/deduction/propose/valid_rate"] == 1.0  # excluded proposals are counted apart
    assert metrics["azr/deduction/propose/reward_mean"] == pytest.approx((0.5 + 0.75) / 2)


def test_solver_only_ablation_trains_the_solver_on_the_seeded_buffers(tmp_path):
    config = build_config(azr_overrides(tmp_path, max_steps=2, completion_tags={"thinks": "Let me"},
                                        **{"azr.train_proposer": False, "azr.seed_proposals": 4,
                                           "azr.seed_rounds": 2}))
    trainer = scripted_trainer(config)
    try:
        trainer.train()
        sizes = {t: len(trainer.episodes.buffers[t]) for t in TASK_TYPES}
    finally:
        trainer.episodes.close()
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    for row in rows:
        for task_type in TASK_TYPES:
            assert row[f"azr/{task_type}/solve/count"] == 2
            assert f"azr/{task_type}/propose/count" not in row  # no proposer rows are trained
            assert row[f"azr/{task_type}/solve/tags/thinks"] >= 0.0
    seeded = {t: rows[0][f"azr/seed/{t}/buffer_size"] for t in TASK_TYPES}
    assert sizes == seeded  # no proposal after the seeding phase
    assert all(size > 1 for size in sizes.values())
