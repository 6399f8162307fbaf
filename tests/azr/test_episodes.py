"""Self-play end to end on the CPU: a scripted policy through the real trainer (valid
proposals, executor validation, learnability, TRR++, buffers, resume), and the
built-in random model through the command line (mechanics only)."""

import json
from pathlib import Path

import yaml

from conftest import azr_overrides

from selftaught.azr.scripted import CANNED, ScriptedSampler
from selftaught.azr.tasks import TASK_TYPES
from selftaught.cli import main
from selftaught.config import build_config
from selftaught.trainer import Trainer

ROLES = ("propose", "solve")


def azr_config(output_dir, **extra):
    return build_config(azr_overrides(output_dir, **extra))


def scripted_trainer(config, resume=False):
    return Trainer(config, resume=resume, sampler=lambda trainer: ScriptedSampler(
        trainer.tokenizer, max_prompt_length=config.max_prompt_length,
        max_completion_length=config.max_completion_length, seed=trainer.step))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scripted_self_play_trains_checkpoints_exports_and_resumes(tmp_path):
    config = azr_config(tmp_path, max_steps=1)
    trainer = scripted_trainer(config)
    try:
        history = trainer.train()
        state = trainer.episodes.state_dict()
    finally:
        trainer.episodes.close()
    assert [row["step"] for row in history] == [1]

    resumed = scripted_trainer(azr_config(tmp_path, max_steps=2), resume=True)
    try:
        assert resumed.step == 1
        for task_type in TASK_TYPES:
            assert resumed.episodes.buffers[task_type].state_dict() == state["buffers"][task_type]
        assert resumed.episodes.seeded and resumed.episodes.rollouts == 1
        resumed.train()
    finally:
        resumed.episodes.close()

    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 2]
    for row in rows:
        assert row["skipped"] is False
        for task_type in TASK_TYPES:
            for role in ROLES:
                assert row[f"azr/{task_type}/{role}/count"] == 2
                assert f"azr/{task_type}/{role}/reward_mean" in row
            assert 0.0 <= row[f"azr/{task_type}/propose/valid_rate"] <= 1.0
            assert 0.0 <= row[f"azr/{task_type}/solve/solve_rate"] <= 1.0
            assert row[f"azr/buffer/{task_type}/size"] >= 1
    first = rows[0]
    # seeding happens once, and not again after a resume
    assert first["azr/seed/rounds"] == 1 and "azr/seed/rounds" not in rows[1]
    # the scripted policy writes valid tasks: they were validated, entered the buffers and got r̄
    assert any(row.get(f"azr/{t}/propose/valid_rate", 0) > 0 for row in rows for t in TASK_TYPES)
    assert any(f"azr/{t}/propose/solve_rate" in row for row in rows for t in TASK_TYPES)
    assert all(row["azr/buffer/deduction/size"] > 1 for row in rows)
    # every reward is one the equations allow
    samples = read_jsonl(tmp_path / "completions.jsonl")
    assert samples and all(-1.0 <= s["reward/azr"] <= 1.0 for s in samples)

    exported = read_jsonl(tmp_path / "buffers" / "deduction.jsonl")
    programs = {task["program"] for task in exported}
    assert programs <= {c.program for c in CANNED} and len(programs) > 1
    induction = read_jsonl(tmp_path / "buffers" / "induction.jsonl")
    assert all(set(task) == {"program", "inputs", "outputs", "message", "step"} for task in induction)
    assert any(len(task["inputs"]) >= 2 for task in induction)
    assert any(task["step"] == 2 for task in exported)  # the resumed step's proposals were exported


def test_code_reward_style_and_self_certainty_in_the_loop(tmp_path):
    config = azr_config(tmp_path, max_steps=1, **{"azr.reward_style": "code", "azr.seed_rounds": 0,
                                                  "azr.self_certainty_weight": 0.1, "azr.task_types": ["deduction"]})
    trainer = scripted_trainer(config)
    try:
        [row] = trainer.train()
    finally:
        trainer.episodes.close()
    assert row["azr/deduction/propose/count"] == 2 and "azr/abduction/propose/count" not in row
    assert "rewards/self_certainty/mean" in row
    assert "azr/seed/rounds" not in row  # seed_rounds: 0 skips the seeding phase


def test_cli_runs_the_tiny_recipe_on_the_random_model(tmp_path):
    code = main(["train", "--config", "configs/azr_tiny.yaml",
                 "--set", f"output_dir={tmp_path}", "--set", "max_steps=1", "--set", "progress_bar=false",
                 "--set", "azr.tasks_per_type_role=2", "--set", "azr.seed_proposals=1",
                 "--set", "max_completion_length=12"])
    assert code == 0
    [row] = read_jsonl(tmp_path / "metrics.jsonl")
    types = yaml.safe_load(Path("configs/azr_tiny.yaml").read_text())["azr"]["task_types"]
    assert set(types) < set(TASK_TYPES) and not any(k.startswith("azr/induction/") for k in row)
    for task_type in types:
        assert row[f"azr/{task_type}/propose/count"] == 2 and row[f"azr/{task_type}/solve/count"] == 2
        # 12 tokens hold no valid program: every proposal is rejected, counted, and scores −1
        assert row[f"azr/{task_type}/propose/valid_rate"] == 0.0
        assert row[f"azr/{task_type}/propose/reward_mean"] == -1.0
        assert sum(v for k, v in row.items() if k.startswith(f"azr/{task_type}/propose/reject/")) == 2
    assert row["azr/seed/rounds"] == 1
    assert (tmp_path / "checkpoints" / "step-1").is_dir()
    assert all((tmp_path / "buffers" / f"{task_type}.jsonl").is_file() for task_type in types)


def test_warnings_about_model_written_programs_are_counted_not_printed(tmp_path, monkeypatch, capfd):
    from selftaught.azr import scripted

    # every deduction proposal is a program Python warns about: a likely bug (`is` with a
    # literal) and a cosmetic one (a number run into a keyword)
    monkeypatch.setattr(scripted, "INVALID_PROPOSALS", (("def f(a):\n    return (a is 1) + (1if a else 2)", "1"),))
    config = azr_config(tmp_path, max_steps=1, **{"azr.seed_rounds": 0, "azr.task_types": ["deduction"]})
    trainer = Trainer(config, sampler=lambda t: ScriptedSampler(t.tokenizer, max_prompt_length=config.max_prompt_length,
                                                                max_completion_length=config.max_completion_length,
                                                                invalid_proposal_prob=1.0, malformed_prob=0.0))
    try:
        [row] = trainer.train()
    finally:
        trainer.episodes.close()
    assert row["azr/code_warnings/is_with_literal"] == row["azr/deduction/propose/count"] == 2
    assert not any(key.startswith("azr/code_warnings/") and "literal" in key and key != "azr/code_warnings/is_with_literal"
                   for key in row)
    captured = capfd.readouterr()
    assert "Warning" not in captured.err and "Warning" not in captured.out
