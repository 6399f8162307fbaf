"""Why self-certainty ranks a small model's wrong answers above its right ones: a measurement.

    python scripts/self_certainty_anatomy.py [--model tiny-math] [--n 100] [--samples 8]

Samples `samples` completions of `n` held-out additions (τ = 1, the demo's setting)
and takes each completion token's full next-token distribution p_t (the vocabulary
is small, so the whole [N, T, V] log-softmax fits). Self-certainty is

    SC_t = KL(U ‖ p_t) = (1/V) Σ_j −log(V · p_t[j]),

an average over *every* vocabulary entry. The script splits that sum into the
`head` (the k most likely tokens, default 10: the plausible continuations) and the
`tail` (the V − k others), and prints per completion type (procedure / bare answer,
right / wrong):

- mean SC, its head and tail parts, token entropy H(p_t) and log p_t(o_t);
- the within-group AUROC (right vs wrong completions of one problem) of SC, of its
  head and tail parts alone, of −H and of mean log p.

Everything is computed from the model's own logits; nothing is assumed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.data import addition  # noqa: E402
from selftaught.diagnose import within_group_auroc  # noqa: E402
from selftaught.models import load_model  # noqa: E402
from selftaught.tiny.addition_corpus import ANSWER_CONTEXT  # noqa: E402
from selftaught.rewards.math_answer import answers_match, extract_answer  # noqa: E402
from selftaught.rollout import Sampler  # noqa: E402


@torch.no_grad()
def token_statistics(model, rollout, temperature: float, head_k: int) -> dict[str, torch.Tensor]:
    """Per completion (masked token means): sc, sc_head, sc_tail, entropy, logprob."""
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)
    attention = torch.cat([rollout.prompt_mask, rollout.completion_mask], 1).long()
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    T = rollout.completion_ids.shape[1]
    logits = model(input_ids=ids, attention_mask=attention, position_ids=positions).logits[:, -T - 1:-1]
    logp = (logits.double() / temperature).log_softmax(-1)  # [N, T, V]
    V = logp.shape[-1]
    contribution = -(logp + math.log(V)) / V  # SC_t = Σ_j contribution_j
    top = logp.topk(head_k, dim=-1).indices
    head = contribution.gather(-1, top).sum(-1)
    sc = contribution.sum(-1)
    per_token = {"sc": sc, "sc_head": head, "sc_tail": sc - head, "entropy": -(logp.exp() * logp).sum(-1),
                 "logprob": logp.gather(-1, rollout.completion_ids[..., None])[..., 0]}
    mask = rollout.completion_mask.double()
    return {k: (v * mask).sum(-1) / mask.sum(-1).clamp(min=1) for k, v in per_token.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-math")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--head-k", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = load_model(args.model)
    model.eval()
    problems = addition.generate(args.n, "heldout", seed=0)
    sampler = Sampler(model, tokenizer, max_prompt_length=64, max_completion_length=64,
                      temperature=args.temperature)
    rows = {k: [] for k in ("sc", "sc_head", "sc_tail", "entropy", "logprob")}
    correct, procedure = [], []
    for start in range(0, len(problems), 25):
        batch = problems[start:start + 25]
        rollout = sampler.sample([ANSWER_CONTEXT.format(prompt=p.prompt) for p in batch], args.samples)
        for key, values in token_statistics(model, rollout, args.temperature, args.head_k).items():
            rows[key].append(values)
        for i, text in enumerate(rollout.completions):
            correct.append(answers_match(extract_answer(text), batch[i // args.samples].answer))
            procedure.append(addition.uses_procedure(text))
    stats = {k: torch.cat(v).numpy() for k, v in rows.items()}
    correct, procedure = np.array(correct), np.array(procedure)
    V = len(tokenizer)
    print(f"{args.model}: V = {V}, {args.n} held-out problems × {args.samples} samples at τ = {args.temperature}; "
          f"head = top {args.head_k} tokens, tail = the other {V - args.head_k}")
    print(f"{'completions':<24}{'n':>6}{'SC':>8}{'head':>8}{'tail':>8}{'tail %':>8}{'H':>8}{'log p':>8}")
    groups = {"procedure, right": procedure & correct, "procedure, wrong": procedure & ~correct,
              "bare, right": ~procedure & correct, "bare, wrong": ~procedure & ~correct}
    for name, chosen in groups.items():
        if chosen.any():
            s = {k: v[chosen].mean() for k, v in stats.items()}
            print(f"{name:<24}{chosen.sum():>6}{s['sc']:>8.2f}{s['sc_head']:>8.3f}{s['sc_tail']:>8.2f}"
                  f"{100 * s['sc_tail'] / s['sc']:>7.1f}%{s['entropy']:>8.3f}{s['logprob']:>8.3f}")
    print("within-group AUROC, right vs wrong (0.5 = chance):")
    for name, values in (("self-certainty", stats["sc"]), ("  its head part", stats["sc_head"]),
                         ("  its tail part", stats["sc_tail"]), ("negative entropy", -stats["entropy"]),
                         ("mean log p", stats["logprob"])):
        result = within_group_auroc(values, correct, args.samples)
        print(f"  {name:<18} {result['value']:.3f} [{result['low']:.3f}, {result['high']:.3f}] "
              f"({result['pairs']} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
