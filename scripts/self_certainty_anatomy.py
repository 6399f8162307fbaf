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
from selftaught.rollout import SelftaughtSampler  # noqa: E402


@torch.no_grad()
def token_statistics(model, rollout, temperature: float, head_k: int) -> dict[str, torch.Tensor]:
    """Per completion (masked token means): sc, sc_head, sc_tail, sc_topk, entropy, logprob.

    sc_topk is self-certainty over the plausible support alone (NOT the paper's): KL(U_k ‖ q_t)
    with q_t = p_t restricted to its `head_k` most likely tokens and renormalised."""
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)
    attention = torch.cat([rollout.prompt_mask, rollout.completion_mask], 1).long()
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    T = rollout.completion_ids.shape[1]
    logits = model(input_ids=ids, attention_mask=attention, position_ids=positions).logits[:, -T - 1:-1]
    logp = (logits.double() / temperature).log_softmax(-1)  # [N, T, V]
    V = logp.shape[-1]
    contribution = -(logp + math.log(V)) / V  # SC_t = Σ_j contribution_j
    top_logp, top = logp.topk(head_k, dim=-1)
    head = contribution.gather(-1, top).sum(-1)
    sc = contribution.sum(-1)
    renormalised = top_logp - top_logp.logsumexp(-1, keepdim=True)  # log q_t over the head
    sc_topk = -renormalised.mean(-1) - math.log(head_k)
    per_token = {"sc": sc, "sc_head": head, "sc_tail": sc - head, "sc_topk": sc_topk,
                 "entropy": -(logp.exp() * logp).sum(-1),
                 "logprob": logp.gather(-1, rollout.completion_ids[..., None])[..., 0]}
    mask = rollout.completion_mask.double()
    return {k: (v * mask).sum(-1) / mask.sum(-1).clamp(min=1) for k, v in per_token.items()}


SIGNALS = (("self-certainty", "sc", 1), ("  its head part", "sc_head", 1), ("  its tail part", "sc_tail", 1),
           ("top-k self-certainty", "sc_topk", 1), ("negative entropy", "entropy", -1), ("mean log p", "logprob", 1))
"""(printed name, statistic, sign): the rankers whose within-group AUROC the anatomy reports."""


def anatomy(model, tokenizer, problems, samples: int, temperature: float, head_k: int,
            max_completion_length: int = 64, batch: int = 25) -> dict:
    """Sample `samples` completions per problem and split their self-certainty. Returns per
    completion `stats` (sc, sc_head, sc_tail, sc_topk, entropy, logprob, length, capped: it ran
    out of `max_completion_length` tokens), `correct`, `procedure`, the
    per-type means `groups` and the within-group `auroc` of every signal in `SIGNALS`."""
    sampler = SelftaughtSampler(model, tokenizer, max_prompt_length=64,
                                max_completion_length=max_completion_length, temperature=temperature)
    rows = {k: [] for k in ("sc", "sc_head", "sc_tail", "sc_topk", "entropy", "logprob")}
    correct, procedure, lengths = [], [], []
    for start in range(0, len(problems), batch):
        chunk = problems[start:start + batch]
        rollout = sampler.sample([ANSWER_CONTEXT.format(prompt=p.prompt) for p in chunk], samples)
        for key, values in token_statistics(model, rollout, temperature, head_k).items():
            rows[key].append(values)
        lengths.append(rollout.completion_mask.sum(-1))
        for i, text in enumerate(rollout.completions):
            correct.append(answers_match(extract_answer(text), chunk[i // samples].answer))
            procedure.append(addition.uses_procedure(text))
    stats = {k: torch.cat(v).numpy() for k, v in rows.items()}
    stats["length"] = torch.cat(lengths).double().numpy()
    stats["capped"] = (stats["length"] >= max_completion_length).astype(float)  # ran out of tokens
    correct, procedure = np.array(correct), np.array(procedure)
    kinds = {"procedure, right": procedure & correct, "procedure, wrong": procedure & ~correct,
             "other, right": ~procedure & correct, "other, wrong": ~procedure & ~correct}
    groups = {name: {"n": int(chosen.sum()), **{k: float(v[chosen].mean()) for k, v in stats.items()}}
              for name, chosen in kinds.items() if chosen.any()}
    auroc = {key: within_group_auroc(sign * stats[key], correct, samples) for _, key, sign in SIGNALS}
    return {"stats": stats, "correct": correct, "procedure": procedure, "groups": groups, "auroc": auroc,
            "vocab": len(tokenizer), "head_k": head_k}


def print_anatomy(name: str, result: dict, n: int, samples: int, temperature: float) -> None:
    V, k = result["vocab"], result["head_k"]
    print(f"{name}: V = {V}, {n} problems × {samples} samples at τ = {temperature}; "
          f"head = top {k} tokens, tail = the other {V - k}")
    print(f"{'completions':<24}{'n':>6}{'SC':>8}{'head':>8}{'tail':>8}{'tail %':>8}{'H':>8}{'log p':>8}{'len':>6}")
    for kind, s in result["groups"].items():
        print(f"{kind:<24}{s['n']:>6}{s['sc']:>8.2f}{s['sc_head']:>8.3f}{s['sc_tail']:>8.2f}"
              f"{100 * s['sc_tail'] / s['sc']:>7.1f}%{s['entropy']:>8.3f}{s['logprob']:>8.3f}{s['length']:>6.1f}")
    print("within-group AUROC, right vs wrong (0.5 = chance):")
    for label, key, _ in SIGNALS:
        r = result["auroc"][key]
        if r["value"] is None:
            print(f"  {label:<18} — (no right/wrong pairs)")
        else:
            print(f"  {label:<18} {r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}] ({r['pairs']} pairs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-math")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--head-k", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--split", default="heldout", choices=addition.SPLITS)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = load_model(args.model)
    model.eval()
    problems = addition.generate(args.n, args.split, seed=0)
    result = anatomy(model, tokenizer, problems, args.samples, args.temperature, args.head_k)
    print_anatomy(args.model, result, args.n, args.samples, args.temperature)
    return 0


if __name__ == "__main__":
    sys.exit(main())
