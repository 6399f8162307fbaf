"""Typed settings of `selftaught eval` (`evaluate()`), validated in one place like training's
`TrainConfig`: a bad value or an unknown key is one line naming the flag (exit 2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ..config import DataConfig
from ..errors import UserError
from ..strict import Strict
from .benchmarks import NAMES

DEFAULT_SAMPLING_TEMPERATURE = 0.8  # when --samples > 1 and no temperature is given (Codex's pass@k setting)
FLAGS = {"benchmarks": "--benchmark", "use_chat_template": "--chat-template", "data": "--config"}
"""Settings whose command-line flag is not `--` + the name with dashes."""


def flag(name: str) -> str:
    """The `selftaught eval` flag of setting `name`."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


class EvalConfig(Strict):
    model: str
    """A built-in name, a hub id, a model directory, a .gguf file or a training checkpoint."""
    benchmarks: list[str]
    """Built-in names (`benchmarks.NAMES`) or .jsonl files; a comma-separated string splits."""
    limit: int | None = Field(None, ge=1)
    """Only the first N items of each benchmark; None = all."""
    samples: int = Field(1, ge=1)
    """Completions per item K (pass@1..K)."""
    temperature: float | None = Field(None, ge=0)
    """0 = greedy; None = greedy with one sample, DEFAULT_SAMPLING_TEMPERATURE with more."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling (1.0 = off)."""
    max_new_tokens: int | None = Field(None, ge=1)
    """None = per benchmark (128 to 512)."""
    batch_size: int = Field(16, ge=1)
    """Completions per generate call."""
    seed: int = 0
    """Seeds the sampling."""
    output_dir: str | None = "runs/eval"
    """results.json goes here; None = nothing written."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """The model's dtype when loaded."""
    use_chat_template: Literal["auto", "always", "never"] = "auto"
    """`auto`: the tokenizer's chat template when it has one; `always`/`never` force it. Unset
    with `data`: `data.use_chat_template`, the choice the model was trained with."""
    data: DataConfig | None = None
    """A training recipe's data-set description (`--config`: its `data` section). A .jsonl math
    benchmark's rows are read with its `prompt_field` and `answer_field` and asked in its format
    (`prompt_template`, `system_prompt`, `use_chat_template`), as train asks them; its source,
    split and size are not used (the benchmarks name the data). None: rows `{prompt, answer}`
    asked with the eval's math instruction."""
    max_prompt_length: int = Field(2048, ge=1)
    """Prompt tokens kept (left-truncated)."""
    executor_workers: int = Field(2, ge=1)
    """Executor processes for program benchmarks."""
    log_every: int = Field(1, ge=0)
    """A progress line on stderr every N generate batches; 0 = none."""

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [b.strip() for name in value for b in name.split(",") if b.strip()]
        return value

    @field_validator("benchmarks")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one benchmark")
        for name in value:
            if not name.endswith(".jsonl") and name not in NAMES:
                raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(NAMES)} or a .jsonl file")
        return value

    @model_validator(mode="after")
    def _recipe_chat_template(self) -> "EvalConfig":
        if self.data is not None and "use_chat_template" not in self.model_fields_set:
            self.use_chat_template = self.data.use_chat_template
        return self

    @model_validator(mode="after")
    def _sampling(self) -> "EvalConfig":
        if self.temperature is None:
            self.temperature = 0.0 if self.samples == 1 else DEFAULT_SAMPLING_TEMPERATURE
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("--samples > 1 needs --temperature > 0 (greedy samples are all the same)")
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "extra_forbidden":
        return f"eval: unknown setting {name!r}; valid: {', '.join(EvalConfig.model_fields)}"
    if first["type"] == "missing":
        return f"eval: {flag(name)} is required"
    if first["type"] in ("greater_than_equal", "greater_than", "less_than_equal"):
        bound = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most"}
        limit = next(iter(first["ctx"].values()))
        return f"eval: {flag(name)} must be {bound[first['type']]} {limit}, got {first['input']}"
    message = first["msg"].removeprefix("Value error, ")
    return f"eval: {flag(name)}: {message}" if name else f"eval: {message}"


def eval_config(**settings: Any) -> EvalConfig:
    """An EvalConfig from keyword settings (the CLI's flags, `evaluate()`'s arguments)."""
    try:
        return EvalConfig.model_validate(settings)
    except ValidationError as error:
        raise UserError(_describe(error)) from None
