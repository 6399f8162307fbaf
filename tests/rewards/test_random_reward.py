"""The random-reward control: fair coins, independent of the completions, reproducible under a seed."""

import torch

from selftaught.advantages import group_advantages
from selftaught.rewards import build_reward, label_free_rewards


def test_random_is_a_built_in_label_free_source():
    assert "random" in label_free_rewards()


def test_coins_are_fair_and_ignore_what_was_written():
    source = build_reward("random")
    torch.manual_seed(0)
    same = source(["The answer is 4."] * 4000, {}, None)
    assert set(same.unique().tolist()) == {0.0, 1.0}
    assert abs(same.mean().item() - 0.5) < 0.03  # 4000 coins: 4.7 standard errors of room
    # identical texts get independent coins: the reward is not a function of the text
    assert 0.4 < (same[:2000] == same[2000:]).float().mean().item() < 0.6


def test_the_seeded_stream_decides_the_coins():
    source = build_reward("random")
    torch.manual_seed(3)
    first = source(["a"] * 64, {}, None)
    torch.manual_seed(3)
    assert torch.equal(first, source(["b"] * 64, {}, None))


def test_random_rewards_are_group_normalised_like_the_others():
    torch.manual_seed(1)
    rewards = build_reward("random")(["x"] * 32, {}, None)
    advantages = group_advantages(rewards, 8).view(4, 8)
    assert torch.allclose(advantages.sum(dim=1), torch.zeros(4), atol=1e-5)
