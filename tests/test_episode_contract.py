"""The episode-source and sampler contracts the trainer relies on (episodes.EpisodeSource,
rollout.RolloutSampler): a source that writes only the required methods trains; anything
else is refused with one line; the logged total reward is the one the advantages use."""

import pytest
import torch
from conftest import tiny_overrides

from selftaught.advantages import combine_advantages, weighted_total
from selftaught.config import build_config
from selftaught.episodes import EpisodeSource
from selftaught.errors import UserError
from selftaught.models import load_model
from selftaught.rollout import RolloutSampler, SelftaughtSampler, encode_prompts
from selftaught.trainer import Trainer

PROMPTS = ["Q: 1 + 2?\nA:", "Q: 3 + 4?\nA:"]


class LengthEpisodes(EpisodeSource):
    """The smallest source: fixed prompts, reward = completion length; every optional hook left default."""

    reward_weights = {"length": 1.0, "logged": 0.0}

    def __init__(self, config, tokenizer):
        self.config = config

    def collect(self, sampler, num_completions):
        G = self.config.num_generations
        return sampler.sample(PROMPTS * (num_completions // G // len(PROMPTS)), num_generations=G)

    def rewards(self, rollout, scores):
        length = rollout.completion_mask.sum(-1).float()
        return {"length": length, "logged": torch.full_like(length, 100.0)}

    def advantages(self, rollout, rewards):
        return combine_advantages(rewards, self.reward_weights, self.config.num_generations)


def test_a_source_with_only_the_required_methods_trains_and_logs_its_weighted_total(tmp_path):
    trainer = Trainer(build_config(tiny_overrides(tmp_path, max_steps=2)), episodes=LengthEpisodes)
    history = trainer.train()
    assert [row["step"] for row in history] == [1, 2]
    for row in history:  # the weight-0 source (100 everywhere) is logged, never counted in the total
        assert row["rewards/logged/mean"] == 100.0
        assert row["reward/mean"] == pytest.approx(row["rewards/length/mean"])
    assert (tmp_path / "checkpoints" / "step-2").is_dir()  # default state_dict / export / close were used


def test_weighted_total_counts_only_trained_sources_and_missing_rows_as_zero():
    rewards = {"a": torch.tensor([1.0, float("nan"), 3.0]), "b": torch.tensor([10.0, 20.0, 30.0]),
               "c": torch.tensor([5.0, 5.0, 5.0])}
    total = weighted_total(rewards, {"a": 2.0, "b": 0.5, "c": 0.0})
    expected = [2 * 1 + 0.5 * 10, 0 + 0.5 * 20, 2 * 3 + 0.5 * 30]  # explicit: NaN adds 0, weight 0 adds 0
    assert total.tolist() == pytest.approx(expected)
    assert weighted_total(rewards, {}).tolist() == [0.0, 0.0, 0.0]  # absent = 0, as in combine_advantages
    with pytest.raises(ValueError, match="not computed"):
        weighted_total(rewards, {"missing": 1.0})


def test_the_base_weights_cannot_be_mutated_through_a_subclass():
    with pytest.raises(TypeError):
        EpisodeSource.reward_weights["x"] = 1.0


@pytest.mark.parametrize("episodes", [object(), object, dict])
def test_an_episode_source_that_is_not_one_is_refused_with_one_line(tmp_path, episodes):
    with pytest.raises(UserError, match="is not a selftaught.episodes.EpisodeSource"):
        Trainer(build_config(tiny_overrides(tmp_path)), episodes=episodes)


def test_a_source_without_set_processes_refuses_several_processes():
    from selftaught.distributed import Processes

    source = LengthEpisodes(None, None)
    source.set_processes(Processes.single())  # one process: fine
    with pytest.raises(UserError, match="does not support multiple processes"):
        source.set_processes(Processes(rank=0, world=2))


class CountingSampler(RolloutSampler):
    """Our sampler, counting its calls: a user sampler passed as `Trainer(sampler=...)`."""

    def __init__(self, trainer):
        self.inner = SelftaughtSampler(trainer.accelerator.unwrap_model(trainer.model), trainer.tokenizer,
                             max_prompt_length=trainer.config.max_prompt_length,
                             max_completion_length=trainer.config.max_completion_length,
                             temperature=trainer.config.temperature)
        self.calls, self.closed = 0, False

    def sample(self, prompts, num_generations=1, greedy=False, extras=None):
        self.calls += 1
        return self.inner.sample(prompts, num_generations, greedy, extras)

    def close(self):
        self.closed = True


def test_a_sampler_factory_is_built_with_the_trainer_used_and_closed(tmp_path):
    trainer = Trainer(build_config(tiny_overrides(tmp_path, max_steps=2)), sampler=CountingSampler)
    assert isinstance(trainer.sampler, CountingSampler)
    trainer.train()
    assert trainer.sampler.calls == 2 and trainer.sampler.closed


def test_a_sampler_that_is_not_one_is_refused(tmp_path):
    with pytest.raises(UserError, match="is not a selftaught.rollout.RolloutSampler"):
        Trainer(build_config(tiny_overrides(tmp_path)), sampler=lambda trainer: object())


def test_encode_prompts_pads_and_truncates_on_the_left_without_touching_the_tokenizer():
    _, tokenizer = load_model("tiny-random")
    tokenizer.padding_side, tokenizer.truncation_side = "right", "right"  # a user's settings
    prompts = ["Q: 12 + 345 = ?\nA:", "Q: 1?", "a much longer prompt that will be cut from the left side"]
    ids, mask = encode_prompts(tokenizer, prompts, max_prompt_length=8)
    assert (tokenizer.padding_side, tokenizer.truncation_side) == ("right", "right")
    for k, prompt in enumerate(prompts):  # explicit reference: the last ≤ 8 tokens, right-aligned
        full = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        kept = full[-8:]
        assert ids[k, ids.shape[1] - len(kept):].tolist() == kept
        assert mask[k].tolist() == [0] * (ids.shape[1] - len(kept)) + [1] * len(kept)
        assert ids[k, :ids.shape[1] - len(kept)].tolist() == [tokenizer.pad_token_id] * (ids.shape[1] - len(kept))
    assert ids.shape[1] == 8


def test_a_source_missing_a_required_method_cannot_be_built_and_says_which():
    class NoRewards(EpisodeSource):
        def collect(self, sampler, num_completions):
            raise AssertionError

        def advantages(self, rollout, rewards):
            raise AssertionError

    with pytest.raises(TypeError, match="rewards"):
        NoRewards()


def test_a_sampler_argument_that_is_neither_a_sampler_nor_callable_is_refused_before_loading(tmp_path, monkeypatch):
    import selftaught.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "load_model", lambda *a, **k: pytest.fail("loaded a model first"))
    with pytest.raises(UserError, match="neither a selftaught.rollout.RolloutSampler nor a callable"):
        Trainer(build_config(tiny_overrides(tmp_path)), sampler=object())


def test_a_source_whose_rewards_are_empty_stops_with_one_line(tmp_path):
    class NoRewardsAtAll(LengthEpisodes):
        def rewards(self, rollout, scores):
            return {}

    trainer = Trainer(build_config(tiny_overrides(tmp_path, max_steps=1)), episodes=NoRewardsAtAll)
    with pytest.raises(UserError, match="returned no rewards"):
        trainer.train()


def test_every_built_in_reward_source_is_a_reward_source_with_the_interface_defaults():
    from selftaught.rewards import REWARDS, RewardSource, build_reward

    for name in REWARDS:
        source = build_reward(name, "online", group_size=2, tokenizer=None, answer_only=False)
        assert isinstance(source, RewardSource), name
        assert isinstance(source.needs_token_entropy, bool) and isinstance(source.metrics(), dict), name
    assert build_reward("token_entropy", "online", group_size=2, tokenizer=None, answer_only=False).needs_token_entropy
    assert build_reward("math_answer", "online", group_size=2, tokenizer=None, answer_only=False).metrics() == {
        "timeouts": 0.0, "over_budget": 0.0}


@pytest.mark.parametrize("attribute, name", [("weights", "reward_weights"),
                                             ("needs_reference_self_certainty", "needs_reference")])
def test_a_source_with_a_misnamed_attribute_is_refused_with_one_line(tmp_path, attribute, name):
    misnamed = type("Misnamed", (LengthEpisodes,), {attribute: {"length": 1.0} if attribute == "weights" else True})
    with pytest.raises(UserError, match=f"Misnamed: an episode source names these {name} \\(not {attribute}\\)"):
        Trainer(build_config(tiny_overrides(tmp_path)), episodes=misnamed)
