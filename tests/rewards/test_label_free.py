"""Label-free rewards against slow references: per-token entropy (both kernels), token_entropy,
trajectory_logprob, majority_vote, answer_agreement; the masked group normalisation; one forward."""

import math

import pytest
import torch

from selftaught.advantages import combine_advantages, group_advantages
from selftaught.config import build_config
from selftaught.errors import UserError
from selftaught.fused_logprobs import fused_token_statistics
from selftaught.ops import token_statistics
from selftaught.rewards import (AnswerAgreementReward, MajorityVoteReward, Scores, TokenEntropyReward,
                                TrajectoryLogprobReward, build_reward)
from selftaught.rewards.token_entropy import answer_token_mask
from selftaught.trainer import Trainer

from conftest import tiny_overrides


def brute_entropy(logits, mask, temperature):
    """Explicit loops, float64 full softmax over the vocabulary."""
    B, T, V = logits.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                continue
            p = torch.softmax(logits[b, t].double() / temperature, -1)
            out[b, t] = -sum(float(p[j]) * math.log(float(p[j])) for j in range(V) if p[j] > 0)
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_token_entropy_both_kernels_match_brute_force(temperature, chunk_size):
    torch.manual_seed(0)
    B, T, H, V = 3, 5, 8, 37
    hidden = torch.randn(B, T, H)
    weight = torch.randn(V, H) * 2
    bias = torch.randn(V)
    targets = torch.randint(0, V, (B, T))
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 3:] = False  # padding after an early EOS
    mask[2, 1] = False  # an interior masked position
    targets[0, 3:] = -100  # padding ids are ignored
    logits = hidden @ weight.T + bias
    expected = brute_entropy(logits, mask, temperature)
    chunked = token_statistics(logits, targets, mask, temperature, chunk_size, entropy=True)
    fused = fused_token_statistics(hidden, weight, targets, mask, temperature, chunk_size, bias=bias, entropy=True)
    for stats in (chunked, fused):
        torch.testing.assert_close(stats.entropy.double(), expected, atol=1e-5, rtol=1e-5)
        assert (stats.entropy[~mask] == 0).all()
        assert not stats.entropy.requires_grad
    # asking for the entropy changes nothing else
    plain = token_statistics(logits, targets, mask, temperature, chunk_size)
    torch.testing.assert_close(chunked.logprobs, plain.logprobs)
    torch.testing.assert_close(chunked.self_certainty, plain.self_certainty)
    assert plain.entropy is None


def test_token_entropy_extremes_uniform_and_peaked():
    V = 50
    uniform = torch.zeros(1, 1, V)
    peaked = torch.full((1, 1, V), -1e4)
    peaked[..., 7] = 0.0  # underflow everywhere else: e·log e must give 0, not NaN
    targets = torch.zeros(1, 1, dtype=torch.long)
    assert token_statistics(uniform, targets, entropy=True).entropy.item() == pytest.approx(math.log(V), abs=1e-5)
    assert token_statistics(peaked, targets, entropy=True).entropy.item() == pytest.approx(0.0, abs=1e-6)


def test_bf16_logits_entropy_close_to_fp32():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 300) * 3
    targets = torch.randint(0, 300, (2, 4))
    full = token_statistics(logits, targets, temperature=0.9, entropy=True).entropy
    half = token_statistics(logits.bfloat16(), targets, temperature=0.9, entropy=True).entropy
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=0.05, rtol=0.02)


class CharTokenizer:
    """Each id is one vocabulary string; decode concatenates (specials dropped when asked)."""

    def __init__(self, vocab, special=()):
        self.vocab, self.special = vocab, set(special)

    def decode(self, ids, skip_special_tokens=False):
        return "".join(self.vocab[i] for i in ids if not (skip_special_tokens and i in self.special))


def _scores(logp, entropy, mask):
    return Scores(old_logprobs=logp, self_certainty=torch.zeros(len(logp)), token_entropy=entropy,
                  completion_mask=mask)


