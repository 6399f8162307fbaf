"""Held-out competence of a model on the built-in tasks.

What `scripts/build_tiny_model.py` reports (and the model card records) and what
`selftaught demo` measures before and after training: arithmetic accuracy, the
share of valid AZR proposals per task type, and the solve rate of each AZR solver
role. Proposals and answers go through exactly the code self-play uses
(AZREpisodes: prompts, parsing, executor validation, answer checking), so "valid"
and "solved" mean here what they mean during training.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..azr.episodes import AZREpisodes
from ..azr.tasks import TASK_TYPES
from ..config import TrainConfig, build_config
from ..data import PromptRow, addition, arithmetic
from ..diagnose import run_diagnose
from ..evaluate import Accuracy, math_accuracy
from ..recipes import load_recipe
from ..rollout import Sampler
from .corpus import ARITHMETIC_CONTEXT, held_out_tasks

ARITHMETIC_TEMPERATURE = TrainConfig.model_fields["temperature"].default  # the default sampling τ (0.9)
AZR_RECIPE = load_recipe("azr_tiny.yaml")
"""configs/azr_tiny.yaml: the prompt, executor and sampling settings `tiny` is measured with."""
AZR_TEMPERATURE = AZR_RECIPE["temperature"]
AZR_SETTINGS = {key: AZR_RECIPE["azr"][key] for key in ("num_references", "induction_inputs", "executor_timeout_s")}
"""The AZR prompt settings of the tiny recipe (and of the pretraining corpus)."""
AZR_COMPLETION_TOKENS = AZR_RECIPE["max_completion_length"]
"""Room for the worked execution traces the built-in model writes as deduction solver."""


TINY_MATH = build_config(load_recipe("tiny_math_base.yaml"))
"""The block every tiny-math recipe shares (model, data, G, sampling), validated: `tiny-math` is
measured (model card, demo, dev sweep) with the settings it is trained with."""


def addition_figures(model: str, n: int, split: str, output_dir, samples: int | None = None, seed: int = 0) -> dict:
    """`selftaught diagnose` on `n` additions of `split` at the tiny-math recipes' settings: the
    record with pass@1, pass@K, majority@K, greedy, the share taking the column procedure
    (tag `procedure`) and every label-free source's within-group AUROC."""
    return run_diagnose(model, "addition", split=split, n=n, samples=samples or TINY_MATH.num_generations,
                        seed=seed, prompt_template=TINY_MATH.data.prompt_template, temperature=TINY_MATH.temperature,
                        max_new_tokens=TINY_MATH.max_completion_length, max_prompt_length=TINY_MATH.max_prompt_length,
                        output_dir=str(output_dir), batch_size=64, tags={"procedure": addition.uses_procedure})


def arithmetic_accuracy(model, tokenizer, n: int, seed: int = 0, greedy: bool = True,
                        problems: list | None = None) -> Accuracy:
    """Accuracy on `n` held-out problems (or on the given `problems`, e.g. a dev set)."""
    problems = arithmetic.generate(n, split="heldout", seed=seed) if problems is None else problems
    rows = [PromptRow(p.prompt, p.answer) for p in problems]
    texts = [ARITHMETIC_CONTEXT.format(prompt=r.prompt) for r in rows]
    sampler = Sampler(model, tokenizer, max_prompt_length=128, max_completion_length=32,
                      temperature=ARITHMETIC_TEMPERATURE)
    return math_accuracy(sampler, rows, texts, greedy=greedy)


@contextmanager
def azr_evaluator(tokenizer, seed: int = 0):
    """An AZREpisodes used only for its prompts, validation and checking."""
    config = build_config({"method": "azr", "seed": seed, "max_prompt_length": AZR_RECIPE["max_prompt_length"],
                           "azr": {**AZR_SETTINGS, "seed_proposals": 0}})
    source = AZREpisodes(config, tokenizer)
    try:
        yield source
    finally:
        source.close()


def _sampler(model, tokenizer) -> Sampler:
    return Sampler(model, tokenizer, max_prompt_length=AZR_RECIPE["max_prompt_length"],
                   max_completion_length=AZR_COMPLETION_TOKENS,
                   temperature=AZR_TEMPERATURE, generation_batch_size=32)


def program_solve_rates(model, tokenizer, n: int, seed: int = 0, greedy: bool = False,
                        task_types=TASK_TYPES) -> dict[str, Accuracy]:
    """Solve rate per AZR task type on `n` held-out programs."""
    tasks = held_out_tasks(n, seed=seed, induction_inputs=AZR_SETTINGS["induction_inputs"])
    sampler = _sampler(model, tokenizer)
    rates = {}
    with azr_evaluator(tokenizer, seed) as source:
        for task_type in task_types:
            _, _, correct = source.solve(sampler, tasks[task_type], 1, greedy=greedy)  # exactly as in self-play
            rates[task_type] = Accuracy(sum(correct), len(correct))
    return rates


def proposal_valid_rates(model, tokenizer, n: int, seed: int = 0) -> dict[str, Accuracy]:
    """Share of valid proposals per task type, with held-out programs as references."""
    tasks = held_out_tasks(n, seed=seed, induction_inputs=AZR_SETTINGS["induction_inputs"])
    sampler = _sampler(model, tokenizer)
    rates = {}
    with azr_evaluator(tokenizer, seed) as source:
        for task_type, typed in tasks.items():
            for task in typed:
                source.buffers[task_type].add(task)
        for task_type in source.types:
            requests = [source.proposer_request(task_type) for _ in range(n)]
            completions = sampler.sample([r.prompt for r in requests]).completions
            outcomes = source.evaluate_proposals(requests, completions, step=0)
            rates[task_type] = Accuracy(sum(o.valid for o in outcomes), len(outcomes))
    return rates


def measure_competence(model, tokenizer, n: int = 200, seed: int = 0) -> dict:
    """{'values': {name: float}, 'table': [(label, text)]}: the model card's figures."""
    values: dict[str, float] = {}
    table: list[tuple[str, str]] = []

    def record(name: str, label: str, accuracy: Accuracy) -> None:
        low, high = accuracy.wilson_interval()
        values[name] = accuracy.value
        table.append((label, f"{accuracy.value:.3f} ({accuracy.correct}/{accuracy.total}; "
                             f"95% CI {low:.3f}–{high:.3f})"))

    record("arithmetic/greedy", "arithmetic accuracy, greedy", arithmetic_accuracy(model, tokenizer, n, seed, True))
    record("arithmetic/sampled", f"arithmetic accuracy, sampled τ={ARITHMETIC_TEMPERATURE}",
           arithmetic_accuracy(model, tokenizer, n, seed, False))
    for task_type, accuracy in proposal_valid_rates(model, tokenizer, n // 2, seed).items():
        record(f"azr/{task_type}/propose_valid", f"AZR {task_type} proposals valid, τ={AZR_TEMPERATURE}", accuracy)
    for task_type, accuracy in program_solve_rates(model, tokenizer, n // 2, seed).items():
        record(f"azr/{task_type}/solve", f"AZR {task_type} solve rate, τ={AZR_TEMPERATURE}", accuracy)
    for task_type, accuracy in program_solve_rates(model, tokenizer, n // 2, seed, greedy=True,
                                                   task_types=("deduction",)).items():
        record(f"azr/{task_type}/solve_greedy", f"AZR {task_type} solve rate, greedy", accuracy)
    return {"values": values, "table": table}
