"""`selftaught demo`: both methods changing what the built-in model can do, on a CPU.

1. evaluates the base model (`tiny`, the shipped selftaught-tiny) on held-out
   arithmetic and held-out program input/output tasks;
2. trains a copy with Intuitor (self-certainty, no labels) and another with GRPO on
   the gold answers, for the same steps, and evaluates both (the paper's comparison);
3. runs Absolute Zero self-play from the base model and evaluates it on the held-out
   program tasks;
4. writes `summary.json` (every figure, with sample counts, 95% intervals, the
   per-step curves and the configurations), `report.md` and `report.png`
   (`selftaught.report`) and prints the table.

Held-out data is never trained on (the splits are disjoint by construction) and
nothing is tuned on it: every figure is what this run measured.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .config import build_config
from .models.competence import (ARITHMETIC_TEMPERATURE, AZR_COMPLETION_TOKENS, AZR_SETTINGS, AZR_TEMPERATURE,
                                arithmetic_accuracy, program_solve_rates)
from .models.corpus import ARITHMETIC_CONTEXT
from .report import AZR_TYPES, CURVES, write_report
from .trainer import Trainer

DEMO_MODEL = "tiny"
DEMO_LEARNING_RATES = {"intuitor": 1e-5, "grpo": 3e-5}
"""Chosen on a development set (train-split problems not trained on), never on the
held-out data: `python scripts/demo_dev_sweep.py --steps 120` (1e-5 / 3e-5 / 1e-4)."""
PROGRAM_TYPES = ("deduction", "abduction")  # the held-out program I/O tasks


def _common(output_dir: Path, steps: int) -> dict:
    return {"output_dir": str(output_dir), "max_steps": steps, "seed": 0, "model": {"name_or_path": DEMO_MODEL},
            "save_steps": steps, "save_total_limit": 1, "progress_bar": True}


def intuitor_recipe(method: str, output_dir: Path, steps: int) -> dict:
    """intuitor_tiny / grpo_tiny: 8 prompts × G = 4 per step on the arithmetic generator."""
    return {**_common(output_dir, steps), "method": method,
            "data": {"source": "arithmetic", "num_examples": 2000, "prompt_template": ARITHMETIC_CONTEXT},
            "num_generations": 4, "per_device_train_batch_size": 32, "max_prompt_length": 64,
            "max_completion_length": 32, "temperature": ARITHMETIC_TEMPERATURE,
            "learning_rate": DEMO_LEARNING_RATES[method],
            "warmup_ratio": 0.1,
            "beta": 0.0}


def azr_recipe(output_dir: Path, steps: int, per_type_role: int) -> dict:
    """azr_tiny: the paper's loop at a CPU-sized batch."""
    return {**_common(output_dir, steps), "method": "azr",
            "azr": {**AZR_SETTINGS, "tasks_per_type_role": per_type_role, "learnability_rollouts": 4,
                    "seed_proposals": per_type_role, "seed_rounds": 1},
            "per_device_train_batch_size": 24, "max_prompt_length": 1024,
            "max_completion_length": AZR_COMPLETION_TOKENS,
            "temperature": AZR_TEMPERATURE, "learning_rate": 1e-4, "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0,
            "beta": 0.0}


def _evaluate(trainer: Trainer, n: int, arithmetic: bool = True) -> dict:
    model = trainer.accelerator.unwrap_model(trainer.model)
    figures = {}
    if arithmetic:
        figures["arithmetic"] = arithmetic_accuracy(model, trainer.tokenizer, n, greedy=True).as_dict()
    for task_type, accuracy in program_solve_rates(model, trainer.tokenizer, n, greedy=True,
                                                   task_types=PROGRAM_TYPES).items():
        figures[f"program/{task_type}"] = accuracy.as_dict()
    return figures


CURVE_KEYS = (*CURVES, *(f"azr/{t}/{what}" for t in AZR_TYPES for what in ("propose/valid_rate", "solve/solve_rate")))


def _curves(history: list[dict]) -> dict[str, list[float]]:
    """Per-step values of the curves the report draws (keys a run does not log are left out)."""
    curves = {}
    for key in CURVE_KEYS:
        values = [row[key] for row in history if isinstance(row.get(key), (int, float))]
        if values:
            curves[key] = values
    return curves


def auroc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(a random positive scores above a random negative), ties counted half; 0.5 = chance."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    above = (positive[:, None] > negative[None, :]).double().mean()
    tied = (positive[:, None] == negative[None, :]).double().mean()
    return float(above + 0.5 * tied)


