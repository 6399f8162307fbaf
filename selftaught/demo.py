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

from .config import build_config, set_all_dotted
from .errors import UserError
from .tiny.competence import TINY_MATH, addition_figures, program_solve_rates
from .recipes import load_recipe
from .azr.tasks import ONE_PAIR_TYPES, TASK_TYPES
from .report import CURVES, figure_cell, write_report
from .trainer import Trainer

METHODS = ("grpo", "intuitor", "majority_vote", "answer_agreement", "token_entropy", "trajectory_logprob")
"""The demo's math runs; run `m` trains the recipe configs/<m>_tiny.yaml (selftaught.recipes)."""
# The block every math recipe shares (model, data, G, sampling): the demo measures with the
# settings it trains with (`tiny.competence.addition_figures`).
MATH_MODEL = TINY_MATH.model.name_or_path
MATH_TEMPERATURE = TINY_MATH.temperature
MATH_SAMPLES = TINY_MATH.num_generations
MATH_CONTEXT = TINY_MATH.data.prompt_template
_MATH_CONFIGS = {method: build_config(load_recipe(f"{method}_tiny.yaml")) for method in METHODS}
METHOD_REWARDS = {method: next(spec.name for spec in config.reward_specs() if spec.weight > 0)
                  for method, config in _MATH_CONFIGS.items()}
"""Demo run → the one reward it trains on (every label-free run also logs gold accuracy, weight 0)."""
LABEL_FREE = tuple(name for name in METHOD_REWARDS if name != "grpo")
DEMO_LEARNING_RATES = {method: config.learning_rate for method, config in _MATH_CONFIGS.items()}
"""Chosen on the `dev` split, never on held-out data (scripts/demo_dev_sweep.py); each
recipe file states its rate with the dev figures behind it."""
PROGRAM_MODEL = load_recipe("azr_tiny.yaml")["model"]["name_or_path"]
PROGRAM_TYPES = ONE_PAIR_TYPES  # the held-out program I/O tasks (deduction, abduction)
PROCEDURE = "procedure share"


def run_overrides(output_dir: Path, steps: int) -> dict:
    """What the demo changes in every recipe it loads: where it writes, how long it runs
    (one checkpoint, at the end)."""
    return {"output_dir": str(output_dir), "max_steps": steps, "save_steps": steps}


def math_recipe(method: str, output_dir: Path, steps: int) -> dict:
    """configs/<method>_tiny.yaml: 8 RL prompts × G = 8 completions per step from the addition
    generator's `train` split, with the demo's `run_overrides`."""
    if method not in METHODS:
        raise UserError(f"demo: unknown method {method!r}; one of {', '.join(METHODS)}")
    return set_all_dotted(load_recipe(f"{method}_tiny.yaml"), run_overrides(output_dir, steps))


def azr_recipe(output_dir: Path, steps: int, per_type_role: int) -> dict:
    """configs/azr_tiny.yaml: the paper's loop at a CPU-sized batch, from the program model, with
    the demo's `run_overrides` and `per_type_role` tasks per type and role (also the seed batch)."""
    return set_all_dotted(load_recipe("azr_tiny.yaml"), {**run_overrides(output_dir, steps),
                                                          "azr.tasks_per_type_role": per_type_role,
                                                          "azr.seed_proposals": per_type_role})


def measure_math(model: str, n: int, output_dir: Path) -> dict:
    """selftaught diagnose on `n` held-out problems: the accuracy figures, the procedure share
    and every label-free source's within-group AUROC."""
    record = addition_figures(model, n, "heldout", output_dir)
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
              *(f"azr/{t}/{what}" for t in TASK_TYPES for what in ("propose/valid_rate", "solve/solve_rate")))


def _curves(history: list[dict]) -> dict[str, list[float]]:
    """Per-step values of the curves the report draws (keys a run does not log are left out)."""
    curves = {}
    for key in CURVE_KEYS:
        values = [row[key] for row in history if isinstance(row.get(key), (int, float))]
        if values:
            curves[key] = values
    return curves


def _run_record(history: list[dict], after: dict, recipe: dict, trainer: Trainer, auroc: dict | None = None) -> dict:
    """`config`: the recipe as run (file + the demo's overrides); `resolved_config`: every setting
    the trainer ran with, defaults included."""
    record = {"steps": len(history), "after": after, "config": recipe,
              "resolved_config": trainer.config.model_dump(mode="json"), "curves": _curves(history),
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
        summary["runs"][method] = _run_record(history, after["figures"], recipe, trainer, after["auroc"])
        print(_line(method, summary["runs"][method]["after"]), flush=True)
        del trainer

    recipe = azr_recipe(output / "azr", azr_steps, per_type_role)
    recipe.update(logging or {})
    azr = Trainer(build_config(recipe))
    with torch.random.fork_rng():  # measuring the base leaves the run's random stream as it was
        summary["base"].update(measure_programs(azr, n_programs))
    history = azr.train()
    summary["runs"]["azr"] = _run_record(history, measure_programs(azr, n_programs), recipe, azr)
    print(_line("azr", summary["runs"]["azr"]["after"]), flush=True)
    summary["runtime_s"] = time.perf_counter() - started
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, output)
    print(table(summary))
    return summary


def _cell(figure: dict | None) -> str:
    return figure_cell(figure, separator=",")  # the terminal table's narrow columns


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
