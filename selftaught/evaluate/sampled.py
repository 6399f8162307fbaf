"""Sampled accuracy of a model on problems with gold answers: pass@1, pass@k,
majority@k and greedy, with 95% intervals.

What RL changes is the *sampled* behaviour: it moves pass@1 toward pass@k. So the
demo and the model card measure k samples per problem at the recipe's temperature
and report

- pass@1: the mean over problems of c_i / k (the unbiased pass@1);
- pass@k: the share of problems with at least one right sample;
- majority@k: the share whose most common extracted answer is right (ties: the
  answer seen first wins, `majority_answer`);
- greedy: one temperature-0 completion per problem.

Intervals are 95% percentile-bootstrap intervals over problems (seeded), the unit
that was sampled: k samples of one problem are not independent draws.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ..data import PromptRow
from ..rewards.math_answer import answers_match, extract_answer
from ..rollout import Sampler


def bootstrap_interval(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of `values` (one per problem)."""
    if not values:
        return 0.0, 1.0
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


def figure(values: list[float]) -> dict:
    """{'accuracy', 'n', 'ci95'} of per-problem values in [0, 1]."""
    mean = sum(values) / len(values) if values else 0.0
    return {"accuracy": mean, "n": len(values), "ci95": list(bootstrap_interval(values))}


def majority_answer(answers: list[str | None]) -> str | None:
    """The most common extracted answer (None = no answer is never the majority); ties go to
    the one that appears first."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == top)


@dataclass
class SampledEvaluation:
    """k completions per problem (problem-major) and whether each is right."""

    completions: list[list[str]]
    correct: list[list[bool]]
    greedy_completions: list[str]
    greedy_correct: list[bool]
    majority_correct: list[bool]

    def figures(self) -> dict:
        k = len(self.correct[0]) if self.correct else 0
        return {
            "pass@1": figure([sum(c) / len(c) for c in self.correct]),
            f"pass@{k}": figure([float(any(c)) for c in self.correct]),
            f"majority@{k}": figure([float(m) for m in self.majority_correct]),
            "greedy": figure([float(g) for g in self.greedy_correct]),
        }

    def share(self, predicate) -> dict:
        """Per-problem share of sampled completions for which `predicate(text)` holds."""
        return figure([sum(map(predicate, texts)) / len(texts) for texts in self.completions])


def sampled_evaluation(sampler: Sampler, rows: list[PromptRow], prompt_texts: list[str], samples: int = 8,
                       prompts_per_batch: int = 32) -> SampledEvaluation:
    """Sample `samples` completions and one greedy completion for every row."""
    completions, correct, greedy_texts, greedy_correct, majority = [], [], [], [], []
    for start in range(0, len(rows), prompts_per_batch):
        batch_rows = rows[start:start + prompts_per_batch]
        texts = prompt_texts[start:start + prompts_per_batch]
        sampled = sampler.sample(texts, num_generations=samples).completions
        greedy = sampler.sample(texts, greedy=True).completions
        for i, row in enumerate(batch_rows):
            group = sampled[i * samples:(i + 1) * samples]
            answers = [extract_answer(text) for text in group]
            completions.append(group)
            correct.append([answers_match(a, row.answer) for a in answers])
            greedy_texts.append(greedy[i])
            greedy_correct.append(answers_match(extract_answer(greedy[i]), row.answer))
            majority.append(answers_match(majority_answer(answers), row.answer))
    return SampledEvaluation(completions, correct, greedy_texts, greedy_correct, majority)
