"""Rebuild `selftaught-tiny`, the built-in base model, from nothing (seeded).

    python scripts/build_tiny_model.py [--output selftaught/assets/selftaught-tiny] [--minutes 20]

1. builds the synthetic corpus (selftaught.tiny.corpus: arithmetic with worked
   solutions, small Python functions in every AZR role format) from the train
   splits of the project's generators;
2. trains a byte-level BPE tokenizer on it (digits split one by one, so numbers are
   spelled digit by digit);
3. pretrains a small Qwen2-style model on it (loss on the continuations);
4. measures the competence targets on held-out data (never trained on) and writes
   the weights, tokenizer and MODEL.md (the model card with those figures).

It prints its runtime and the held-out figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selftaught.azr.tasks import TASK_TYPES  # noqa: E402
from selftaught.tiny.competence import measure_competence  # noqa: E402
from selftaught.tiny.corpus import build_corpus  # noqa: E402
from selftaught.tiny.pretrain import pretrain  # noqa: E402
from selftaught.models.tiny_random import qwen2_model, train_bpe_tokenizer  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>"]


def train_tokenizer(texts: list[str], vocab_size: int):
    return train_bpe_tokenizer(texts, vocab_size, SPECIAL_TOKENS, split_digits=True)


def build_model(tokenizer, hidden: int, layers: int, seed: int):
    return qwen2_model(tokenizer, seed, hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                       num_hidden_layers=layers, num_attention_heads=hidden // 48, num_key_value_heads=2,
                       max_position_embeddings=1536, tie_word_embeddings=True, rope_theta=10000.0)


def target_rows(values: dict) -> list[tuple[str, str, bool]]:
    """The project's competence targets for the built-in model, checked on the measured figures."""
    sampled, greedy = values["arithmetic/sampled"], values["arithmetic/greedy"]
    rows = [("arithmetic accuracy at the sampling temperature in 20–80%", f"{sampled:.3f}", 0.2 <= sampled <= 0.8),
            ("greedy arithmetic accuracy above sampled", f"{greedy:.3f} vs {sampled:.3f}", greedy > sampled)]
    for task_type in TASK_TYPES:
        valid = values[f"azr/{task_type}/propose_valid"]
        rows.append((f"≥ 20% valid AZR {task_type} proposals (τ = 1.0)", f"{valid:.3f}", valid >= 0.2))
    solve = values["azr/deduction/solve"]
    rows.append(("deduction solve rate (τ = 1.0) in 10–80%", f"{solve:.3f}", 0.1 <= solve <= 0.8))
    return rows


def model_card(figures: dict, stats: dict, args) -> str:
    rows = "\n".join(f"| {name} | {value} |" for name, value in figures["table"])
    targets = "\n".join(f"| {name} | {value} | {'yes' if met else 'no'} |"
                         for name, value, met in target_rows(figures["values"]))
    return f"""# selftaught-tiny

The built-in base model of selftaught: a Qwen2-style causal LM of
{stats['parameters']:,} parameters with its own byte-level BPE tokenizer
({stats['vocab_size']} tokens, digits split), pretrained from nothing on the
project's synthetic corpus (arithmetic with worked solutions; small Python
functions in the prompt/response formats of every Absolute Zero role, the
deduction solver's answers preceded by worked execution traces). No
external data, no download. Rebuild: `python scripts/build_tiny_model.py
--eval-n {args.eval_n} --seed {args.seed}` ({stats['build_seconds']:.0f} s on the build machine,
2 CPU cores; bitwise identity across machines is not promised, CPU kernels differ).

It exists so that reinforcement learning has something to sharpen on a laptop CPU:
it is partly right, not right.

## Held-out figures (measured by the build script)

Held-out data is disjoint from training by construction (a fixed rule on each
problem's content decides its split). Sampled figures use the recipes' sampling
temperatures; greedy is temperature 0.

| figure | value |
|---|---|
{rows}

## Training

{stats['documents']} documents, {stats['steps']} optimizer steps, final training
loss {stats['final_loss']:.3f}; AdamW, lr {args.lr}, cosine to 10%, batches of about
{args.tokens_per_batch} tokens, seed {args.seed}.

Limitations: it knows only the generators' templates; proposals are close copies of
training programs; it is not a general language model.

## Against the project's competence targets

| target | measured | met |
|---|---|---|
{targets}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "selftaught" / "assets" / "selftaught-tiny"))
    parser.add_argument("--minutes", type=float, default=22.0, help="training time budget")
    parser.add_argument("--arithmetic-repeats", type=int, default=14)
    parser.add_argument("--azr-repeats", type=int, default=5)
    parser.add_argument("--program-examples", type=int, default=8,
                        help="inputs per training program (the solver documents rotate through them)")
    parser.add_argument("--deduction-examples", type=int, default=4,
                        help="deduction solver documents (with worked traces) per program and repeat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--tokens-per-batch", type=int, default=1024)
    parser.add_argument("--arithmetic", type=int, default=6000)
    parser.add_argument("--programs", type=int, default=1500)
    parser.add_argument("--eval-n", type=int, default=200)
    args = parser.parse_args()

    started = time.perf_counter()
    documents = build_corpus(arithmetic_n=args.arithmetic, programs_n=args.programs, seed=args.seed,
                             arithmetic_repeats=args.arithmetic_repeats, azr_repeats=args.azr_repeats,
                             program_examples=args.program_examples, deduction_examples=args.deduction_examples)
    tokenizer = train_tokenizer([d.context + d.continuation for d in documents], args.vocab)
    model = build_model(tokenizer, args.hidden, args.layers, args.seed)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"corpus: {len(documents)} documents; tokenizer: {len(tokenizer)} tokens; model: {parameters:,} parameters",
          flush=True)
    stats = pretrain(model, tokenizer, documents, epochs=1, learning_rate=args.lr,
                     tokens_per_batch=args.tokens_per_batch, max_length=1536, seed=args.seed,
                     time_budget_s=args.minutes * 60)
    stats.update(parameters=parameters, vocab_size=len(tokenizer))

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    figures = measure_competence(model, tokenizer, n=args.eval_n, seed=args.seed)
    stats["build_seconds"] = time.perf_counter() - started
    (output / "MODEL.md").write_text(model_card(figures, stats, args))
    (output / "build.json").write_text(json.dumps({"stats": stats, "figures": figures["values"],
                                                   "args": vars(args)}, indent=2))
    print(json.dumps(figures["values"], indent=2))
    print(f"built {output} in {stats['build_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
