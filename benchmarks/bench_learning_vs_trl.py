"""Peer check: the demo's GRPO recipe trained by selftaught and by TRL's GRPOTrainer, held-out gains compared (CPU).

    pip install -e .[bench]                      # TRL ≥ 1.16, only for this script
    python benchmarks/bench_learning_vs_trl.py   # tiny-math, 40 steps of 8 prompts × G 8, 200 held-out problems × 8 samples

The same run twice from the same base model (`tiny-math`): once as the demo trains it
(`selftaught.demo.math_recipe("grpo", ...)` through `selftaught.trainer.Trainer`), once
with TRL's GRPOTrainer. Equalised: the prompts (the recipe's 2000 `addition` `train`
rows, seed 0, "Question: {prompt}\\nAnswer:", no chat template), the reward (1 when
`extract_answer` of the completion `answers_match` the gold answer), 8 prompts × G = 8
completions per optimizer step, one fresh generation batch per step (TRL:
per_device_train_batch_size = generation_batch_size = 64 completions, steps_per_generation
1, μ = num_iterations 1), temperature 1.0 / top_p 1 / top_k off, ≤ 64 new tokens, β = 0,
constant learning rate `DEMO_LEARNING_RATES["grpo"]` with no warm-up, AdamW defaults,
clip ε 0.2, grad-norm clip 1.0, token-mean loss (TRL's "dapo"), group-scaled advantages,
fp32, the same number of steps. The data order and the sampling streams differ (each
trainer's own seed-0 shuffling), so the two runs are two draws of the same recipe.

Held-out measurement, identical for the base and both trained models:
`selftaught.diagnose.run_diagnose` on `--eval-n` held-out problems × 8 samples at
temperature 1.0 (sampled pass@1 with its 95% bootstrap interval over problems).
Gain = trained pass@1 − base pass@1.

Each trainer (and each evaluation) runs in its own child process on one torch thread.
Prints both gains with the intervals, each run's mean training reward over its first and
last 10 steps, and `RESULT learning_vs_trl ratio=<our gain ÷ TRL's gain>`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REWARD_WINDOW = 10  # steps averaged at the start and at the end of training


# ------------------------------------------------------------------ the recipe, both ways


def recipe(output_dir: Path, steps: int) -> dict:
    from selftaught.demo import math_recipe

    config = math_recipe("grpo", output_dir, steps)
    return {**config, "progress_bar": False}


def run_ours(args, out: Path) -> dict:
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    history = Trainer(build_config(recipe(out, args.steps))).train()
    rewards = [row["rewards/math_answer/mean"] for row in history if "rewards/math_answer/mean" in row]
    return {"model_dir": str(out), "rewards": rewards}


def gold_answer(prompts, completions, answer, **kwargs) -> list[float]:
    """TRL reward function: the demo's math_answer reward (dataset column `answer` arrives as a kwarg)."""
    from selftaught.rewards.math_answer import answers_match, extract_answer

    return [float(gold is not None and answers_match(extract_answer(text), gold))
            for text, gold in zip(completions, answer)]


