"""Evaluation: accuracy with a confidence interval, pass@k, and the benchmarks of `selftaught eval`.

- `Accuracy`, `math_accuracy`: held-out accuracy of final answers (the demo's).
- `passk.pass_at_k`: the unbiased pass@k estimator.
- `benchmarks.load_benchmark`: gsm-symbolic, arith, humaneval, codeio, a JSONL file.
- `runner.evaluate`: the `selftaught eval` command (results.json, table).
- `humaneval.check_completion`, `code_reasoning`, `codeio`: the checkers, every
  model-written program run in `selftaught.executor.PythonExecutor`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..data import PromptRow
from ..rewards.math_answer import answers_match, extract_answer
from ..rollout import SelftaughtSampler


@dataclass
class Accuracy:
    correct: int
    total: int

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def wilson_interval(self, z: float = 1.96) -> tuple[float, float]:
        """95% Wilson score interval: honest at small n and near 0 or 1."""
        if not self.total:
            return 0.0, 1.0
        n, p = self.total, self.value
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def as_dict(self) -> dict:
        low, high = self.wilson_interval()
        return {"accuracy": self.value, "correct": self.correct, "n": self.total, "ci95": [low, high]}


def math_accuracy(sampler: SelftaughtSampler, rows: list[PromptRow], prompt_texts: list[str], greedy: bool = True,
                  batch_size: int = 64) -> Accuracy:
    """Fraction of rows whose extracted final answer matches the gold answer."""
    correct = 0
    for start in range(0, len(rows), batch_size):
        chunk = slice(start, start + batch_size)
        rollout = sampler.sample(prompt_texts[chunk], greedy=greedy)
        correct += sum(answers_match(extract_answer(text), row.answer)
                       for text, row in zip(rollout.completions, rows[chunk]))
    return Accuracy(correct, len(rows))
