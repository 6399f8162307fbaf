"""Rebuild `selftaught-tiny-math`, the built-in model reinforcement learning can teach (seeded).

    python scripts/build_tiny_math_model.py [--output selftaught/assets/selftaught-tiny-math]

1. builds the corpus (`selftaught.tiny.addition_corpus`): problems of the
   `pretrain` split of `data.addition`, answered with the column procedure or with a
   bare (often wrong) number;
2. trains a byte-level BPE tokenizer on it (digits split) and pretrains a small
   Qwen2-style model (loss on the continuations);
3. measures on held-out problems (never trained on, never an RL prompt), through
   `selftaught diagnose`'s own code: sampled pass@1, pass@8, majority@8, greedy, the
   share of completions that take the procedure, and the within-group AUROC of every
   label-free reward; checks them against the project's targets and writes the
   weights, tokenizer, MODEL.md and build.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selftaught.tiny.competence import addition_figures, tiny_math_config  # noqa: E402
from selftaught.tiny.addition_corpus import addition_corpus  # noqa: E402
from selftaught.tiny.pretrain import pretrain  # noqa: E402
from selftaught.models.tiny_random import qwen2_model, train_bpe_tokenizer  # noqa: E402

TEMPERATURE = tiny_math_config().temperature
"""Sampled, the model takes each habit as often as it learned it (the recipes' τ)."""


def measure(model_dir: Path, n: int, samples: int, seed: int) -> dict:
    """The held-out figures of the model card (selftaught diagnose on the heldout split)."""
    with tempfile.TemporaryDirectory() as scratch:  # diagnose.json is not part of the model
        return addition_figures(str(model_dir), n, "heldout", scratch, samples=samples, seed=seed)


def target_rows(record: dict, samples: int) -> list[tuple[str, str, bool]]:
    accuracy = record["accuracy"]
    pass1, passk = accuracy["pass@1"]["value"], accuracy[f"pass@{samples}"]["value"]
    return [("sampled pass@1 between 0.15 and 0.45", f"{pass1:.3f}", 0.15 <= pass1 <= 0.45),
            (f"pass@{samples} at least 0.25 above pass@1", f"{passk:.3f} (+{passk - pass1:.3f})",
             passk - pass1 >= 0.25)]


def _interval(result: dict) -> str:
    return "—" if result["value"] is None else f"{result['value']:.3f} [{result['low']:.3f}, {result['high']:.3f}]"


def held_out_section(record: dict) -> str:
    """The model card's held-out figures from a diagnose record: accuracy, procedure share,
    accuracy by habit, and every label-free signal's within-group AUROC with its verdict."""
    accuracy = "\n".join(f"| {name} | {_interval(result)} |" for name, result in record["accuracy"].items())
    tags = "\n".join(f"| share of sampled completions that take the {name} | {_interval(result)} |"
                     for name, result in record["tags"].items())
    by_habit = "\n".join(f"| accuracy of sampled completions that {'take' if name == 'with' else 'skip'} the "
                         f"procedure | {_interval(result)} |" for name, result in record["tag_accuracy"]["procedure"].items())
    signals = "\n".join(f"| {name} | {_interval(result)} | {result['pairs']} | {result['verdict']} |"
                        for name, result in record["sources"].items())
    return f"""## Held-out figures (measured by the build script)

{record['n']} held-out problems × {record['samples']} samples at τ = {TEMPERATURE}; 95% bootstrap
intervals over problems (`selftaught diagnose`'s statistics).

| figure | value [95% interval] |
|---|---|
{accuracy}
{tags}
{by_habit}

Within-group AUROC (over pairs of one problem's right and wrong completions: how often each
label-free reward ranks the right one higher; 0.5 = chance):

| signal | AUROC [95% interval] | pairs | verdict |
|---|---|---|---|
{signals}
"""


def card_ending(targets: str, stats: dict, args, knows: str) -> str:
    """The end every addition model's card shares: the targets table and how it was trained."""
    return f"""## Against the project's targets

| target | measured | met |
|---|---|---|
{targets}

## Training

{stats['documents']} documents, {stats['steps']} optimizer steps, final training loss
{stats['final_loss']:.3f}; AdamW, lr {args.lr}, cosine to 10%, batches of about
{args.tokens_per_batch} tokens, seed {args.seed}. Limitations: it knows only {knows}; it is not a
general language model.
"""


def add_corpus_arguments(parser: argparse.ArgumentParser, documents: int) -> None:
    """The addition corpus's options (`selftaught.tiny.addition_corpus`), shared by the addition models' builds."""
    parser.add_argument("--documents", type=int, default=documents, help="plain-context documents")
    parser.add_argument("--procedure-share", type=float, default=0.3)
    parser.add_argument("--wrong-share", type=float, default=0.5, help="of the answers that skip the procedure")
    parser.add_argument("--columns-share", type=float, default=0.5,
                        help="columns-context documents, per plain-context document")


def model_card(record: dict, stats: dict, args) -> str:
    targets = "\n".join(f"| {name} | {value} | {'yes' if met else 'no'} |"
                        for name, value, met in target_rows(record, args.samples))
    return f"""# selftaught-tiny-math

A built-in base model that reinforcement learning can teach: a Qwen2-style causal LM
of {stats['parameters']:,} parameters with its own byte-level BPE tokenizer
({stats['vocab_size']} tokens, digits split), pretrained from nothing on long additions of
3-digit numbers (`selftaught.tiny.addition_corpus`). No external data, no download.
Rebuild: `python scripts/build_tiny_math_model.py --seed {args.seed}` ({stats['build_seconds']:.0f} s on the
build machine, 2 CPU cores; bitwise identity across machines is not promised).

## What it knows

Its corpus answers each problem one of two ways:

- **the column procedure** — `Columns: 8+6+0=14, 7+5+1=13, 4+8+1=13. The answer is \\boxed{{1334}}.`
  Every step is a one-digit fact plus a carry: it generalises to problems never seen;
- **a bare answer** — `The answer is \\boxed{{1334}}.` A small model cannot add 3-digit
  numbers in one step, and {args.wrong_share:.0%} of the corpus's bare answers are off by one
  in one digit, as careless answers are.

{args.procedure_share:.0%} of the documents in the plain context (`Question: ...\\nAnswer:`) take the
procedure; further documents in a context that asks for columns ({args.columns_share:.0%} as many)
always do. So the model has the skill and a weak habit of using it: sampled at
τ = {TEMPERATURE}, it takes the procedure only part of the time, and greedy decoding never does.
That gap between pass@1 and pass@8 is what RL, with labels or without, can close.

## Why the split is fair

Every problem (operands and wording) belongs to one of four splits by a hash of its
content (`data.addition.split_of`), never by a seed: `pretrain` (6/10: the only
problems in the corpus), `train` (2/10: the RL prompts), `dev` (1/10: where learning
rates are chosen) and `heldout` (1/10: every figure below and the demo's). The four are
disjoint, and because a hash (not a linear rule) decides, no split has an operand
relation the others lack: RL prompts and held-out problems are draws from one
distribution, and neither was ever a pretraining document.

{held_out_section(record)}
{card_ending(targets, stats, args, "3-digit addition in four wordings")}"""


def print_outcome(rows: list[tuple[str, str, bool]], output: Path, seconds: float) -> None:
    """Each target met or MISSED, then where the model went."""
    for name, value, met in rows:
        print(f"{'met' if met else 'MISSED'}: {name}: {value}")
    print(f"built {output} in {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "selftaught" / "assets" / "selftaught-tiny-math"))
    add_corpus_arguments(parser, documents=100_000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=400)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--tokens-per-batch", type=int, default=2048)
    parser.add_argument("--minutes", type=float, default=18.0, help="training time budget")
    parser.add_argument("--eval-n", type=int, default=200)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    documents = addition_corpus(args.documents, procedure_share=args.procedure_share, wrong_share=args.wrong_share,
                                columns_share=args.columns_share, seed=args.seed)
    tokenizer = train_bpe_tokenizer([d.context + d.continuation for d in documents], args.vocab,
                                    ["<|endoftext|>"], split_digits=True)
    model = qwen2_model(tokenizer, args.seed, hidden_size=args.hidden, intermediate_size=args.hidden * 8 // 3,
                        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=256, tie_word_embeddings=True)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"corpus: {len(documents)} documents; tokenizer: {len(tokenizer)} tokens; model: {parameters:,} parameters",
          flush=True)
    stats = pretrain(model, tokenizer, documents, epochs=1, learning_rate=args.lr,
                     tokens_per_batch=args.tokens_per_batch, max_length=128, seed=args.seed,
                     time_budget_s=args.minutes * 60, log_every=500)
    stats.update(parameters=parameters, vocab_size=len(tokenizer))

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    record = measure(output, args.eval_n, args.samples, args.seed)
    stats["build_seconds"] = time.perf_counter() - started
    (output / "MODEL.md").write_text(model_card(record, stats, args))
    (output / "build.json").write_text(json.dumps({"stats": stats, "figures": {
        "accuracy": record["accuracy"], "tags": record["tags"], "tag_accuracy": record["tag_accuracy"],
        "sources": {k: {f: v[f] for f in ("value", "low", "high", "pairs", "verdict")}
                    for k, v in record["sources"].items()}}, "args": vars(args)}, indent=2))
    print_outcome(target_rows(record, args.samples), output, stats["build_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
