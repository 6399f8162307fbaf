"""User reward functions (TRL's signature): loaded by module:function and by file path, trained,
None rows masked, the Python API's callables, and every failure ends in one line, exit 2, with
the last checkpoint intact."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from selftaught.config import build_config
from selftaught.errors import UserError
from selftaught.trainer import Trainer

from conftest import ROOT, tiny_overrides

REWARDS_PY = textwrap.dedent('''
    import math

    CALLS = []

    def length_reward(prompts, completions, completion_ids, **columns):
        CALLS.append({"n": len(completions), "columns": sorted(columns)})
        assert len(prompts) == len(completions) == len(completion_ids) == len(columns["answer"])
        return [float(len(ids)) for ids in completion_ids]

    def some_none(prompts, completions, completion_ids, **columns):
        return [None if i % 2 else 1.0 + i for i in range(len(completions))]

    def fails_on_third_call(prompts, completions, completion_ids, **columns):
        CALLS.append(1)
        if len(CALLS) >= 3:
            raise ValueError("boom")
        return [0.0] * len(completions)

    def wrong_length(prompts, completions, completion_ids, **columns):
        return [1.0]

    def not_finite(prompts, completions, completion_ids, **columns):
        return [1.0] * (len(completions) - 1) + [math.nan]

    def raises(prompts, completions, completion_ids, **columns):
        raise RuntimeError("no way")
''')


@pytest.fixture
def reward_module(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(REWARDS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_rewards", None)
    yield tmp_path / "my_rewards.py"
    sys.modules.pop("my_rewards", None)


def test_module_function_trains_and_sees_every_column(tmp_path, reward_module):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1), "level": i % 3}) + "\n"
                            for i in range(8)))
    config = build_config(tiny_overrides(tmp_path / "run", data={"source": str(data), "prompt_template": "{prompt}"},
                                         rewards=[{"name": "my_rewards:length_reward"},
                                                  {"name": "self_certainty", "weight": 0.0}]))
    history = Trainer(config).train()
    import my_rewards

    assert my_rewards.CALLS and my_rewards.CALLS[0] == {"n": 4, "columns": ["answer", "level"]}
    assert "rewards/my_rewards:length_reward/mean" in history[-1]
    assert history[-1]["reward/mean"] == pytest.approx(history[-1]["rewards/my_rewards:length_reward/mean"])
    assert (tmp_path / "run" / "checkpoints" / "step-2").is_dir()


def test_file_path_function_trains_and_none_rows_are_left_out(tmp_path, reward_module):
    config = build_config(tiny_overrides(tmp_path / "run", rewards=[{"name": f"{reward_module}:some_none"}]))
    trainer = Trainer(config)
    rollout = trainer.episodes.collect(trainer.sampler, 4)
    rewards = trainer.episodes.rewards(rollout, trainer.score(rollout))
    values = rewards[f"{reward_module}:some_none"]
    assert torch.isnan(values[1]) and torch.isnan(values[3]) and values[0] == 1.0
    advantages = trainer.episodes.advantages(rollout, rewards)
    assert torch.isfinite(advantages).all() and (advantages == 0).all()  # one rewarded row per group of 2
    history = trainer.train()
    assert history[-1]["rewards/" + f"{reward_module}:some_none" + "/none_frac"] == 0.5


def test_python_api_takes_callables(tmp_path):
    seen = []

    def prefers_short(prompts, completions, completion_ids, **columns):
        seen.append(len(completions))
        return [-float(len(ids)) for ids in completion_ids]

    trainer = Trainer(build_config(tiny_overrides(tmp_path)), rewards=[prefers_short])
    assert trainer.episodes.reward_weights == {"math_answer": 0.0, "prefers_short": 1.0}
    trainer.train()
    assert seen == [4, 4]
    both = Trainer(build_config(tiny_overrides(tmp_path / "b", rewards=[{"name": "token_entropy"}])),
                   rewards=[(prefers_short, 0.5)])
    assert both.episodes.reward_weights == {"token_entropy": 1.0, "prefers_short": 0.5}


def _train_cli(tmp_path, rewards, **extra):
    raw = tiny_overrides(tmp_path / "run", rewards=rewards, **extra)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "selftaught", "train", "--config", str(path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("function, message", [
    ("wrong_length", "reward my_rewards:wrong_length: returned 1 values for 4 completions at step 1, rows 0-3"),
    ("not_finite", "reward my_rewards:not_finite: returned a non-finite value nan at step 1, row 3 of"),
    ("raises", "reward my_rewards:raises: raised RuntimeError: no way at step 1, rows 0-3"),
    ("missing_function", "reward my_rewards:missing_function: my_rewards has no function 'missing_function'"),
])
def test_user_function_errors_end_in_one_line_and_exit_2(tmp_path, reward_module, function, message):
    result = _train_cli(tmp_path, [{"name": f"my_rewards:{function}"}])
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]


def test_unimportable_module_and_file_exit_2(tmp_path):
    for name, message in [("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
                          ("missing/file.py:fn", "file not found")]:
        result = _train_cli(tmp_path, [{"name": name}])
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
        assert message in result.stderr


def test_a_failing_reward_leaves_the_last_checkpoint_intact(tmp_path, reward_module):
    """Steps 1 and 2 checkpoint; the reward raises at step 3: step-2 is untouched and resumable."""
    result = _train_cli(tmp_path, [{"name": "my_rewards:fails_on_third_call"}], max_steps=4)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "at step 3" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-1", "step-2"]  # no partial step-3
    state = torch.load(checkpoints / "step-2" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2
    config = build_config(tiny_overrides(tmp_path / "run", max_steps=3))
    trainer = Trainer(config, resume=True)  # the newest complete checkpoint loads
    assert trainer.step == 2


def test_trainer_rejects_rewards_with_a_custom_episode_source(tmp_path):
    with pytest.raises(UserError, match="computes its own"):
        Trainer(build_config(tiny_overrides(tmp_path)), episodes=object(), rewards=[lambda **k: []])
