"""`selftaught demo`: Intuitor (no labels) and GRPO (gold answers) side by side.

Both start from the same base model and train for the same number of steps on the
built-in arithmetic generator; each is evaluated on the held-out split (never
trained on) before and after. Until the built-in pretrained model ships, the base
is `tiny-random`: the demo then shows the machinery working (rewards, certainty,
checkpoints), not a model learning arithmetic, and the table says so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import build_config
from .data import PromptRow, arithmetic
from .episodes import format_prompt
from .evaluate import math_accuracy
from .trainer import Trainer

DEMO_MODEL = "tiny-random"


def _recipe(method: str, output_dir: Path, steps: int) -> dict:
    return {
        "method": method, "output_dir": str(output_dir), "max_steps": steps, "seed": 0,
        "model": {"name_or_path": DEMO_MODEL},
        "data": {"source": "arithmetic", "num_examples": 2000, "prompt_template": "Question: {prompt}\nAnswer:"},
        "num_generations": 4, "per_device_train_batch_size": 16, "max_prompt_length": 64,
        "max_completion_length": 24, "temperature": 0.9, "learning_rate": 1e-4, "beta": 0.0,
        "save_steps": steps, "save_total_limit": 1, "log_completions": 2,
    }


def _evaluate(trainer: Trainer, rows) -> dict:
    data = trainer.config.data
    texts = [format_prompt(trainer.tokenizer, r.prompt, data.prompt_template, data.system_prompt,
                           data.use_chat_template) for r in rows]
    return math_accuracy(trainer.sampler, rows, texts, greedy=True).as_dict()


def run_demo(output_dir: str, quick: bool = False) -> dict:
    output = Path(output_dir)
    steps, n_eval = (2, 16) if quick else (30, 200)
    heldout = [PromptRow(p.prompt, p.answer) for p in arithmetic.generate(n_eval, split="heldout", seed=0)]
    summary: dict = {"model": DEMO_MODEL, "steps": steps, "heldout_n": n_eval, "methods": {}}
    started = time.perf_counter()
    for method in ("intuitor", "grpo"):
        trainer = Trainer(build_config(_recipe(method, output / method, steps)))
        before = _evaluate(trainer, heldout)
        history = trainer.train()
        after = _evaluate(trainer, heldout)
        first, last = history[0], history[-1]
        summary["methods"][method] = {
            "heldout_before": before, "heldout_after": after,
            "self_certainty": [first["self_certainty/mean"], last["self_certainty/mean"]],
            "gold_reward": [first.get("rewards/math_answer/mean"), last.get("rewards/math_answer/mean")],
            "completion_length": [first["completion_length/mean"], last["completion_length/mean"]],
            "seconds_per_step": sum(r["time/step_s"] for r in history) / len(history),
        }
    summary["runtime_s"] = time.perf_counter() - started
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_table(summary)
    return summary


def _print_table(summary: dict) -> None:
    print(f"\nselftaught demo — base model {summary['model']}, {summary['steps']} steps each, "
          f"held-out arithmetic n={summary['heldout_n']} (greedy)")
    print(f"{'method':<10} {'acc before':>11} {'acc after':>10} {'self-cert first→last':>22} {'s/step':>7}")
    for method, m in summary["methods"].items():
        sc = m["self_certainty"]
        print(f"{method:<10} {m['heldout_before']['accuracy']:>11.3f} {m['heldout_after']['accuracy']:>10.3f} "
              f"{sc[0]:>10.4f} → {sc[1]:<9.4f} {m['seconds_per_step']:>7.2f}")
    if summary["model"] == "tiny-random":
        print("note: tiny-random is an untrained model; expect ~0 accuracy. This shows the pipeline, not learning.")
    print(f"total {summary['runtime_s']:.0f}s; figures in summary.json")
