"""Rebuild `selftaught-tiny-ramble`, the built-in model on which Intuitor's self-certainty can teach (seeded).

    python scripts/build_tiny_ramble_model.py [--output selftaught/assets/selftaught-tiny-ramble]

1. builds the corpus (`selftaught.tiny.addition_corpus` with the `ramble` failure of
   `selftaught.tiny.failure_modes`): problems of the `pretrain` split of `data.addition`,
   answered with the column procedure or with rambling filler words and a guess;
2. trains a byte-level BPE tokenizer on it (digits split) and pretrains a tiny-math-sized
   Qwen2-style model for a fixed number of steps (`build_model`, also what
   `scripts/intuitor_designs.py` builds every design with);
3. measures on held-out problems through `selftaught diagnose`'s own code (sampled pass@1,
   pass@8, majority@8, greedy, the share taking the procedure, every label-free reward's
   within-group AUROC) and splits self-certainty into its top-10 and tail parts
   (`scripts/self_certainty_anatomy.py`); writes the weights, tokenizer, MODEL.md and build.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # the package, and the scripts it builds on

from build_tiny_math_model import (_interval, add_corpus_arguments, card_ending, held_out_section, measure,  # noqa: E402
                                   print_outcome, target_rows)
from self_certainty_anatomy import SIGNALS, anatomy  # noqa: E402
from selftaught.data import addition  # noqa: E402
from selftaught.models import load_model  # noqa: E402
from selftaught.models.tiny_random import qwen2_model, train_bpe_tokenizer  # noqa: E402
from selftaught.tiny.addition_corpus import addition_corpus  # noqa: E402
from selftaught.tiny.competence import tiny_math_config  # noqa: E402
from selftaught.tiny.failure_modes import FAILURE_MODES  # noqa: E402
from selftaught.tiny.pretrain import pretrain  # noqa: E402

TEMPERATURE = tiny_math_config().temperature
"""The recipes' τ (configs/tiny_ramble_base.yaml is tiny-math's block with this model)."""
SELF_CERTAINTY_TARGET = 0.70
"""Within-group AUROC of self-certainty the model is built to reach (issue #22)."""
HEAD_K = 10
"""The top-k tokens that count as the plausible part of a distribution in the anatomy."""


def build_model(failure: str, output: Path, *, documents: int, procedure_share: float, wrong_share: float,
                columns_share: float, steps: int, seed: int, hidden: int = 128, layers: int = 4, vocab: int = 400,
                lr: float = 2e-3, tokens_per_batch: int = 2048) -> dict:
    """Corpus with the `failure` mode → BPE tokenizer (digits split) → Qwen2-style model
    pretrained for `steps` steps, saved to `output`. A step budget (not a time budget) gives the
    same model on any machine. Returns the pretraining stats, parameters and vocabulary size."""
    corpus = addition_corpus(documents, procedure_share=procedure_share, wrong_share=wrong_share,
                             columns_share=columns_share, seed=seed, failure=FAILURE_MODES[failure].write)
    tokenizer = train_bpe_tokenizer([d.context + d.continuation for d in corpus], vocab, ["<|endoftext|>"],
                                    split_digits=True)
    model = qwen2_model(tokenizer, seed, hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=256, tie_word_embeddings=True)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{failure}: {len(corpus)} documents, {len(tokenizer)} tokens, {parameters:,} parameters", flush=True)
    stats = pretrain(model, tokenizer, corpus, epochs=1, learning_rate=lr, tokens_per_batch=tokens_per_batch,
                     max_length=128, seed=seed, max_steps=steps, log_every=500)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    return {**stats, "parameters": parameters, "vocab_size": len(tokenizer)}


def self_certainty_split(model_dir: Path, n: int, samples: int, seed: int) -> dict:
    """The anatomy on `n` held-out problems: per kind of completion its mean self-certainty,
    top-10 and tail parts, entropy and log p; the within-group AUROC of each signal."""
    model, tokenizer = load_model(str(model_dir))
    model.eval()
    torch.manual_seed(seed)
    result = anatomy(model, tokenizer, addition.generate(n, "heldout", seed=seed), samples, TEMPERATURE, HEAD_K,
                     max_completion_length=tiny_math_config().max_completion_length)
    return {"n": n, "samples": samples, "groups": result["groups"], "auroc": result["auroc"]}


def ramble_target_rows(record: dict, samples: int) -> list[tuple[str, str, bool]]:
    """tiny-math's targets (room for RL) plus this model's: self-certainty ranks right above wrong."""
    auroc = record["sources"]["self_certainty"]["value"]
    return [*target_rows(record, samples),
            (f"within-group AUROC of self-certainty at least {SELF_CERTAINTY_TARGET}",
             f"{auroc:.3f}", auroc is not None and auroc >= SELF_CERTAINTY_TARGET)]


def model_card(record: dict, split: dict, stats: dict, args) -> str:
    kinds = "\n".join(f"| {kind} | {s['n']} | {s['sc']:.2f} | {s['sc_head']:.3f} | {s['sc_tail']:.2f} | "
                      f"{s['entropy']:.3f} | {s['logprob']:.3f} | {s['length']:.1f} | {s['capped']:.0%} |"
                      for kind, s in split["groups"].items())
    parts = "\n".join(f"| {label.strip()} | {_interval(split['auroc'][key])} |" for label, key, _ in SIGNALS)
    targets = "\n".join(f"| {name} | {value} | {'yes' if met else 'no'} |"
                        for name, value, met in ramble_target_rows(record, args.samples))
    return f"""# selftaught-tiny-ramble

A built-in base model on which Intuitor's self-certainty reward can teach: a Qwen2-style causal
LM of {stats['parameters']:,} parameters with its own byte-level BPE tokenizer ({stats['vocab_size']} tokens,
digits split), pretrained from nothing on long additions of 3-digit numbers
(`selftaught.tiny.addition_corpus` with the `ramble` failure of `selftaught.tiny.failure_modes`).
No external data, no download. Rebuild: `python scripts/build_tiny_ramble_model.py --seed {args.seed}`
({stats['build_seconds']:.0f} s on the build machine, 2 CPU cores shared with other jobs; bitwise identity
across machines is not promised).

## The failure mode it models, and why

Small base models that do not know how to answer often **ramble**: they write filler, wander
through loosely related words, and then guess. This model's corpus answers each problem one of
two ways:

- **the column procedure** — `Columns: 8+6+0=14, 7+5+1=13, 4+8+1=13. The answer is \\boxed{{1334}}.`
  Every step is a one-digit fact plus a carry: it generalises to problems never seen;
- **a ramble, then a guess** — `paper so about river honestly seems ... . The answer is \\boxed{{1324}}.`
  8–20 words drawn at random from 139 filler words, then a bare number, {args.wrong_share:.0%} of them
  off by one in one digit (a small model cannot add 3-digit numbers in one step anyway). 20 words
  are about 54 tokens: sampled, many of its rambles run out of the recipes' 64 completion tokens
  before they guess (the table below counts them), as rambling models run out of their budget.

{args.procedure_share:.0%} of the plain-context documents (`Question: ...\\nAnswer:`) take the procedure;
further documents in a context that asks for columns ({args.columns_share:.0%} as many) always do. So, as
`tiny-math`, it has the skill and a weak habit of using it. Unlike `tiny-math`, whose answers that
skip the procedure are well-formed bare numbers, its wrong answers are written in *broad* text:
at a ramble's positions a large part of the vocabulary is plausible. Self-certainty at a
position, KL(U ‖ p_t) ≈ (1 − k/V)·L + (k/V)·log k − log V for k plausible tokens sitting L nats
above the rest, is low there, and high at the procedure's rigid steps: the right answer is also
the most typical text. `scripts/intuitor_designs.py` compares this with five other failure
modes (a shorter ramble, garbled noise, hedging, off-format guesses, repetition loops) on the
`dev` split; see `docs/intuitor_model.md`.

## Why the split is fair

Every problem belongs to one of four splits by a hash of its content (`data.addition.split_of`):
`pretrain` (the only problems in the corpus), `train` (the RL prompts), `dev` (where the design and
the learning rates are chosen) and `heldout` (every figure below). The four are disjoint.

{held_out_section(record)}
Self-certainty split into its top-{HEAD_K} part (the plausible tokens) and its tail (the other
V − {HEAD_K}), per kind of completion (`scripts/self_certainty_anatomy.py --model tiny-ramble`,
{split['n']} held-out problems × {split['samples']} samples; per-completion means of per-token values):

| completions | n | self-certainty | top-{HEAD_K} part | tail part | entropy H | mean log p | tokens | out of tokens |
|---|---|---|---|---|---|---|---|---|
{kinds}

| signal | within-group AUROC [95% interval] |
|---|---|
{parts}

{card_ending(targets, stats, args, "3-digit addition in four wordings and 139 filler words")}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "selftaught" / "assets" / "selftaught-tiny-ramble"))
    add_corpus_arguments(parser, documents=60_000)
    parser.add_argument("--steps", type=int, default=2500, help="pretraining steps (the designs' budget)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--tokens-per-batch", type=int, default=2048)
    parser.add_argument("--eval-n", type=int, default=200)
    parser.add_argument("--anatomy-n", type=int, default=100)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    output = Path(args.output)
    stats = build_model("ramble", output, documents=args.documents, procedure_share=args.procedure_share,
                        wrong_share=args.wrong_share, columns_share=args.columns_share, steps=args.steps,
                        seed=args.seed, lr=args.lr, tokens_per_batch=args.tokens_per_batch)
    record = measure(output, args.eval_n, args.samples, args.seed)
    split = self_certainty_split(output, args.anatomy_n, args.samples, args.seed)
    stats["build_seconds"] = time.perf_counter() - started
    (output / "MODEL.md").write_text(model_card(record, split, stats, args))
    (output / "build.json").write_text(json.dumps({"stats": stats, "figures": {
        "accuracy": record["accuracy"], "tags": record["tags"], "tag_accuracy": record["tag_accuracy"],
        "sources": {k: {f: v[f] for f in ("value", "low", "high", "pairs", "verdict")}
                    for k, v in record["sources"].items()},
        "self_certainty_split": split}, "args": vars(args)}, indent=2))
    print_outcome(ramble_target_rows(record, args.samples), output, stats["build_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
