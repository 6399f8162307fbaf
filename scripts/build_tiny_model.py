"""Rebuild `selftaught-tiny`, the built-in program model (chain programs and additions), from nothing (seeded).

    python scripts/build_tiny_model.py [--output selftaught/assets/selftaught-tiny] [--steps 5500]
    python scripts/build_tiny_model.py --measure-only [--output DIR]   # the card of weights already built

1. builds the corpus (`selftaught.tiny.corpus.build_corpus`): chain programs of the pretrain split
   (`selftaught.data.chains`) in Absolute Zero's deduction and abduction formats, the solvers
   answering step by step (worked trace, worked inversion) or with a bare answer, the proposers
   writing new chains; additions the way tiny-math knows them; every procedure opens with
   "Step by step:";
2. trains a byte-level BPE tokenizer on it (digits split; one token per fixed prompt paragraph,
   `selftaught.tiny.phrases`) and pretrains a small Qwen2-style model (loss on the continuations,
   a step budget, so the same model comes out on the same machine);
3. measures the model card on data it never saw: 200 held-out chain programs per task type × 8
   samples (pass@1, pass@8, majority@8, greedy, the share of completions that work step by step
   and the accuracy of those that do and do not; AZR's own parsing and executor), the share of
   valid proposals per type, and held-out additions (`selftaught diagnose`); checks the targets
   and writes the weights, tokenizer, MODEL.md and build.json.

The chain model study (`scripts/chain_model_study.py`) trains its designs with `train_model`.
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

from selftaught.models import load_model  # noqa: E402
from selftaught.models.tiny_random import qwen2_model, train_bpe_tokenizer  # noqa: E402
from selftaught.tiny.competence import addition_figures, program_figures, proposal_valid_rates, tiny_azr_config  # noqa: E402
from selftaught.tiny.corpus import STEP_MARK, build_corpus, works_step_by_step  # noqa: E402
from selftaught.tiny.phrases import prompt_phrases  # noqa: E402
from selftaught.tiny.pretrain import pretrain  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>"]
TOKENIZER_DOCUMENTS = 20_000
"""The tokenizer is trained on the first this-many documents of the shuffled corpus."""


def _interval(result: dict) -> str:
    return f"{result['value']:.3f} [{result['low']:.3f}, {result['high']:.3f}]" if result["value"] is not None else "—"


def measure(model, tokenizer, model_dir: Path, n: int, samples: int) -> dict:
    """The model card's figures, all on data the corpus never held."""
    programs = program_figures(model, tokenizer, n, "heldout", samples=samples)
    valid = proposal_valid_rates(model, tokenizer, n // 2)
    with tempfile.TemporaryDirectory() as scratch:
        additions = addition_figures(str(model_dir), n, "heldout", scratch, samples=samples,
                                     procedure=works_step_by_step)
    return {"programs": programs, "proposals_valid": {t: a.as_dict() for t, a in valid.items()},
            "additions": {"accuracy": additions["accuracy"], "step share": additions["tags"]["procedure"],
                          "step accuracy": additions["tag_accuracy"]["procedure"]}}


def target_rows(figures: dict) -> list[tuple[str, str, bool]]:
    """The project's targets for the program model (issue #21), checked on the measured figures."""
    rows = []
    for task_type, measured in figures["programs"].items():
        with_step = measured["step accuracy"]["with"]["value"] or 0.0
        without = measured["step accuracy"]["without"]["value"] or 0.0
        share = measured["step share"]["value"]
        rows += [(f"{task_type}: right ≥ 0.8 of the time when it works step by step", f"{with_step:.3f}",
                  with_step >= 0.8),
                 (f"{task_type}: bare answers mostly wrong (< 0.5)", f"{without:.3f}", without < 0.5),
                 (f"{task_type}: takes the procedure 15–35% of the time at τ = {tiny_azr_config().temperature:g}",
                  f"{share:.3f}", 0.15 <= share <= 0.35)]
    for task_type, result in figures["proposals_valid"].items():
        rows.append((f"≥ 20% valid {task_type} proposals", f"{result['accuracy']:.3f}", result["accuracy"] >= 0.2))
    additions = figures["additions"]["step accuracy"]["with"]["value"] or 0.0
    rows.append(("additions: right ≥ 0.8 of the time when it works step by step", f"{additions:.3f}",
                 additions >= 0.8))
    return rows


def model_card(figures: dict, stats: dict, args, built_by: str | None = None) -> str:
    program_rows = []
    for task_type, measured in figures["programs"].items():
        cells = [_interval(measured["accuracy"][k]) for k in measured["accuracy"]]
        program_rows.append(f"| {task_type} | " + " | ".join(cells) + f" | {_interval(measured['step share'])} | "
                            f"{_interval(measured['step accuracy']['with'])} | "
                            f"{_interval(measured['step accuracy']['without'])} | {measured['format errors']:.3f} |")
    heads = " | ".join(next(iter(figures["programs"].values()))["accuracy"])
    valid = "\n".join(f"| {t} | {r['accuracy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] ({r['correct']}/{r['n']}) |"
                      for t, r in figures["proposals_valid"].items())
    adds = figures["additions"]
    addition_rows = "\n".join(f"| {k} | {_interval(v)} |" for k, v in adds["accuracy"].items())
    targets = "\n".join(f"| {name} | {value} | {'yes' if met else 'no'} |" for name, value, met in target_rows(figures))
    return f"""# selftaught-tiny

The built-in program model of selftaught: a Qwen2-style causal LM of {stats['parameters']:,} parameters
with its own byte-level BPE tokenizer ({stats['vocab_size']} tokens, digits split, one token per fixed
paragraph of the Absolute Zero prompts), pretrained from nothing on the project's own chain programs
(`selftaught.data.chains`: straight-line arithmetic on digits, 98,666 programs, split by a hash of
their text) in Absolute Zero's deduction and abduction formats, and on 3-digit additions. No external
data, no download. Rebuild: `python scripts/build_tiny_model.py --steps {args.steps} --seed {args.seed}`
({stats['build_seconds']:.0f} s to build on the build machine, 2 CPU cores, measuring excluded;
bitwise identity across machines is not promised).{f" These weights were trained by {built_by}." if built_by else ""}

## What it knows

Like `tiny-math`, it has a reliable procedure and a weak habit of using it, so reinforcement learning
has something to select:

- **deduction** (predict the output): either *step by step*, the worked execution trace
  (`{STEP_MARK}` then `a = 7`, `x = a * 3 = 7 * 3 = 21`, `return x + 2 = 21 + 2 = 23`), or a bare
  answer (`The answer is 23.`), of which {args.wrong_share:.0%} were careless near misses in the corpus;
- **abduction** (find an input): either step by step, undoing the chain one line at a time, the last
  line first (`x + 2 = 23: x = 23 - 2 = 21`, `a * 3 = 21: a = 21 // 3 = 7`), or a bare guess;
- **proposing** chains and inputs for deduction and abduction (what self-play needs);
- **additions**, the way tiny-math knows them: the column procedure or a bare answer.

It knows no induction: nothing in its corpus writes a program from examples.

{args.step_share:.0%} of the plain solver and addition documents take the procedure; further documents
whose prompt adds "Work it out step by step." always do (the skill without the habit). Every procedure,
in both domains, opens with the same words, `{STEP_MARK}`, and every bare answer with "The answer is":
one decision the domains share, so a habit RL strengthens in one can show in the other.

## Why the splits are fair

A program's split is a hash of its text (`data.programs.split_of`): `pretrain` (the only programs in
the corpus), `dev` (where self-play's rates and batch sizes are chosen) and `heldout` (every figure
below and the demo's). Additions use `data.addition`'s four content-hash splits. Self-play never
trains on a dev or held-out program: its recipe excludes them (`azr.exclude_programs: builtin`).

## Held-out programs (measured by the build script)

{args.eval_n} held-out chain programs per task type (one task each) × {args.samples} samples at τ =
{tiny_azr_config().temperature:g}, AZR's own parsing and sandboxed checking; greedy is one greedy sample;
95% bootstrap intervals over programs.

| task | {heads} | share working step by step | right when step by step | right when bare | format errors |
|---|{'---|' * (len(heads.split(' | ')) + 4)}
{chr(10).join(program_rows)}

Valid proposals ({args.eval_n // 2} per type, held-out chains as references, 95% Wilson intervals):

| task type | valid |
|---|---|
{valid}

## Held-out additions

{args.eval_n} problems × {args.samples} samples at τ = 1 (`selftaught diagnose`):

| figure | value [95% interval] |
|---|---|
{addition_rows}
| share working step by step | {_interval(adds['step share'])} |
| right when step by step | {_interval(adds['step accuracy']['with'])} |
| right when bare | {_interval(adds['step accuracy']['without'])} |

## Against the project's targets

| target | measured | met |
|---|---|---|
{targets}

## Training

{stats['documents']} documents, {stats['steps']} optimizer steps of about {args.tokens_per_batch} tokens,
final training loss {stats['final_loss']:.3f}; AdamW, lr {args.lr}, cosine to 10%, seed {args.seed}.
Limitations: it knows only chains of arithmetic on digits; its proposals are chains too; it is not a
general language model.
"""


def train_model(output: Path, args) -> dict:
    """Corpus, tokenizer and pretraining (steps 1–2); saves the model and tokenizer into `output`."""
    started = time.perf_counter()
    azr = tiny_azr_config().azr
    documents = build_corpus(programs_n=args.programs, examples=args.examples, additions_n=args.additions,
                             seed=args.seed, step_share=args.step_share, wrong_share=args.wrong_share,
                             cue_share=args.cue_share, proposer_share=args.proposer_share,
                             task_types=tuple(args.task_types), max_references=azr.num_references,
                             timeout_s=azr.executor_timeout_s)
    tokenizer = train_bpe_tokenizer([d.context + d.continuation for d in documents[:TOKENIZER_DOCUMENTS]], args.vocab,
                                    SPECIAL_TOKENS, split_digits=True,
                                    phrases=prompt_phrases(azr.induction_inputs, azr.executor_timeout_s))
    model = qwen2_model(tokenizer, args.seed, hidden_size=args.hidden, intermediate_size=args.hidden * 8 // 3,
                        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=1024, tie_word_embeddings=True)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"corpus: {len(documents)} documents; tokenizer: {len(tokenizer)} tokens; model: {parameters:,} parameters",
          flush=True)
    stats = pretrain(model, tokenizer, documents, epochs=3, learning_rate=args.lr,
                     tokens_per_batch=args.tokens_per_batch, max_length=768, seed=args.seed, max_steps=args.steps,
                     log_every=500)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    return {**stats, "parameters": parameters, "vocab_size": len(tokenizer),
            "build_seconds": time.perf_counter() - started}


