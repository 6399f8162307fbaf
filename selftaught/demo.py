"""`selftaught demo`: every method teaching a built-in model, measured on held-out data, on a CPU.

1. `selftaught diagnose` on the base model `tiny-math` (held-out long additions,
   8 samples each): sampled pass@1, pass@8, majority@8, greedy, the share of
   completions that take the column procedure, and how well each label-free reward
   ranks right completions above wrong ones (within-group AUROC);
2. trains one copy per method on the RL prompts (the `train` split: the held-out
   distribution, never its problems) — GRPO on gold answers, Intuitor
   (self-certainty) and every other label-free reward the project ships — and
   measures each again the same way;
3. runs Absolute Zero self-play from `tiny` (the program model) and measures its
   held-out deduction and abduction solve rates before and after;
4. writes `summary.json` (every figure with its interval and sample count, the
   per-step curves, each run's configuration), `report.md` and `report.png`
   (`selftaught.report`, with the targets met or missed) and prints the table.

Nothing is tuned on held-out data: learning rates come from the `dev` split
(`scripts/demo_dev_sweep.py`), and every figure is what this run measured.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from .config import build_config
from .data import addition
from .diagnose import run_diagnose
from .tiny.addition_corpus import ANSWER_CONTEXT
from .tiny.competence import AZR_COMPLETION_TOKENS, AZR_SETTINGS, AZR_TEMPERATURE, program_solve_rates
from .report import AZR_TYPES, CURVES, write_report
from .trainer import Trainer

MATH_MODEL = "tiny-math"
PROGRAM_MODEL = "tiny"
MATH_TEMPERATURE = 1.0  # sampled, the base model takes each habit as often as it learned it
MATH_SAMPLES = 8
METHOD_REWARDS = {
    "grpo": "math_answer",  # the labelled baseline
    "intuitor": "self_certainty",
    "majority_vote": "majority_vote",
    "answer_agreement": "answer_agreement",
    "token_entropy": "token_entropy",
    "trajectory_logprob": "trajectory_logprob",
}
"""Demo run → the one reward it trains on (every label-free run also logs gold accuracy, weight 0)."""
LABEL_FREE = tuple(name for name in METHOD_REWARDS if name != "grpo")
DEMO_LEARNING_RATES = {"grpo": 3e-4, "intuitor": 1e-4, "majority_vote": 3e-4, "answer_agreement": 3e-4,
                       "token_entropy": 1e-4, "trajectory_logprob": 3e-4}
"""Chosen on the `dev` split, never on held-out data: `python scripts/demo_dev_sweep.py --rates 1e-4 3e-4 6e-4`
(40 steps; dev pass@1 from a base of 0.282 — grpo 0.449 / 0.887 / 0.814, intuitor 0.099 / 0.019 / 0.001,
majority_vote 0.422 / 0.746 / 0.054, answer_agreement 0.438 / 0.833 / 0.039, token_entropy 0.454 / 0.441 /
0.041, trajectory_logprob 0.440 / 0.524 / 0.000). Intuitor is below its base at every rate; 1e-4 hurts least."""
PROGRAM_TYPES = ("deduction", "abduction")  # the held-out program I/O tasks
PROCEDURE = "procedure share"


def _common(output_dir: Path, steps: int) -> dict:
    return {"output_dir": str(output_dir), "max_steps": steps, "seed": 0, "save_steps": steps,
            "save_total_limit": 1, "progress_bar": True}


def math_recipe(method: str, output_dir: Path, steps: int) -> dict:
    """8 RL prompts × G = 8 completions per step from the addition generator's `train` split."""
    reward = METHOD_REWARDS[method]
    logged = [] if reward == "math_answer" else [{"name": "math_answer", "weight": 0.0}]
    return {**_common(output_dir, steps), "method": "grpo" if method == "grpo" else "intuitor",
            "model": {"name_or_path": MATH_MODEL},
            "rewards": [{"name": reward, "weight": 1.0}, *logged],
            "data": {"source": "addition", "split": "train", "num_examples": 2000, "prompt_template": ANSWER_CONTEXT},
            "num_generations": MATH_SAMPLES, "per_device_train_batch_size": 8 * MATH_SAMPLES,
            "max_prompt_length": 64, "max_completion_length": 64, "temperature": MATH_TEMPERATURE,
            "learning_rate": DEMO_LEARNING_RATES[method], "lr_scheduler_type": "constant", "warmup_ratio": 0.0,
            "beta": 0.0}


def azr_recipe(output_dir: Path, steps: int, per_type_role: int) -> dict:
    """azr_tiny: the paper's loop at a CPU-sized batch, from the program model."""
    return {**_common(output_dir, steps), "method": "azr", "model": {"name_or_path": PROGRAM_MODEL},
            "azr": {**AZR_SETTINGS, "tasks_per_type_role": per_type_role, "learnability_rollouts": 4,
                    "seed_proposals": per_type_role, "seed_rounds": 1},
            "per_device_train_batch_size": 24, "max_prompt_length": 1024,
            "max_completion_length": AZR_COMPLETION_TOKENS,
            "temperature": AZR_TEMPERATURE, "learning_rate": 1e-4, "lr_scheduler_type": "constant",
            "warmup_ratio": 0.0, "beta": 0.0}


