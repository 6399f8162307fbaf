"""`selftaught demo`: every method teaching a built-in model, measured on held-out data, on a CPU.

The demo has one section per built-in model (`MATH_SECTIONS`, then `PROGRAMS`):

- **math sections** (`tiny-math`; `tiny-ramble`, on which self-certainty tracks correctness, so
  Intuitor has something to select): `selftaught diagnose` on the
  base model (held-out additions, 8 samples each: pass@1, pass@8, majority@8, greedy, the share
  taking the procedure, every label-free reward's within-group AUROC), then one copy per method
  trained on the RL prompts (GRPO on gold answers, Intuitor, the other label-free rewards, the
  random-reward control), each measured again the same way;
- **the program section** (`tiny`, which knows chain programs and additions): held-out program
  tasks (deduction, abduction; 8 samples each, AZR's own checking) and additions before and
  after Absolute Zero self-play, so what self-play teaches is measured on programs and, as
  transfer, on additions; and GRPO and answer agreement on additions from the same model, measured
  on additions and, as transfer, on programs.

It writes `summary.json` (every figure with its interval and sample count, the per-step curves,
each run's configuration), `report.md` and `report.png` (`selftaught.demo_report`, with the targets
met or missed) and prints the tables. Nothing is tuned on held-out data: learning rates and batch
sizes come from the `dev` splits, and every figure is what this run measured. One training seed:
the spread over seeds is `scripts/seed_spread.py`'s (README).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import build_config, set_all_dotted
from .data import addition
from .demo_report import CURVE_KEYS, figure_cell, write_report
from .errors import UserError
from .models import load_model
from .recipes import load_recipe
from .tiny.competence import addition_figures, program_figures, tiny_azr_config
from .tiny.corpus import works_step_by_step
from .trainer import Trainer

PROCEDURE = "procedure share"


@dataclass(frozen=True)
class MathSection:
    """A built-in addition model and the methods the demo trains on it: run `m` trains the recipe
    configs/<m>_<family>.yaml (from the model, on the addition `train` split)."""

    model: str
    family: str
    methods: tuple[str, ...]
    procedure: object = addition.uses_procedure
    """Whether a completion takes the procedure (the model's own procedure opener)."""

    def recipe(self, method: str) -> str:
        return f"{method}_{self.family}.yaml"


@dataclass(frozen=True)
class ProgramSection:
    """`tiny`: Absolute Zero self-play (configs/azr_tiny.yaml), and GRPO and answer agreement on
    additions, each measured on programs and additions."""

    model: str = "tiny"
    azr_recipe: str = "azr_tiny.yaml"
    additions_recipes: tuple[tuple[str, str], ...] = (("grpo_additions", "grpo_tiny_additions.yaml"),
                                                      ("answer_agreement_additions",
                                                       "answer_agreement_tiny_additions.yaml"))
    """(run name, recipe) of the runs on additions: the gold reward and the best label-free one."""


MATH_SECTIONS = (
    MathSection("tiny-math", "tiny", ("grpo", "intuitor", "majority_vote", "answer_agreement", "token_entropy",
                                      "trajectory_logprob", "random")),
    MathSection("tiny-ramble", "tiny_ramble", ("grpo", "intuitor", "random")),
)
PROGRAMS = ProgramSection()
METHODS = MATH_SECTIONS[0].methods
"""tiny-math's runs (configs/<m>_tiny.yaml)."""


@dataclass(frozen=True)
class Budget:
    """How much the demo trains and measures (the full demo, or --quick for tests)."""

    steps: int = 40
    math_n: int = 200
    azr_steps: int | None = None  # None: the AZR recipe's max_steps
    programs_n: int = 200
    program_samples: int = 8
    per_type_role: int | None = None  # None: the AZR recipe's batch


FULL, QUICK = Budget(), Budget(steps=2, math_n=16, azr_steps=1, programs_n=8, program_samples=2, per_type_role=2)


def run_overrides(output_dir: Path, steps: int) -> dict:
    """What the demo changes in every recipe it loads: where it writes, how long it runs
    (one checkpoint, at the end)."""
    return {"output_dir": str(output_dir), "max_steps": steps, "save_steps": steps}


def method_reward(recipe: dict) -> str:
    """The one reward a math recipe trains on (gold accuracy is logged beside it, weight 0)."""
    config = build_config(recipe)
    return next(spec.name for spec in config.reward_specs() if spec.weight > 0)


def math_recipe(method: str, output_dir: Path, steps: int, section: MathSection = MATH_SECTIONS[0]) -> dict:
    """configs/<method>_<family>.yaml (8 RL prompts × G = 8 completions per step) with the demo's
    `run_overrides`."""
    if method not in section.methods:
        raise UserError(f"demo: unknown method {method!r} for {section.model}; one of {', '.join(section.methods)}")
    return set_all_dotted(load_recipe(section.recipe(method)), run_overrides(output_dir, steps))


def azr_recipe(output_dir: Path, steps: int | None = None, per_type_role: int | None = None) -> dict:
    """configs/azr_tiny.yaml with the demo's `run_overrides` (and, for --quick, a smaller batch)."""
    recipe = load_recipe(PROGRAMS.azr_recipe)
    overrides = run_overrides(output_dir, steps or tiny_azr_config().max_steps)
    if per_type_role:
        groups = 2 * len(tiny_azr_config().azr.task_types)  # (type, role) groups
        overrides.update({"azr.tasks_per_type_role": per_type_role, "azr.seed_proposals": per_type_role,
                          "per_device_train_batch_size": groups * per_type_role})
    return set_all_dotted(recipe, overrides)


def _with_n(figures: dict, n: int) -> dict:
    return {name: {**result, "n": n} for name, result in figures.items()}


def measure_additions(model: str, n: int, output_dir: Path, procedure=addition.uses_procedure) -> dict:
    """{'figures': {'additions': {...}}, 'auroc': {...}}: selftaught diagnose on `n` held-out additions."""
    record = addition_figures(model, n, "heldout", output_dir, procedure=procedure)
    figures = _with_n(record["accuracy"], record["n"])
    figures[PROCEDURE] = {**record["tags"]["procedure"], "n": record["n"]}
    return {"figures": {"additions": figures},
            "auroc": {name: {k: result[k] for k in ("value", "low", "high", "pairs", "verdict")}
                      for name, result in record["sources"].items()}}


def measure_programs(model_dir: str, budget: Budget) -> dict:
    """{task type: figures} on `budget.programs_n` held-out programs, `program_samples` samples each."""
    model, tokenizer = load_model(model_dir)
    with torch.random.fork_rng():  # measuring leaves the caller's random stream as it was
        torch.manual_seed(0)
        measured = program_figures(model, tokenizer, budget.programs_n, "heldout", samples=budget.program_samples)
    figures = {}
    for task_type, result in measured.items():
        figures[task_type] = {**_with_n(result["accuracy"], result["n"]),
                              PROCEDURE: {**result["step share"], "n": result["n"]}}
    return figures


def _curves(history: list[dict]) -> dict[str, list[float]]:
    """Per-step values of the curves the report draws (keys a run does not log are left out)."""
    curves = {}
    for key in CURVE_KEYS:
        values = [row[key] for row in history if isinstance(row.get(key), (int, float))]
        if values:
            curves[key] = values
    return curves


def _count(history: list[dict], suffix: str) -> float:
    """A counter summed over steps and task types (keys ending in `suffix`)."""
    return sum(row.get(key, 0) for row in history for key in row if key.endswith(suffix))


def _run_record(history: list[dict], after: dict, recipe: dict, trainer: Trainer, auroc: dict | None = None) -> dict:
    """`config`: the recipe as run (file + the demo's overrides); `resolved_config`: every setting
    the trainer ran with, defaults included."""
    record = {"steps": len(history), "after": after, "config": recipe,
              "resolved_config": trainer.config.model_dump(mode="json"), "curves": _curves(history),
              "seconds_per_step": sum(r["time/step_s"] for r in history) / len(history)}
    if auroc is not None:
        record["auroc_after"] = auroc
    return record


def _train(recipe: dict, logging: dict | None) -> tuple[list[dict], Trainer]:
    recipe.update(logging or {})
    trainer = Trainer(build_config(recipe))
    return trainer.train(), trainer


def run_math_section(section: MathSection, output: Path, budget: Budget, logging: dict | None) -> dict:
    """Diagnose the base model, train every method, measure each copy the same way."""
    with tempfile.TemporaryDirectory() as scratch:
        base = measure_additions(section.model, budget.math_n, Path(scratch), section.procedure)
    result = {"kind": "math", "model": section.model, "base": base["figures"], "auroc": base["auroc"], "runs": {},
              "eval": {"n": budget.math_n, "samples": 8, "temperature": 1.0}}
    print(_line(f"{section.model} base", base["figures"]), flush=True)
    for name, auroc in base["auroc"].items():
        print(f"  diagnose: {name} within-group AUROC " + (f"{auroc['value']:.2f} → {auroc['verdict']}"
                                                            if auroc["value"] is not None else "— (no pairs)"),
              flush=True)
    for method in section.methods:
        recipe = math_recipe(method, output / section.model / method, budget.steps, section)
        history, trainer = _train(recipe, logging)
        after = measure_additions(recipe["output_dir"], budget.math_n, Path(recipe["output_dir"]) / "diagnose",
                                  section.procedure)
        result["runs"][method] = {**_run_record(history, after["figures"], recipe, trainer, after["auroc"]),
                                  "reward": method_reward(recipe)}
        print(_line(f"{section.model} + {method}", after["figures"]), flush=True)
        del trainer
    return result


def run_program_section(output: Path, budget: Budget, logging: dict | None) -> dict:
    """`tiny` before and after AZR self-play and after each run on additions: programs and additions each time."""
    root = output / PROGRAMS.model
    result = {"kind": "programs", "model": PROGRAMS.model, "runs": {},
              "eval": {"programs_n": budget.programs_n, "samples": budget.program_samples, "math_n": budget.math_n}}
    with tempfile.TemporaryDirectory() as scratch:
        additions = measure_additions(PROGRAMS.model, budget.math_n, Path(scratch), works_step_by_step)
    result["base"] = {**measure_programs(PROGRAMS.model, budget), **additions["figures"]}
    print(_line(f"{PROGRAMS.model} base", result["base"]), flush=True)

    recipe = azr_recipe(root / "azr", budget.azr_steps, budget.per_type_role)
    history, trainer = _train(recipe, logging)
    after = measure_programs(recipe["output_dir"], budget)
    after.update(measure_additions(recipe["output_dir"], budget.math_n, root / "azr" / "diagnose",
                                   works_step_by_step)["figures"])
    result["runs"]["azr"] = {**_run_record(history, after, recipe, trainer),
                             "excluded_proposals": _count(history, "/propose/excluded"),
                             "held_out_split_proposals": _count(history, "/propose/held_out_split")}
    print(_line(f"{PROGRAMS.model} + azr", after), flush=True)
    del trainer

    for run_name, recipe_file in PROGRAMS.additions_recipes:
        recipe = set_all_dotted(load_recipe(recipe_file), run_overrides(root / run_name, budget.steps))
        history, trainer = _train(recipe, logging)
        after = measure_additions(recipe["output_dir"], budget.math_n, root / run_name / "diagnose",
                                  works_step_by_step)["figures"]
        after.update(measure_programs(recipe["output_dir"], budget))
        result["runs"][run_name] = {**_run_record(history, after, recipe, trainer), "reward": method_reward(recipe)}
        print(_line(f"{PROGRAMS.model} + {run_name}", after), flush=True)
        del trainer
    return result


def run_demo(output_dir: str, quick: bool = False, logging: dict | None = None) -> dict:
    """`logging`: progress keys for every recipe (`progress_bar`, `log_every`; the CLI's --quiet/--log-every)."""
    output = Path(output_dir)
    budget = QUICK if quick else FULL
    started = time.perf_counter()
    summary: dict = {"quick": quick, "sections": {}}
    for section in MATH_SECTIONS:
        summary["sections"][section.model] = run_math_section(section, output, budget, logging)
    summary["sections"][PROGRAMS.model] = run_program_section(output, budget, logging)
    summary["runtime_s"] = time.perf_counter() - started
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, output)
    print(tables(summary))
    return summary


