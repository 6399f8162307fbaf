"""Held-out competence of a model on the built-in tasks, measured the way training sees them.

- `addition_figures`: `selftaught diagnose` on long additions at the tiny-math recipes' settings:
  pass@1, pass@K, majority@K, greedy, the share taking the procedure, every label-free AUROC.
- `program_figures`: the same figures for program tasks (the AZR recipe's types) on distinct
  chain programs of the `dev` or `heldout` split (`data.chains`): K samples per task at the AZR recipe's τ,
  answers parsed and checked exactly as self-play does (`AZREpisodes.solve`: AZR's parsing, the
  sandboxed executor), 95% bootstrap intervals over programs.
- `proposal_valid_rates`: the share of valid AZR proposals per task type.

What `scripts/build_tiny_model.py` writes into the model card, what the demo measures before and
after training, and what the transfer and ablation scripts compare.
"""

from __future__ import annotations

import ast
from collections import Counter
from contextlib import contextmanager
from functools import cache

import numpy as np

from ..azr.episodes import AZREpisodes
from ..azr.tasks import TASK_TYPE_SPECS
from ..config import TrainConfig, build_config
from ..data import addition
from ..diagnose import ratio_with_interval, run_diagnose
from ..evaluate import Accuracy
from ..recipes import load_recipe
from ..rollout import SelftaughtSampler
from .corpus import chain_tasks, works_step_by_step



@cache
def tiny_math_config() -> TrainConfig:
    """The block every tiny-math recipe shares (model, data, G, sampling), validated: `tiny-math` is
    measured (model card, demo, dev sweep) with the settings it is trained with. Read on first use;
    callers must not modify it (it is shared)."""
    return build_config(load_recipe("tiny_math_base.yaml"))


@cache
def tiny_azr_config() -> TrainConfig:
    """configs/azr_tiny.yaml, validated: the prompt, executor and sampling settings `tiny` is trained
    and measured with. Read on first use; callers must not modify it (it is shared)."""
    return build_config(load_recipe("azr_tiny.yaml"))

PROGRAM_SAMPLES = 8
"""Samples per held-out program task (as the math's pass@8 and majority@8)."""


def addition_figures(model: str, n: int, split: str, output_dir, samples: int | None = None, seed: int = 0,
                     procedure=addition.uses_procedure) -> dict:
    """`selftaught diagnose` on `n` additions of `split` at the tiny-math recipes' settings: the
    record with pass@1, pass@K, majority@K, greedy, the share taking the procedure (tag
    `procedure`: `procedure(completion)`, tiny-math's columns by default) and every label-free
    source's within-group AUROC."""
    recipe = tiny_math_config().model_copy(deep=True)
    recipe.model.name_or_path, recipe.data.split, recipe.seed = model, split, seed
    return run_diagnose(recipe, n=n, samples=samples or recipe.num_generations, output_dir=str(output_dir),
                        batch_size=64, tags={"procedure": procedure})


@contextmanager
def azr_evaluator(tokenizer, seed: int = 0):
    """An AZREpisodes used only for its prompts, validation and checking (the recipe's settings)."""
    recipe = tiny_azr_config()
    config = recipe.model_copy(update={"seed": seed, "azr": recipe.azr.model_copy(update={"seed_proposals": 0})})
    source = AZREpisodes(config, tokenizer)
    try:
        yield source
    finally:
        source.close()


def program_sampler(model, tokenizer, batch_size: int = 256) -> SelftaughtSampler:
    """The sampler self-play uses, at the AZR recipe's τ and lengths."""
    recipe = tiny_azr_config()
    return SelftaughtSampler(model, tokenizer, max_prompt_length=recipe.max_prompt_length,
                             max_completion_length=recipe.max_completion_length, temperature=recipe.temperature,
                             generation_batch_size=batch_size)