def self_certainty_auroc(trainer: Trainer, n: int, samples: int = 4) -> dict:
    """Does the model's self-certainty (Intuitor's reward) tell its right answers from its
    wrong ones? Sampled completions of `n` training prompts, scored as in training.
    Intuitor can only raise accuracy where this AUROC is above 0.5."""
    from .data import arithmetic
    from .episodes import format_prompt
    from .rewards import MathAnswerReward

    data = trainer.config.data
    problems = arithmetic.generate(n, split="train", seed=trainer.config.seed)
    texts = [format_prompt(trainer.tokenizer, p.prompt, data.prompt_template, data.system_prompt,
                           data.use_chat_template) for p in problems]
    with torch.random.fork_rng():  # leave the training run's random stream as it was
        rollout = trainer.sampler.sample(texts, samples, extras={"answer": [p.answer for p in problems]})
        certainty = trainer.score(rollout).self_certainty
    correct = MathAnswerReward()(rollout.completions, rollout.extras, None).bool()

    def finite(value: float) -> float | None:  # JSON has no NaN: None when one side is empty
        return value if value == value else None

    return {"auroc": finite(auroc(certainty[correct], certainty[~correct])), "n": len(rollout),
            "correct": int(correct.sum()), "self_certainty_right": finite(float(certainty[correct].mean())),
            "self_certainty_wrong": finite(float(certainty[~correct].mean()))}


def _run_record(history: list[dict], after: dict, recipe: dict) -> dict:
    return {"steps": len(history), "after": after, "config": recipe, "curves": _curves(history),
            "seconds_per_step": sum(r["time/step_s"] for r in history) / len(history)}


def run_demo(output_dir: str, quick: bool = False, logging: dict | None = None) -> dict:
    """`logging`: progress keys for every recipe (`progress_bar`, `log_every`; the CLI's --quiet/--log-every)."""
    output = Path(output_dir)
    steps, azr_steps, n_eval, per_type_role = (2, 1, 12, 2) if quick else (120, 30, 200, 4)
    started = time.perf_counter()
    summary: dict = {"model": DEMO_MODEL, "quick": quick, "eval_n_requested": n_eval, "decoding": "greedy",
                     "runs": {}}

    recipes = {method: intuitor_recipe(method, output / method, steps) for method in ("intuitor", "grpo")}
    recipes["azr"] = azr_recipe(output / "azr", azr_steps, per_type_role)
    for recipe in recipes.values():
        recipe.update(logging or {})
    base = Trainer(build_config(recipes["intuitor"]))
    summary["base"] = _evaluate(base, n_eval)
    print(_line("base", summary["base"]), flush=True)
    summary["self_certainty_vs_correct"] = self_certainty_auroc(base, n_eval // 2)
    value = summary["self_certainty_vs_correct"]["auroc"]
    print("base: self-certainty separates right from wrong answers with AUROC "
          + (f"{value:.3f} (0.5 = chance)" if value is not None else "— (all answers right or all wrong)"), flush=True)
    for method in ("intuitor", "grpo"):
        trainer = base if method == "intuitor" else Trainer(build_config(recipes[method]))
        history = trainer.train()
        summary["runs"][method] = _run_record(history, _evaluate(trainer, n_eval), recipes[method])
        print(_line(method, summary["runs"][method]["after"]), flush=True)

    azr = Trainer(build_config(recipes["azr"]))
    history = azr.train()
    summary["runs"]["azr"] = _run_record(history, _evaluate(azr, n_eval, arithmetic=False), recipes["azr"])
    print(_line("azr", summary["runs"]["azr"]["after"]), flush=True)
    summary["runtime_s"] = time.perf_counter() - started
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, output)
    print(table(summary))
    return summary


def _cell(figure: dict | None) -> str:
    if not figure:
        return "—"
    low, high = figure["ci95"]
    return f"{figure['accuracy']:.3f} [{low:.2f},{high:.2f}]"


def _line(name: str, figures: dict) -> str:
    return f"{name}: " + ", ".join(f"{k} {_cell(v)}" for k, v in figures.items())


def table(summary: dict) -> str:
    columns = ["arithmetic", *(f"program/{t}" for t in PROGRAM_TYPES)]
    sizes = {c: summary["base"][c]["n"] for c in columns if c in summary["base"]}
    lines = [f"\nselftaught demo — base model `{summary['model']}`, held-out data, greedy, accuracy [95% CI]",
             f"{'model':<14}" + "".join(f"{c:>24}" for c in columns) + f"{'s/step':>9}",
             f"{'(n)':<14}" + "".join(f"{sizes.get(c, ''):>24}" for c in columns)]
    rows = [("base", summary["base"], None)] + [
        (f"+{name} ({run['steps']} st)", run["after"], run["seconds_per_step"]) for name, run in summary["runs"].items()]
    for name, figures, seconds in rows:
        lines.append(f"{name:<14}" + "".join(f"{_cell(figures.get(c)):>24}" for c in columns)
                     + (f"{seconds:>9.2f}" if seconds else f"{'':>9}"))
    for name, run in summary["runs"].items():
        sc, length = run["curves"].get("self_certainty/mean"), run["curves"].get("completion_length/mean")
        if sc and length:
            lines.append(f"{name}: self-certainty {sc[0]:.3f} → {sc[-1]:.3f}; completion length "
                         f"{length[0]:.1f} → {length[-1]:.1f}")
    lines.append(f"total {summary['runtime_s']:.0f} s; every figure in summary.json")
    return "\n".join(lines)