def _cell(figure: dict | None) -> str:
    return figure_cell(figure, separator=",")  # the terminal table's narrow columns


def _line(name: str, figures: dict) -> str:
    return f"{name}: " + "; ".join(f"{task} " + ", ".join(f"{k} {_cell(v)}" for k, v in values.items())
                                   for task, values in figures.items())


def tables(summary: dict) -> str:
    """The terminal tables: one row per (model, task) of each section."""
    lines = ["\nselftaught demo — held-out data, value [95% CI] (summary.json, report.md)"]
    for name, section in summary["sections"].items():
        columns = list(next(iter(section["base"].values())))
        width = 19
        lines += ["", f"{name}:", f"{'model':<24}{'task':<11}" + "".join(f"{c:>{width}}" for c in columns)
                  + f"{'s/step':>8}"]
        rows = [("base", section["base"], None)] + [
            (f"+{run_name} ({run['steps']} st)", run["after"], run["seconds_per_step"])
            for run_name, run in section["runs"].items()]
        for label, figures, seconds in rows:
            for task, values in figures.items():
                lines.append(f"{label:<24}{task:<11}" + "".join(f"{_cell(values.get(c)):>{width}}" for c in columns)
                             + (f"{seconds:>8.2f}" if seconds else f"{'':>8}"))
    lines.append(f"\ntotal {summary['runtime_s']:.0f} s; every figure in summary.json, the verdicts in report.md")
    return "\n".join(lines)
