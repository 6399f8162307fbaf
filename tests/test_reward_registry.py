"""A new reward source is one class and one registry line: the config accepts its name and
settings, and the trainer gives it what it declares it needs (gold answers, the reference
model, the group size, token entropy, answer-only masking) without knowing its name."""

import json

import pytest
import torch
from conftest import tiny_overrides

from selftaught.config import build_config
from selftaught.errors import UserError
from selftaught.rewards import REWARDS, RewardSource, build_reward
from selftaught.trainer import Trainer


class ConfidenceGain(RewardSource):
    """r = SC under the policy − SC under the reference, minus the mean token entropy, per group
    of G: a source that needs the reference, the entropy and the group size at once."""

    name = "confidence_gain"
    needs_reference = True
    needs_group_size = True
    needs_token_entropy = True
    accepts_answer_only = True
    calls: list = []

    def __init__(self, group_size: int, answer_only: bool):
        self.group_size, self.answer_only = group_size, answer_only

    @classmethod
    def from_spec(cls, spec):
        return cls(spec.group_size, spec.answer_only)

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        assert len(completions) % self.group_size == 0
        ConfidenceGain.calls.append({"group_size": self.group_size, "answer_only": self.answer_only,
                                     "reference": scores.ref_self_certainty is not None,
                                     "entropy": scores.token_entropy is not None})
        entropy = (scores.token_entropy * scores.mask()).sum(-1) / scores.mask().sum(-1).clamp(min=1)
        return (scores.self_certainty - scores.ref_self_certainty - entropy).float()


class GoldLength(RewardSource):
    """Needs gold answers: 1 when the completion is as long as the gold answer's text."""

    name = "gold_length"
    needs_answers = True

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        return torch.tensor([float(len(c) == len(a or "")) for c, a in zip(completions, extras["answer"])])


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(REWARDS, ConfidenceGain.name, ConfidenceGain)  # the one registry line
    monkeypatch.setitem(REWARDS, GoldLength.name, GoldLength)
    ConfidenceGain.calls = []


def test_a_registered_source_trains_with_what_it_declares(tmp_path, registered):
    config = build_config(tiny_overrides(tmp_path, max_steps=1, rewards=[
        {"name": "confidence_gain", "weight": 1.0, "answer_only": True}]))
    trainer = Trainer(config)
    assert trainer.reference is not None  # β = 0, yet the source's declaration loaded the reference
    history = trainer.train()
    assert ConfidenceGain.calls == [{"group_size": config.num_generations, "answer_only": True,
                                     "reference": True, "entropy": True}]
    assert "rewards/confidence_gain/mean" in history[0]


def test_the_config_reads_the_declarations_not_the_names(tmp_path, registered):
    with pytest.raises(UserError, match="answer_only applies to .*confidence_gain"):
        build_config(tiny_overrides(tmp_path, rewards=[{"name": "gold_length", "answer_only": True}]))
    with pytest.raises(UserError, match="did you mean 'confidence_gain'"):
        build_config(tiny_overrides(tmp_path, rewards=[{"name": "confidence_gian"}]))
    with pytest.raises(ValueError, match="needs the group size"):
        build_reward("confidence_gain")


def test_a_source_that_needs_answers_refuses_data_without_them_or_is_dropped_when_logged(tmp_path, registered):
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i} + 1 ="}) + "\n" for i in range(8)))
    overrides = tiny_overrides(tmp_path / "run", max_steps=1)
    overrides["data"] = {**overrides["data"], "source": str(data)}
    trained = {**overrides, "rewards": [{"name": "self_certainty"}, {"name": "gold_length", "weight": 1.0}]}
    with pytest.raises(UserError, match="reward gold_length needs gold answers"):
        Trainer(build_config(trained))
    logged = {**overrides, "rewards": [{"name": "self_certainty"}, {"name": "gold_length", "weight": 0.0}]}
    trainer = Trainer(build_config(logged))
    assert list(trainer.episodes.sources) == ["self_certainty"]
