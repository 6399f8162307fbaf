"""Intuitor, GRPO and Absolute Zero trained end to end with `rollout_backend: vllm`, with resume.

`make test-vllm` (needs .venv-vllm). Each run is 2 steps, then `--resume` to step 3 through
the CLI; for Intuitor the resumed run must reach exactly the weights of a straight 3-step run
(the engine's per-row seeds come from torch's RNG, which the checkpoint restores).
"""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import azr_overrides, tiny_overrides
from safetensors.torch import load_file

pytestmark = pytest.mark.vllm

VLLM = {"rollout_backend": "vllm", "model.name_or_path": "tiny", "lr_scheduler_type": "constant"}


def train(raw: dict, *extra: str) -> int:
    from selftaught.cli import main

    path = f"{raw['output_dir']}.yaml"
    with open(path, "w") as handle:
        yaml.safe_dump(raw, handle)
    return main(["train", "--config", path, *extra])


def metrics(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def weights(output_dir, step):
    return load_file(output_dir / "checkpoints" / f"step-{step}" / "model.safetensors")


def two_then_resume(raw_for) -> list[dict]:
    """Train 2 steps, resume to 3; the metrics rows of all 3 steps."""
    assert train(raw_for(2)) == 0
    assert train(raw_for(3), "--resume") == 0
    rows = metrics(Path(raw_for(3)["output_dir"]))
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["vllm/logprob_abs_diff/max"] < 1e-4  # fp32 engine and trainer (tolerance as in test_vllm_backend)
        assert row["vllm/is_weight/mean"] == pytest.approx(1.0, abs=1e-3)
        assert row["time/sync_s"] >= 0 and torch.isfinite(torch.tensor(row["loss"]))
    return rows


def test_intuitor_three_steps_with_resume_equal_a_straight_run(tmp_path):
    def raw_for(steps, where="resumed"):
        return tiny_overrides(tmp_path / where, max_steps=steps, learning_rate=1e-3, **VLLM)

    two_then_resume(raw_for)
    assert train(raw_for(3, "straight")) == 0
    resumed, straight = weights(tmp_path / "resumed", 3), weights(tmp_path / "straight", 3)
    assert any(not torch.equal(resumed[k], weights(tmp_path / "resumed", 1)[k]) for k in resumed)  # it trained
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


def test_grpo_three_steps_with_resume_and_sequence_correction(tmp_path):
    def raw_for(steps):
        return tiny_overrides(tmp_path / "grpo", method="grpo", max_steps=steps,
                              vllm_importance_sampling_correction="sequence", **VLLM)

    rows = two_then_resume(raw_for)
    assert all("rewards/math_answer/mean" in r for r in rows)


def test_azr_three_steps_with_resume(tmp_path):
    def raw_for(steps):
        return azr_overrides(tmp_path / "azr", max_steps=steps, max_completion_length=48,
                             max_prompt_length=512, **VLLM)  # tiny's 1024 positions hold both

    rows = two_then_resume(raw_for)
    assert all(any(k.startswith("azr/") for k in r) for r in rows)