def build_arguments(parser: argparse.ArgumentParser) -> None:
    """The build's settings (the defaults are the shipped model's), shared with the chain model study."""
    parser.add_argument("--steps", type=int, default=5500, help="pretraining batches (the build's budget)")
    parser.add_argument("--programs", type=int, default=16_000, help="pretrain chain programs")
    parser.add_argument("--examples", type=int, default=4, help="inputs per program")
    parser.add_argument("--additions", type=int, default=100_000, help="plain-context additions (0: none)")
    parser.add_argument("--task-types", nargs="+", default=["deduction", "abduction"],
                        choices=["deduction", "abduction"])
    parser.add_argument("--step-share", type=float, default=0.3, help="plain documents worked step by step")
    parser.add_argument("--wrong-share", type=float, default=0.5, help="of the bare answers")
    parser.add_argument("--cue-share", type=float, default=0.5, help="cued documents per plain one")
    parser.add_argument("--proposer-share", type=float, default=0.2, help="programs the proposers write")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=600)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--tokens-per-batch", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "selftaught" / "assets" / "selftaught-tiny"))
    parser.add_argument("--measure-only", action="store_true",
                        help="measure the model already in --output (its build.json's training record is kept)")
    parser.add_argument("--eval-n", type=int, default=200)
    parser.add_argument("--samples", type=int, default=8)
    build_arguments(parser)
    args = parser.parse_args()
    output = Path(args.output)
    record = {}
    if args.measure_only:
        record = json.loads((output / "build.json").read_text())
        stats = record["stats"]
        args = argparse.Namespace(**{**record["args"], "eval_n": args.eval_n, "samples": args.samples})
    else:
        stats = train_model(output, args)
    model, tokenizer = load_model(str(output))
    figures = measure(model, tokenizer, output, args.eval_n, args.samples)
    (output / "MODEL.md").write_text(model_card(figures, stats, args, record.get("built_by")))
    settings = {k: v for k, v in vars(args).items() if k not in ("measure_only", "output", "eval_n", "samples")}
    (output / "build.json").write_text(json.dumps({**record, "stats": stats, "figures": figures, "args": settings},
                                                  indent=2))
    for name, value, met in target_rows(figures):
        print(f"{'met' if met else 'MISSED'}: {name}: {value}")
    print(f"built {output} in {stats['build_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