def run_trl(args, out: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import GRPOConfig, GRPOTrainer

    from selftaught.config import build_config
    from selftaught.data import load_rows
    from selftaught.demo import DEMO_LEARNING_RATES
    from selftaught.models import resolve_model_name
    from selftaught.rollout import eos_token_ids

    ours = build_config(recipe(out, args.steps))  # the validated recipe: the defaults it leaves out included
    data = ours.data
    rows = load_rows(data.source, split=data.split, num_examples=data.num_examples, seed=ours.seed)
    template = data.prompt_template
    dataset = Dataset.from_list([{"prompt": template.format(prompt=r.prompt), "answer": r.answer} for r in rows])
    model_dir = resolve_model_name(ours.model.name_or_path)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32")
    model.generation_config.eos_token_id = eos_token_ids(tokenizer, model)  # the ids our rollout stops on
    G = ours.num_generations
    batch = ours.per_device_train_batch_size  # completions per optimizer step (8 prompts × G)
    config = GRPOConfig(
        output_dir=str(out / "run"), seed=ours.seed, max_steps=args.steps,
        # TRL counts completions: one generation batch of `batch` completions per optimizer step.
        per_device_train_batch_size=batch, gradient_accumulation_steps=1, steps_per_generation=1,
        num_generations=G, num_iterations=1, max_completion_length=ours.max_completion_length,
        temperature=ours.temperature, top_p=1.0, top_k=0, beta=ours.beta,
        learning_rate=DEMO_LEARNING_RATES["grpo"], lr_scheduler_type="constant", warmup_steps=0,
        optim="adamw_torch", weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        max_grad_norm=1.0, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        bf16=False, fp16=False, use_cpu=True, save_strategy="no", report_to="none",
        logging_steps=1, log_completions=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    assert config.generation_batch_size == batch and config.steps_per_generation == 1, \
        (config.generation_batch_size, config.steps_per_generation)
    trainer = GRPOTrainer(model=model, reward_funcs=[gold_answer], args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()
    saved = out / "model"
    trainer.save_model(str(saved))
    tokenizer.save_pretrained(str(saved))
    rewards = [log["rewards/gold_answer/mean"] for log in trainer.state.log_history
               if "rewards/gold_answer/mean" in log]
    return {"model_dir": str(saved), "rewards": rewards}


def run_eval(args, out: Path) -> dict:
    """The demo's held-out measurement (`addition_figures`: the tiny-math recipes' settings)."""
    from selftaught.models import resolve_model_name
    from selftaught.tiny.competence import addition_figures

    record = addition_figures(args.model, args.eval_n, "heldout", out)
    pass1 = record["accuracy"]["pass@1"]

    return {"value": pass1["value"], "low": pass1["low"], "high": pass1["high"], "n": record["n"],
            "loaded": resolve_model_name(args.model)}


# ------------------------------------------------------------------ driver


def child(args) -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    run = {"ours": run_ours, "trl": run_trl, "eval": run_eval}[args.child]
    print("RESULT_JSON " + json.dumps(run(args, Path(args.out))), flush=True)


def launch(name: str, args, out: Path, *extra: str) -> subprocess.Popen:
    cmd = ["nice", "-n", "10", sys.executable, __file__, "--child", name, "--out", str(out),
           "--steps", str(args.steps), "--eval-n", str(args.eval_n), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def collect(name: str, process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT_JSON ")]
    if process.returncode or not lines:
        sys.exit(f"{name} failed (exit {process.returncode}):\n{stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT_JSON "):])


def pass1_line(e: dict) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def reward_line(name: str, rewards: list[float]) -> str:
    k = min(REWARD_WINDOW, len(rewards))
    first, last = statistics.mean(rewards[:k]), statistics.mean(rewards[-k:])
    return f"  {name:10s} training reward mean: first {k} steps {first:.3f}, last {k} steps {last:.3f} ({len(rewards)} steps)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps for each trainer")
    parser.add_argument("--eval-n", type=int, default=200, help="held-out problems (× 8 samples each)")
    parser.add_argument("--child", choices=["ours", "trl", "eval"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    try:
        import trl
    except ImportError:
        print("this benchmark needs TRL: pip install -e .[bench]", file=sys.stderr)
        sys.exit(2)
    from selftaught.demo import DEMO_LEARNING_RATES, MATH_MODEL, MATH_SAMPLES, MATH_TEMPERATURE

    print(f"GRPO demo recipe, {MATH_MODEL}: {args.steps} steps of 8 prompts × G {MATH_SAMPLES}, "
          f"lr {DEMO_LEARNING_RATES['grpo']:g}, TRL {trl.__version__}; held-out pass@1 on {args.eval_n} problems × "
          f"{MATH_SAMPLES} samples, temperature {MATH_TEMPERATURE:g}, 95% bootstrap intervals", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Independent jobs run side by side, one torch thread each.
        training = {"ours": launch("ours", args, root / "ours"), "trl": launch("trl", args, root / "trl")}
        base_eval = launch("eval", args, root / "eval-base", "--model", MATH_MODEL)
        trained = {name: collect(name, p) for name, p in training.items()}
        evals = {name: launch("eval", args, root / f"eval-{name}", "--model", result["model_dir"])
                 for name, result in trained.items()}
        base = collect("base evaluation", base_eval)
        after = {name: collect(f"{name} evaluation", p) for name, p in evals.items()}
    gains = {name: after[name]["value"] - base["value"] for name in after}
    print(f"  base       pass@1 {pass1_line(base)}")
    for name, label in (("ours", "selftaught"), ("trl", "TRL")):
        print(f"  {label:10s} pass@1 {pass1_line(after[name])}  gain {gains[name]:+.3f}")
    for name, label in (("ours", "selftaught"), ("trl", "TRL")):
        print(reward_line(label, trained[name]["rewards"]))
    for name in after:
        print(f"  evaluated {name}: {after[name]['loaded']}")
    print(f"  wall time {time.perf_counter() - start:.0f} s")
    ours, ref = gains["ours"], gains["trl"]
    if ref <= 0:
        print(f"  note: TRL's gain is {ref:+.3f} (≤ 0), so the ratio is undefined")
        ratio = math.nan
    else:
        ratio = ours / ref
    print(f"RESULT learning_vs_trl ratio={ratio:.2f} ours_gain={ours:+.3f} trl_gain={ref:+.3f} "
          f"base={base['value']:.3f} ours={after['ours']['value']:.3f} trl={after['trl']['value']:.3f}")


if __name__ == "__main__":
    main()