def answer_key(answer: str | None, task_type: str) -> str | None:
    """Answers that denote the same value (or argument list) share a key: majority voting's clusters."""
    if answer is None:
        return None
    kind = TASK_TYPE_SPECS[task_type].solver_answers
    try:
        if kind == "output":
            return repr(ast.literal_eval(answer))
        if kind == "input":
            return repr(ast.literal_eval(f"({answer},)"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    return answer.strip()


def majority_right(keys: list[str | None], correct: list[bool]) -> bool:
    """Whether the most common well-formed answer of a group is right (ties: the first seen)."""
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return False
    top = counts.most_common(1)[0][0]
    return next(c for k, c in zip(keys, correct) if k == top)


def _type_figures(tasks, completions, answers, correct, greedy_correct, samples: int, seed: int) -> dict:
    n = len(tasks)
    right = np.array(correct, dtype=bool).reshape(n, samples)
    step = np.array([works_step_by_step(text) for text in completions], dtype=bool).reshape(n, samples)
    task_type = tasks[0].type
    keys = [answer_key(a.value if a.ok else None, task_type) for a in answers]
    majority = [majority_right(keys[k * samples:(k + 1) * samples], correct[k * samples:(k + 1) * samples])
                for k in range(n)]
    ones = np.ones(n)
    return {
        "accuracy": {
            "pass@1": ratio_with_interval(right.sum(axis=1), ones * samples, seed=seed),
            f"pass@{samples}": ratio_with_interval(right.any(axis=1), ones, seed=seed),
            f"majority@{samples}": ratio_with_interval(np.array(majority, dtype=float), ones, seed=seed),
            "greedy": ratio_with_interval(np.array(greedy_correct, dtype=float), ones, seed=seed),
        },
        "step share": ratio_with_interval(step.sum(axis=1), ones * samples, seed=seed),
        "step accuracy": {
            "with": ratio_with_interval((step & right).sum(axis=1), step.sum(axis=1), seed=seed),
            "without": ratio_with_interval((~step & right).sum(axis=1), (~step).sum(axis=1), seed=seed)},
        "format errors": float(np.mean([not a.ok for a in answers])),
        "n": n, "samples": samples,
    }


def program_figures(model, tokenizer, n: int, split: str = "heldout", samples: int = PROGRAM_SAMPLES,
                    task_types=None, seed: int = 0, tasks: dict | None = None) -> dict[str, dict]:
    """Per task type: pass@1, pass@K, majority@K and greedy, the share of samples that work step
    by step and the accuracy of those that do and do not, on `n` distinct chain programs of `split`
    (one task each; or on `tasks`, {type: [Task]}), 95% bootstrap intervals over programs.
    `task_types`: default the AZR recipe's."""
    if task_types is None:
        task_types = tuple(tiny_azr_config().azr.task_types)
    if tasks is None:
        tasks = chain_tasks(n, seed=seed, split=split, task_types=tuple(task_types))
    task_types = [t for t in task_types if t in tasks]
    chosen = [task for task_type in task_types for task in tasks[task_type]]
    sampler = program_sampler(model, tokenizer)
    with azr_evaluator(tokenizer, seed) as source:  # every type in one batch: fewer, fuller decoding passes
        rollout, answers, correct = source.solve(sampler, chosen, samples)
        _, _, greedy = source.solve(sampler, chosen, 1, greedy=True)
    figures, start = {}, 0
    for task_type in task_types:
        count = len(tasks[task_type])
        rows = slice(start * samples, (start + count) * samples)
        figures[task_type] = _type_figures(tasks[task_type], rollout.completions[rows], answers[rows], correct[rows],
                                           greedy[start:start + count], samples, seed)
        start += count
    return figures


def proposal_valid_rates(model, tokenizer, n: int, seed: int = 0) -> dict[str, Accuracy]:
    """Share of valid proposals per task type of the AZR recipe, with held-out chains as references."""
    tasks = chain_tasks(n, seed=seed, task_types=tuple(tiny_azr_config().azr.task_types))
    sampler = program_sampler(model, tokenizer)
    rates = {}
    with azr_evaluator(tokenizer, seed) as source:
        for task_type, typed in tasks.items():
            for task in typed:
                source.buffers[task_type].add(task)
        requests = [source.proposer_request(task_type) for task_type in source.types for _ in range(n)]
        completions = sampler.sample([r.prompt for r in requests]).completions
        outcomes = source.evaluate_proposals(requests, completions, step=0)
        for task_type in source.types:
            mine = [o for r, o in zip(requests, outcomes) if r.task_type == task_type]
            rates[task_type] = Accuracy(sum(o.valid for o in mine), len(mine))
    return rates