def test_token_entropy_and_trajectory_logprob_rewards_are_negative_mean_entropy_and_mean_logprob():
    torch.manual_seed(2)
    entropy, logp = torch.rand(3, 6), -torch.rand(3, 6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    entropy[~mask], logp[~mask] = 9.0, -9.0  # must not leak from padding
    scores = _scores(logp, entropy, mask)
    got_h = TokenEntropyReward()(["a"] * 3, {}, scores)
    got_l = TrajectoryLogprobReward()(["a"] * 3, {}, scores)
    for b in range(3):
        real = [t for t in range(6) if mask[b, t]]
        h = -sum(float(entropy[b, t]) for t in real) / len(real) if real else 0.0
        lp = sum(float(logp[b, t]) for t in real) / len(real) if real else 0.0
        assert got_h[b].item() == pytest.approx(h, abs=1e-6)
        assert got_l[b].item() == pytest.approx(lp, abs=1e-6)


def test_token_entropy_answer_only_averages_the_answer_tokens():
    vocab = ["So ", "the ", "answer ", "is ", "1", "2", ".", "<eos>", "<pad>", "x"]
    tok = CharTokenizer(vocab, special=(7, 8))
    ids = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [9, 9, 9, 7, 8, 8, 8, 8]])
    mask = torch.tensor([[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    completions = ["So the answer is 12.", "xxx"]
    answer = answer_token_mask(tok, ids, mask, completions)
    assert answer[0].tolist() == [False, False, False, False, True, True, False, False]  # "1", "2"
    assert answer[1].tolist() == mask[1].tolist()  # no answer: all real tokens
    entropy = torch.arange(16, dtype=torch.float32).view(2, 8)

    class Rollout:
        completion_ids = ids

    reward = TokenEntropyReward(answer_only=True, tokenizer=tok)(completions, {}, _scores(-entropy, entropy, mask),
                                                                 rollout=Rollout)
    assert reward[0].item() == pytest.approx(-(4 + 5) / 2)
    assert reward[1].item() == pytest.approx(-(8 + 9 + 10 + 11) / 4)


def brute_majority(answers, equal):
    """Most common answer by pairwise equivalence; ties → first occurring; None never wins."""
    best, best_count = None, 0
    for i, a in enumerate(answers):
        if a is None:
            continue
        count = sum(b is not None and equal(b, a) for b in answers)
        if count > best_count:  # strict: an earlier answer keeps a tie
            best, best_count = i, count
    return [float(best is not None and a is not None and equal(a, answers[best])) for a in answers]


def test_majority_vote_equivalence_ties_and_no_answer():
    from selftaught.rewards.math_answer import answers_match

    reward = MajorityVoteReward(group_size=4)
    groups = [
        ["The answer is 0.5", "so 1/2", "\\boxed{\\frac{1}{2}}", "it is 3"],  # equivalent forms win 3:1
        ["it is 3", "answer 4", "4 it is", "3!"],  # tie 2:2 → the first occurring answer (3)
        ["no idea", "none", "still nothing", "really"],  # no answers: all 0
        ["7", "nothing", "8", "nothing"],  # tie 1:1 between answers → 7; no-answer rows 0
    ]
    got = reward([t for g in groups for t in g], {}, None).view(4, 4).tolist()
    assert got == [[1, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    from selftaught.rewards.math_answer import extract_answer
    for g, row in zip(groups, got):
        assert row == brute_majority([extract_answer(t) for t in g], answers_match)


def test_answer_agreement_is_the_share_of_equivalent_answers():
    from selftaught.rewards.math_answer import answers_match, extract_answer

    texts = ["0.5", "1/2", "3", "none", "2", "2.0", "2", "x"]
    got = AnswerAgreementReward(group_size=4)(texts, {}, None)
    expected = []
    for g in range(2):
        answers = [extract_answer(t) for t in texts[4 * g:4 * g + 4]]
        for a in answers:
            expected.append(0.0 if a is None else sum(b is not None and answers_match(a, b) for b in answers) / 4)
    assert got.tolist() == pytest.approx(expected)
    assert got.tolist() == pytest.approx([0.5, 0.5, 0.25, 0.0, 0.75, 0.75, 0.75, 0.0])


def brute_masked_advantages(rewards, G, eps):
    out = []
    for g in range(0, len(rewards), G):
        group = rewards[g:g + G]
        real = [r for r in group if not math.isnan(r)]
        if len(real) < 2:
            out += [0.0] * G
            continue
        mean = sum(real) / len(real)
        std = math.sqrt(sum((r - mean) ** 2 for r in real) / (len(real) - 1))
        out += [0.0 if math.isnan(r) else ((r - mean) / (std + eps) if std + eps > 0 else 0.0) for r in group]
    return out


def test_none_rewards_are_masked_out_of_the_group_normalisation():
    nan = float("nan")
    rewards = [1.0, nan, 3.0, 0.0, nan, nan, nan, 5.0, 2.0, 2.0, 4.0, nan]
    got = group_advantages(torch.tensor(rewards), 4, eps=1e-4)
    assert got.tolist() == pytest.approx(brute_masked_advantages(rewards, 4, 1e-4), abs=1e-6)
    # no NaN rows: the masked path agrees with the plain one
    full = torch.tensor([1.0, 2.0, 3.0, 0.5, 4.0, 4.0, 1.0, 0.0])
    torch.testing.assert_close(group_advantages(full, 4), torch.tensor(brute_masked_advantages(full.tolist(), 4,
                                                                                               1e-4)))
    # combined with a fully rewarded source: only the masked source's rows drop out
    total = combine_advantages({"user": torch.tensor(rewards), "sc": torch.arange(12.0)}, {"user": 1.0, "sc": 0.5}, 4)
    assert torch.isfinite(total).all()
    torch.testing.assert_close(total, got + 0.5 * group_advantages(torch.arange(12.0), 4))
    batch = group_advantages(torch.tensor(rewards), 4, scale_rewards="batch")
    real = torch.tensor([r for r in rewards if not math.isnan(r)])
    assert batch[0].item() == pytest.approx((1.0 - 4.0 / 3) / (float(real.std()) + 1e-4), abs=1e-5)


def test_config_names_come_from_the_registry():
    with pytest.raises(UserError, match="did you mean 'majority_vote'"):
        build_config({"rewards": [{"name": "majority_vot"}]})
    with pytest.raises(UserError, match="answer_only applies to token_entropy"):
        build_config({"rewards": [{"name": "majority_vote", "answer_only": True}]})
    for name in ["majority_vote", "answer_agreement", "token_entropy", "trajectory_logprob", "pkg.mod:fn",
                 "rewards/mine.py:score"]:
        assert build_config({"rewards": [{"name": name}]}).rewards[0].name == name
    with pytest.raises(ValueError):
        build_reward("majority_vote")  # needs the group size


def test_all_token_sources_come_from_one_forward_per_micro_batch(tmp_path):
    """Self-certainty alone and every token-level source on: the same number of forward calls."""
    calls = {}
    for label, rewards in [("sc", [{"name": "self_certainty"}]),
                           ("all", [{"name": "self_certainty"}, {"name": "token_entropy"},
                                    {"name": "trajectory_logprob"}, {"name": "majority_vote"},
                                    {"name": "answer_agreement"}])]:
        trainer = Trainer(build_config(tiny_overrides(tmp_path / label, rewards=rewards, per_device_train_batch_size=4,
                                                      gradient_accumulation_steps=2)))
        rollout = trainer.episodes.collect(trainer.sampler, 8)
        model = trainer.accelerator.unwrap_model(trainer.model)
        count = [0]
        handle = model.register_forward_pre_hook(lambda *args: count.__setitem__(0, count[0] + 1))
        scores = trainer.score(rollout)
        handle.remove()
        calls[label] = count[0]
        rewards_now = trainer.episodes.rewards(rollout, scores)
        if label == "all":
            assert scores.token_entropy is not None and scores.token_entropy.shape == rollout.completion_mask.shape
            assert set(rewards_now) == {"self_certainty", "token_entropy", "trajectory_logprob", "majority_vote",
                                        "answer_agreement"}
            assert all(torch.isfinite(v).all() for v in rewards_now.values())
        else:
            assert scores.token_entropy is None  # not asked for: not computed
    assert calls == {"sc": 2, "all": 2}  # 8 rows, micro-batches of 4


def test_trainer_rewards_match_a_brute_force_forward(tmp_path):
    """token_entropy and trajectory_logprob from Trainer.score equal per-sequence full-softmax loops."""
    trainer = Trainer(build_config(tiny_overrides(tmp_path, temperature=0.7, rewards=[
        {"name": "token_entropy"}, {"name": "trajectory_logprob"}])))
    rollout = trainer.episodes.collect(trainer.sampler, 4)
    rollout.completion_mask[0, 3:] = False  # an early end: padding inside the batch
    scores = trainer.score(rollout)
    rewards = trainer.episodes.rewards(rollout, scores)
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    for b in range(len(rollout)):
        prompt = rollout.prompt_ids[b][rollout.prompt_mask[b].bool()]
        answer = rollout.completion_ids[b][rollout.completion_mask[b].bool()]
        with torch.no_grad():
            logits = model(input_ids=torch.cat([prompt, answer])[None]).logits[0].double() / 0.7
        h, lp = [], []
        for t in range(len(answer)):
            p = torch.softmax(logits[len(prompt) - 1 + t], -1)
            h.append(-float((p * p.log()).sum()))
            lp.append(math.log(float(p[answer[t]])))
        assert rewards["token_entropy"][b].item() == pytest.approx(-sum(h) / len(h), abs=1e-4)
        assert rewards["trajectory_logprob"][b].item() == pytest.approx(sum(lp) / len(lp), abs=1e-4)


@pytest.mark.parametrize("name", ["majority_vote", "answer_agreement", "token_entropy", "trajectory_logprob"])
def test_each_label_free_recipe_is_valid_and_names_its_source(name):
    from selftaught.config import load_config

    from conftest import ROOT

    config = load_config(ROOT / "configs" / f"{name}_tiny.yaml")
    assert [(r.name, r.weight) for r in config.rewards] == [(name, 1.0), ("math_answer", 0.0)]


def test_majority_vote_run_logs_the_majority_agreement(tmp_path):
    history = Trainer(build_config(tiny_overrides(tmp_path, max_steps=1, rewards=[{"name": "majority_vote"}]))).train()
    assert 0.0 <= history[0]["majority_vote/agreement"] <= 1.0
    assert history[0]["reward/mean"] == pytest.approx(history[0]["rewards/majority_vote/mean"])


def test_entropy_block_size_does_not_change_the_result(monkeypatch):
    import selftaught.ops as ops

    torch.manual_seed(3)
    logits = torch.randn(2, 7, 40)
    logits[0, 0, :5] = float("-inf")  # e.g. a banned token: e·u must be 0, not NaN
    targets = torch.randint(5, 40, (2, 7))
    expected = brute_entropy(logits, torch.ones(2, 7, dtype=torch.bool), 0.8)
    for rows in (1, 3, 256):
        monkeypatch.setitem(ops.ENTROPY_BLOCK_ROWS, "cpu", rows)
        got = token_statistics(logits, targets, temperature=0.8, chunk_size=5, entropy=True).entropy
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)