def measure_math(model: str, n: int, output_dir: Path) -> dict:
    """selftaught diagnose on `n` held-out problems: the accuracy figures, the procedure share
    and every label-free source's within-group AUROC."""
    record = run_diagnose(model, "addition", split="heldout", n=n, samples=MATH_SAMPLES,
                          prompt_template=ANSWER_CONTEXT, temperature=MATH_TEMPERATURE, max_new_tokens=64,
                          max_prompt_length=64, output_dir=str(output_dir), batch_size=64,
                          tags={"procedure": addition.uses_procedure})
    figures = {name: {**result, "n": record["n"]} for name, result in record["accuracy"].items()}
    figures[PROCEDURE] = {**record["tags"]["procedure"], "n": record["n"]}
    return {"figures": figures, "auroc": {name: {k: result[k] for k in ("value", "low", "high", "pairs", "verdict")}
                                          for name, result in record["sources"].items()}}


def measure_programs(trainer: Trainer, n: int) -> dict:
    """Greedy held-out solve rates of the program model (AZR's own checking), 95% Wilson intervals."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    figures = {}
    for task_type, accuracy in program_solve_rates(model, trainer.tokenizer, n, greedy=True,
                                                   task_types=PROGRAM_TYPES).items():
        low, high = accuracy.wilson_interval()
        figures[f"program/{task_type}"] = {"value": accuracy.value, "low": low, "high": high, "n": accuracy.total}
    return figures


CURVE_KEYS = (*CURVES, *(f"rewards/{source}/mean" for source in METHOD_REWARDS.values()),
              *(f"azr/{t}/{what}" for t in AZR_TYPES for what in ("propose/valid_rate", "solve/solve_rate")))


def _curves(history: list[dict]) -> dict[str, list[float]]:
    """Per-step values of the curves the report draws (keys a run does not log are left out)."""
    curves = {}
    for key in CURVE_KEYS:
        values = [row[key] for row in history if isinstance(row.get(key), (int, float))]
        if values:
            curves[key] = values
    return curves


def _run_record(history: list[dict], after: dict, recipe: dict, auroc: dict | None = None) -> dict:
    record = {"steps": len(history), "after": after, "config": recipe, "curves": _curves(history),
              "seconds_per_step": sum(r["time/step_s"] for r in history) / len(history)}
    if auroc is not None:
        record["auroc_after"] = auroc
    return record


def run_demo(output_dir: str, quick: bool = False, logging: dict | None = None) -> dict:
    """`logging`: progress keys for every recipe (`progress_bar`, `log_every`; the CLI's --quiet/--log-every)."""
    output = Path(output_dir)
    steps, azr_steps, n_math, n_programs, per_type_role = (2, 1, 16, 8, 2) if quick else (40, 20, 200, 100, 4)
    started = time.perf_counter()
    summary: dict = {"models": {"math": MATH_MODEL, "programs": PROGRAM_MODEL}, "quick": quick,
                     "eval": {"math_n": n_math, "programs_n": n_programs, "samples": MATH_SAMPLES,
                              "temperature": MATH_TEMPERATURE}, "runs": {}}
    with tempfile.TemporaryDirectory() as scratch:
        base = measure_math(MATH_MODEL, n_math, Path(scratch))
    summary["base"], summary["auroc"] = base["figures"], base["auroc"]
    print(_line("base", summary["base"]), flush=True)
    for name, result in summary["auroc"].items():
        print(f"  base diagnose: {name} within-group AUROC {result['value']:.2f} → {result['verdict']}"
              if result["value"] is not None else f"  base diagnose: {name}: no right/wrong pairs", flush=True)

    for method in METHOD_REWARDS:
        recipe = math_recipe(method, output / method, steps)
        recipe.update(logging or {})
        trainer = Trainer(build_config(recipe))
        history = trainer.train()
        after = measure_math(str(output / method), n_math, output / method / "diagnose")
        summary["runs"][method] = _run_record(history, after["figures"], recipe, after["auroc"])
        print(_line(method, summary["runs"][method]["after"]), flush=True)
        del trainer

    recipe = azr_recipe(output / "azr", azr_steps, per_type_role)
    recipe.update(logging or {})
    azr = Trainer(build_config(recipe))
    with torch.random.fork_rng():  # measuring the base leaves the run's random stream as it was
        summary["base"].update(measure_programs(azr, n_programs))
    history = azr.train()
    summary["runs"]["azr"] = _run_record(history, measure_programs(azr, n_programs), recipe)
    print(_line("azr", summary["runs"]["azr"]["after"]), flush=True)
    summary["runtime_s"] = time.perf_counter() - started
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, output)
    print(table(summary))
    return summary


def _cell(figure: dict | None) -> str:
    if not figure or figure.get("value") is None:
        return "—"
    return f"{figure['value']:.3f} [{figure['low']:.2f},{figure['high']:.2f}]"


def _line(name: str, figures: dict) -> str:
    return f"{name}: " + ", ".join(f"{k} {_cell(v)}" for k, v in figures.items())


def table(summary: dict) -> str:
    columns = list(summary["base"])
    width = 22
    lines = [f"\nselftaught demo — held-out data, value [95% CI]; math: `{summary['models']['math']}`, "
             f"{summary['eval']['math_n']} problems × {summary['eval']['samples']} samples at "
             f"τ={summary['eval']['temperature']}; programs: `{summary['models']['programs']}`, greedy",
             f"{'model':<26}" + "".join(f"{c:>{width}}" for c in columns) + f"{'s/step':>8}"]
    rows = [("base", summary["base"], None)] + [
        (f"+{name} ({run['steps']} st)", run["after"], run["seconds_per_step"]) for name, run in summary["runs"].items()]
    for name, figures, seconds in rows:
        lines.append(f"{name:<26}" + "".join(f"{_cell(figures.get(c)):>{width}}" for c in columns)
                     + (f"{seconds:>8.2f}" if seconds else f"{'':>8}"))
    lines.append(f"total {summary['runtime_s']:.0f} s; every figure in summary.json, the verdicts in report.md")
    return "\n".join(lines)
