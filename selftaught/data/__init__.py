"""Prompt data sets: rows of {"prompt": str, "answer": str | None}.

Sources: the built-in generators (`arithmetic`; `addition`, the task of the
`tiny-math` model), a JSONL file, or a Hugging Face data
set (by name, or a local directory saved with `save_to_disk`). Every bad input
ends in a UserError naming the file, line and fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from . import addition, arithmetic


@dataclass(frozen=True)
class PromptRow:
    prompt: str
    answer: str | None = None
    columns: dict = field(default_factory=dict, compare=False, hash=False)
    """The record's other fields as read (JSONL / HF rows), for user reward functions."""


def read_jsonl(path: Path, what: str = "data file"):
    """Yield (number, "path:number", record) for each non-blank line; UserError on a missing
    file or a line that is not JSON (named by file and line)."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            yield number, f"{path}:{number}", record


def _rows_from_jsonl(path: Path, prompt_field: str, answer_field: str) -> list[PromptRow]:
    return [_row(record, where, prompt_field, answer_field) for _, where, record in read_jsonl(path)]


def _row(record, where: str, prompt_field: str, answer_field: str) -> PromptRow:
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object with a {prompt_field!r} field")
    prompt = record.get(prompt_field)
    if not isinstance(prompt, str) or not prompt.strip():
        raise UserError(f"{where}: row has no non-empty string {prompt_field!r} field (keys: {sorted(record)})")
    answer = record.get(answer_field)
    columns = {key: value for key, value in record.items() if key != prompt_field}
    return PromptRow(prompt=prompt, answer=None if answer is None else str(answer), columns=columns)


def _rows_from_hf(source: str, split: str, prompt_field: str, answer_field: str) -> list[PromptRow]:
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"data source {source!r} is not a .jsonl file or a built-in generator; loading Hugging Face "
            "data sets needs `pip install datasets`"
        ) from None
    try:
        if Path(source).is_dir():
            loaded = datasets.load_from_disk(source)
            table = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            table = datasets.load_dataset(source, split=split)
    except Exception as error:  # network, missing split, bad name: all user-facing
        raise UserError(f"could not load data set {source!r} (split {split!r}): {error}".splitlines()[0]) from None
    return [_row(record, f"{source}[{i}]", prompt_field, answer_field) for i, record in enumerate(table)]


def load_rows(source: str, *, split: str = "train", prompt_field: str = "prompt", answer_field: str = "answer",
              num_examples: int = 2000, seed: int = 0, difficulty: int = 1) -> list[PromptRow]:
    """Load a prompt data set; raise UserError when it is missing, malformed or empty."""
    if source == "arithmetic":
        problems = arithmetic.generate(num_examples, split=split if split in arithmetic.SPLITS else "train",
                                       seed=seed, difficulty=difficulty)
        rows = [PromptRow(p.prompt, p.answer) for p in problems]
    elif source == "addition":
        if split not in addition.SPLITS:
            raise UserError(f"data.split {split!r} is not a split of the addition generator; "
                            f"choose one of {', '.join(addition.SPLITS)}")
        rows = [PromptRow(p.prompt, p.answer) for p in addition.generate(num_examples, split=split, seed=seed)]
    elif source.endswith(".jsonl"):
        rows = _rows_from_jsonl(Path(source), prompt_field, answer_field)
    else:
        rows = _rows_from_hf(source, split, prompt_field, answer_field)
    if not rows:
        raise UserError(f"data set {source!r} is empty: it needs at least one row with a {prompt_field!r}")
    return rows


def load_described_rows(data, *, seed: int = 0, num_examples: int | None = None) -> list[PromptRow]:
    """The rows a data-set description names (`config.DataConfig`: source, split, prompt and answer
    fields, size, difficulty), as train and diagnose read them (eval reads a benchmark file with the
    description's fields only). `num_examples` replaces the description's size (diagnose generates
    only the N rows it asks)."""
    return load_rows(data.source, split=data.split, prompt_field=data.prompt_field, answer_field=data.answer_field,
                     num_examples=num_examples or data.num_examples, seed=seed, difficulty=data.difficulty)


class PromptStream:
    """Endless, seeded, resumable stream of rows: a fresh permutation every epoch.

    Its whole state is one cursor, so a resumed run draws the same prompts as an
    uninterrupted one.
    """

    def __init__(self, rows: list[PromptRow], seed: int, shuffle: bool = True):
        self.rows, self.seed, self.shuffle = rows, seed, shuffle
        self.cursor = 0
        self._epoch_order: tuple[int, list[int]] = (-1, [])

    def _order(self, epoch: int) -> list[int]:
        import torch

        if self._epoch_order[0] != epoch:
            if self.shuffle:
                generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
                order = torch.randperm(len(self.rows), generator=generator).tolist()
            else:
                order = list(range(len(self.rows)))
            self._epoch_order = (epoch, order)
        return self._epoch_order[1]

    def take(self, n: int) -> list[PromptRow]:
        out = []
        while len(out) < n:
            epoch, index = divmod(self.cursor, len(self.rows))
            out.append(self.rows[self._order(epoch)[index]])
            self.cursor += 1
        return out

    def state_dict(self) -> dict:
        return {"cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.cursor = int(state["cursor"])
