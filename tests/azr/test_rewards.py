"""AZR rewards against hand-computed values, TRR++ against an explicit per-group loop."""

import statistics

import pytest
import torch

from selftaught.azr.episodes import AZREpisodes, TrainedRow
from selftaught.azr.rewards import MALFORMED, learnability_reward, proposer_reward, solve_rate, solver_reward
from selftaught.azr.tasks import TASK_TYPES
from selftaught.config import build_config
from selftaught.rewards import Scores
from selftaught.rollout import Rollout


def test_solve_rate_counts_correct_rollouts():
    assert solve_rate([True, False, False, True]) == 0.5
    assert solve_rate([False] * 8) == 0.0
    assert solve_rate([True] * 8) == 1.0
    with pytest.raises(ValueError):
        solve_rate([])


@pytest.mark.parametrize("rate, expected", [
    (0.0, 0.0),        # never solved: no learning signal
    (1.0, 0.0),        # always solved: too easy
    (1 / 8, 0.875),
    (0.25, 0.75),
    (0.5, 0.5),
    (5 / 8, 0.375),
    (7 / 8, 0.125),
])
def test_learnability_reward(rate, expected):
    assert learnability_reward(rate) == pytest.approx(expected)


@pytest.mark.parametrize("valid, rate, paper, code", [
    (False, None, -1.0, -1.0),   # invalid proposal = malformed
    (True, 0.0, 0.0, -0.5),      # r̄ = 0: paper 0, AZR code −0.5
    (True, 1.0, 0.0, -0.5),      # r̄ = 1
    (True, 0.25, 0.75, 0.75),
    (True, 0.5, 0.5, 0.5),
])
def test_proposer_reward_paper_and_code(valid, rate, paper, code):
    assert proposer_reward(valid, rate, "paper") == pytest.approx(paper)
    assert proposer_reward(valid, rate, "code") == pytest.approx(code)


def test_proposer_reward_needs_a_rate_for_valid_proposals():
    with pytest.raises(ValueError):
        proposer_reward(True, None)


@pytest.mark.parametrize("well_formed, correct, expected", [
    (True, True, 1.0), (True, False, -0.5), (False, False, -1.0), (False, True, -1.0)])
def test_solver_reward(well_formed, correct, expected):
    assert solver_reward(well_formed, correct) == expected


# ----------------------------------------------------------------- TRR++


def _episodes(**azr):
    config = build_config({"method": "azr", "azr": azr})
    return AZREpisodes(config, tokenizer=None)  # advantages need neither tokenizer nor executor


def _row(task_type, role, reward):
    """A trained row whose format-aware reward is `reward` (-1 malformed, -0.5 wrong, else r_propose / 1)."""
    if reward == MALFORMED:
        return TrainedRow(task_type, role, False, "unparsable", None)
    if role == "solve":
        return TrainedRow(task_type, role, True, None, 10, correct=reward == 1.0)
    return TrainedRow(task_type, role, True, None, 10, solve_rate=1.0 - reward if reward > 0 else 0.0)


def _rollout(types, roles, rewards):
    n = len(types)
    rows = [_row(t, r, reward) for t, r, reward in zip(types, roles, rewards)]
    assert [_episodes().row_reward(row) for row in rows] == pytest.approx(rewards)
    return Rollout(prompt_ids=torch.zeros(n, 1, dtype=torch.long), prompt_mask=torch.ones(n, 1, dtype=torch.bool),
                   completion_ids=torch.zeros(n, 1, dtype=torch.long),
                   completion_mask=torch.ones(n, 1, dtype=torch.bool), prompts=[""] * n, completions=[""] * n,
                   extras={"azr": rows})


def _explicit_trr(types, roles, totals, eps):
    out = []
    for k in range(len(totals)):
        group = [totals[j] for j in range(len(totals)) if types[j] == types[k] and roles[j] == roles[k]]
        mu, sigma = statistics.mean(group), statistics.stdev(group)
        out.append((totals[k] - mu) / (sigma + eps))
    return out


def _six_groups():
    gen = torch.Generator().manual_seed(0)
    types, roles, rewards = [], [], []
    choices = {"propose": [-1.0, 0.0, 0.25, 0.5, 0.875], "solve": [-1.0, -0.5, 1.0]}
    for _ in range(5):  # interleaved rows: groups need not be contiguous
        for task_type in TASK_TYPES:
            for role in ("propose", "solve"):
                options = choices[role]
                types.append(task_type)
                roles.append(role)
                rewards.append(options[int(torch.randint(len(options), (1,), generator=gen))])
    return types, roles, rewards


def test_trr_plus_plus_matches_an_explicit_per_group_computation():
    episodes = _episodes()
    types, roles, rewards = _six_groups()
    rollout = _rollout(types, roles, rewards)
    r = episodes.rewards(rollout, Scores(old_logprobs=torch.zeros(len(rewards), 1),
                                         self_certainty=torch.zeros(len(rewards))))
    assert set(r) == {"azr"}
    adv = episodes.advantages(rollout, r)
    expected = _explicit_trr(types, roles, rewards, episodes.config.advantage_epsilon)
    assert adv.tolist() == pytest.approx(expected, abs=1e-5)
    # every group's advantages are centred
    for key in set(zip(types, roles)):
        rows = [k for k in range(len(types)) if (types[k], roles[k]) == key]
        assert abs(float(adv[rows].sum())) < 1e-4


def test_trr_plus_plus_equal_rewards_give_zero_advantage():
    types = ["deduction"] * 4 + ["abduction"] * 4
    roles = ["solve"] * 8
    rewards = [-1.0] * 4 + [1.0, 1.0, -0.5, -0.5]
    adv = _episodes().advantages(_rollout(types, roles, rewards), {"azr": torch.tensor(rewards)})
    assert adv[:4].tolist() == [0.0] * 4
    assert adv[4] > 0 > adv[6]


def test_self_certainty_is_added_to_solver_rows_only():
    episodes = _episodes(self_certainty_weight=0.5)
    types, roles, rewards = _six_groups()
    rollout = _rollout(types, roles, rewards)
    sc = torch.linspace(0.1, 2.0, len(rewards))
    r = episodes.rewards(rollout, Scores(old_logprobs=torch.zeros(len(rewards), 1), self_certainty=sc))
    solver = torch.tensor([role == "solve" for role in roles])
    assert torch.equal(r["self_certainty"], torch.where(solver, sc, torch.zeros_like(sc)))
    assert episodes.reward_weights == {"azr": 1.0, "self_certainty": 0.5}
    totals = [rw + (0.5 * float(s) if role == "solve" else 0.0) for rw, s, role in zip(rewards, sc, roles)]
    expected = _explicit_trr(types, roles, totals, episodes.config.advantage_epsilon)
    assert episodes.advantages(rollout, r).tolist() == pytest.approx(expected, abs=1e-5)
