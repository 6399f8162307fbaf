"""A rollout fixed in advance, and the trainer's first step on it with its gradient recorded.

Tests that compare selftaught's update with a reference (a brute-force one in
tests/test_grpo_variants.py, TRL's GRPOTrainer in tests/test_trl_parity.py) give every
trainer the same prompts, completions, rewards and sampler log-probs: left-padded prompts
of different lengths, completions that end in EOS early, at the length limit, or not at all
(truncated), and rewards with None (no reward) in places.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selftaught.rollout import Rollout, RolloutSampler, pad_token_rows, repeat_per_completion

REWARD_COLUMNS = ("reward_a", "reward_b")


@dataclass
class FixedCase:
    prompts: list[list[int]]  # token ids of each distinct prompt
    completions: list[list[int]]  # G rows per prompt, consecutive
    rewards: dict[str, list[float | None]]  # column → one value per completion
    num_generations: int
    eos: int
    sampler_logprobs: list[list[float]] | None = None  # as vLLM would report them

    @property
    def truncated(self) -> list[bool]:
        """Rows that did not end in EOS."""
        return [bool(row) and row[-1] != self.eos for row in self.completions]


def make_case(eos: int, vocab: int, num_prompts: int = 4, num_generations: int = 2, max_completion_length: int = 6,
              seed: int = 0) -> FixedCase:
    """Deterministic token rows (ids ≥ 3, so never EOS or padding by accident); rows ending in EOS
    (one exactly at the limit) and truncated rows (the limit reached without EOS) in every group."""
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(3, vocab, (3 + (i * 2) % 5,), generator=g).tolist() for i in range(num_prompts)]
    completions = []
    for i in range(num_prompts * num_generations):
        kind = i % 3
        if kind == 0:  # truncated: the limit, no EOS
            row = torch.randint(3, vocab, (max_completion_length,), generator=g).tolist()
        elif kind == 1:  # ends early in EOS
            row = torch.randint(3, vocab, (1 + i % (max_completion_length - 2),), generator=g).tolist() + [eos]
        else:  # ends in EOS exactly at the limit: not truncated
            row = torch.randint(3, vocab, (max_completion_length - 1,), generator=g).tolist() + [eos]
        completions.append(row)
    n = len(completions)
    reward_a = [round(float(v), 3) for v in torch.randn(n, generator=g)]
    reward_b = [float(v) for v in (torch.rand(n, generator=g) > 0.5)]
    reward_a[1] = None  # no reward a for one row
    reward_a[num_generations * 2: num_generations * 3] = [None] * num_generations  # a group without reward a
    reward_b[num_generations * 2] = None  # ... and a row there without either
    return FixedCase(prompts, completions, {"reward_a": reward_a, "reward_b": reward_b}, num_generations, eos)


def reward_function(column: str):
    """A TRL-signature reward function that returns the fixed rewards of `column`."""
    def reward(prompts, completions, completion_ids=None, **columns):
        return list(columns[column])

    reward.__name__ = column
    return reward


class FixedSampler(RolloutSampler):
    """Returns the case's rollout whatever the prompts (the trainer's episode source asks for G per prompt)."""

    def __init__(self, tokenizer, case: FixedCase):
        self.tokenizer, self.case = tokenizer, case

    def sample(self, prompts, num_generations=1, greedy=False, extras=None) -> Rollout:
        case, tok = self.case, self.tokenizer
        assert num_generations == case.num_generations and len(prompts) == len(case.prompts)
        rows = repeat_per_completion(case.prompts, num_generations)
        prompt_ids, prompt_mask = pad_token_rows(rows, tok.pad_token_id, left=True)
        completion_ids, completion_mask = pad_token_rows(case.completions, tok.pad_token_id, left=False)
        sampler_logprobs = None
        if case.sampler_logprobs is not None:
            sampler_logprobs = torch.zeros(completion_ids.shape)
            for i, values in enumerate(case.sampler_logprobs):
                sampler_logprobs[i, :len(values)] = torch.tensor(values)
        n = len(case.completions)
        return Rollout(prompt_ids=prompt_ids, prompt_mask=prompt_mask.long(), completion_ids=completion_ids,
                       completion_mask=completion_mask, prompts=[tok.decode(r) for r in rows],
                       completions=[tok.decode(r) for r in case.completions],
                       extras={"answer": [None] * n, **case.rewards}, sampler_logprobs=sampler_logprobs)


def record_optimizer_steps(trainer) -> list[tuple[dict, dict]]:
    """From now on, each optimizer step appends (name → gradient, name → weights the gradient was
    taken at) to the returned list, then steps."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    seen = []
    step = trainer.optimizer.step

    def record_then_step(*args, **kwargs):
        seen.append(({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None},
                     {n: p.detach().clone() for n, p in model.named_parameters()}))
        return step(*args, **kwargs)

    trainer.optimizer.step = record_then_step
    return seen


def first_step(trainer) -> tuple[dict, dict[str, torch.Tensor]]:
    """Train one optimizer step; (its metrics row, name → the gradient the optimizer was given)."""
    seen = record_optimizer_steps(trainer)
    row = trainer.train_step()[0]
    return row, seen[0][0]
