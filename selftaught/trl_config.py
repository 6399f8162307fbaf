"""A TRL `GRPOConfig` as selftaught settings: `selftaught train --config recipe.yaml --trl-config grpo.json`.

TRL's config (as its own `GRPOConfig.to_dict()` writes it, JSON or YAML, or a hand-written subset)
brings the training settings; the `--config` recipe brings what it does not hold: the model, the
data and the rewards. Order: recipe < TRL config < `--set`. Every field present is one of:

- mapped: the same name and meaning in selftaught (`SAME_NAME`), or translated (`TRANSLATIONS`:
  TrainingArguments' output dir, seed, steps, schedule, bf16, use_cpu, report_to, save and logging
  intervals, and the fields whose spelling or form differs);
- accepted whatever its value: it is about something selftaught decides itself, such as device
  placement, data loading or log verbosity (`DECIDED_BY_SELFTAUGHT`, each with its reason);
- unsupported: at TRL's default (`trl_grpo_defaults.json`, TRL 1.16.0's declared defaults) it
  passes silently; set to anything else it is refused, every such field in one line (exit 2), or
  with `ignore_unsupported` left out with one warning line per field.

README "TRL recipes" lists the mapping; docs/reference.md §2.1 and §7.1 say where selftaught's
defaults differ from TRL's (they only matter for fields the file leaves out).
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .config import TrainConfig, apply_overrides, build_config, read_recipe, set_all_dotted
from .errors import UserError
from .trackers import TRACKERS

DEFAULTS_FILE = Path(__file__).resolve().parent / "trl_grpo_defaults.json"


@cache
def _defaults_table() -> dict:
    """DEFAULTS_FILE, read on first use: {"trl": version, "defaults": {...}} (scripts/write_trl_defaults.py)."""
    return json.loads(DEFAULTS_FILE.read_text())


def trl_version() -> str:
    """The TRL version whose GRPOConfig DEFAULTS_FILE describes."""
    return _defaults_table()["trl"]


def trl_defaults() -> dict[str, Any]:
    """Every field of TRL's GRPOConfig → its declared default (shared: do not modify)."""
    return _defaults_table()["defaults"]

SAME_NAME = (
    "seed", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
    "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations", "max_completion_length",
    "temperature", "top_p", "top_k", "beta", "epsilon", "delta", "num_iterations",
    "importance_sampling_level", "mask_truncated_completions", "top_entropy_quantile", "entropy_coef",
    "use_adaptive_entropy", "entropy_coef_min", "entropy_coef_max", "entropy_coef_delta", "entropy_target",
    "multi_objective_aggregation", "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos",
    "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg", "off_policy_mask_threshold", "use_bias_correction_kl",
    "vllm_importance_sampling_clip_min", "vllm_gpu_memory_utilization", "use_cpu", "run_name", "save_total_limit",
)
"""TRL fields that are selftaught config keys of the same name and meaning."""

DECIDED_BY_SELFTAUGHT = {
    **dict.fromkeys(("local_rank", "ddp_backend", "ddp_timeout", "ddp_find_unused_parameters", "ddp_bucket_cap_mb",
                     "ddp_broadcast_buffers", "ddp_static_graph", "accelerator_config", "dataloader_pin_memory",
                     "ds3_gather_for_generation"),
                    "processes and devices come from `accelerate launch` and selftaught (docs/scaling.md)"),
    **dict.fromkeys(("dataloader_num_workers", "dataloader_persistent_workers", "dataloader_prefetch_factor",
                     "dataloader_drop_last", "dataloader_in_order", "dataloader_multiprocessing_context",
                     "remove_unused_columns", "pad_to_multiple_of", "cache_implementation", "use_cache",
                     "average_tokens_across_devices", "include_num_input_tokens_seen", "length_column_name",
                     "label_names", "include_for_metrics", "do_train"),
                    "selftaught batches its prompts itself, passes every data column to reward functions and "
                    "normalises the loss by global token counts"),
    **dict.fromkeys(("log_level", "log_level_replica", "log_on_each_node", "logging_first_step",
                     "logging_nan_inf_filter", "skip_memory_metrics", "log_completions", "num_completions_to_print",
                     "log_unique_prompts", "log_multimodal", "logging_dir", "project", "hub_token"),
                    "selftaught writes metrics.jsonl and completions.jsonl every step and names the tracker "
                    "project itself"),
    **dict.fromkeys(("save_on_each_node", "save_only_model", "torch_empty_cache_steps", "overwrite_output_dir",
                     "restore_callback_states_from_checkpoint"),
                    "selftaught's checkpoints always hold what --resume needs, written by rank 0"),
}
"""TRL fields about something selftaught decides itself: accepted, whatever their value, with the reason."""


class Unsupported(Exception):
    """A field's value selftaught cannot honour; the message says why (and what to do instead)."""


class Deferred:
    """A setting that depends on the run length: computed once the recipe, the TRL config and the
    `--set` overrides are merged (`of(raw)`, raw being that merged config)."""

    def __init__(self, compute: Callable[[dict], Any]):
        self.compute = compute

    def of(self, raw: dict) -> Any:
        return self.compute(raw)


def _max_steps(raw: dict) -> int:
    return int(raw.get("max_steps", TrainConfig.model_fields["max_steps"].default))


def _steps(value, key: str) -> dict:
    """An interval in steps (an int) or, as TrainingArguments allows, a share of the run (a float < 1)."""
    if isinstance(value, float) and 0 < value < 1:
        return {key: Deferred(lambda raw: max(1, math.ceil(value * _max_steps(raw))))}
    return {key: int(value)}


def _output_dir(value, fields):
    return {} if value is None else {"output_dir": value}


def _max_steps_field(value, fields):
    return {"max_steps": int(value)} if value is not None and value > 0 else {}


def _num_train_epochs(value, fields):
    if (fields.get("max_steps") or -1) > 0:
        return {}  # TRL itself ignores the epochs then
    raise Unsupported("selftaught counts optimizer steps, not epochs; set max_steps")


def _scale_rewards(value, fields):
    return {"scale_rewards": {True: "group", False: "none"}.get(value, value)}


def _epsilon_high(value, fields):
    if value is None and fields.get("loss_type") == "cispo":  # TRL then caps CISPO's weight at epsilon
        value = fields.get("epsilon", trl_defaults()["epsilon"])
    return {"epsilon_high": value}


def _loss_type(value, fields):
    return {"loss_type": value, **(_epsilon_high(None, fields) if fields.get("epsilon_high") is None and
                                   value == "cispo" else {})}


def _lr_scheduler_type(value, fields):
    if value in ("linear", "cosine"):
        return {"lr_scheduler_type": value}
    if value == "constant":  # transformers' "constant" has no warm-up
        return {"lr_scheduler_type": "constant", "warmup_ratio": 0.0}
    if value == "constant_with_warmup":
        return {"lr_scheduler_type": "constant"}
    raise Unsupported("selftaught schedules linear, cosine and constant (with or without warm-up)")


def _no_kwargs(what: str):
    def check(value, fields):
        if value in (None, {}, ""):
            return {}
        raise Unsupported(f"selftaught takes no {what}")
    return check


def _warmup(value, fields):
    if fields.get("lr_scheduler_type") == "constant":
        return {}  # no warm-up there (see _lr_scheduler_type)
    if not value:
        return {"warmup_ratio": 0.0}
    if isinstance(value, float) and value < 1:  # a share of the run; transformers rounds the steps up
        return {"warmup_ratio": Deferred(lambda raw: math.ceil(value * _max_steps(raw)) / _max_steps(raw))}
    return {"warmup_ratio": Deferred(lambda raw: int(value) / _max_steps(raw))}


def _bf16(value, fields):
    return {"bf16": not fields.get("fp16", False) if value is None else bool(value)}  # TRL: None = not fp16


def _fp16(value, fields):
    if value:
        raise Unsupported("selftaught has bf16 autocast (bf16) or fp32, not fp16 mixed precision")
    return {}


def _checkpointing(value, fields):
    chosen = fields.get("activation_checkpointing")  # transformers ≥ 5.2x's name wins when set
    chosen = value if chosen is None else chosen
    return {} if chosen is None else {"gradient_checkpointing": bool(chosen)}


def _checkpointing_kwargs(value, fields):
    if value in (None, {}) or value == {"use_reentrant": False}:
        return {}
    raise Unsupported("selftaught's gradient checkpointing is non-reentrant and takes no other options")


def _save_strategy(value, fields):
    if value == "steps":
        return {}
    if value == "no":  # selftaught always writes the final checkpoint; nothing before it
        return {"save_steps": Deferred(_max_steps)}
    raise Unsupported("selftaught saves every save_steps optimizer steps (and at the end)")


def _save_steps(value, fields):
    return _steps(value, "save_steps") if fields.get("save_strategy", "steps") == "steps" else {}


def _logging_strategy(value, fields):
    if value == "steps":
        return {}
    if value == "no":
        return {"log_every": 0}
    raise Unsupported("selftaught logs every optimizer step to metrics.jsonl and a line every log_every steps")


def _logging_steps(value, fields):
    return _steps(value, "log_every") if fields.get("logging_strategy", "steps") == "steps" else {}


def _report_to(value, fields):
    names = [value] if isinstance(value, str) else list(value or [])
    if names == ["all"]:
        return {}  # selftaught's default: tensorboard when installed
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise Unsupported(f"selftaught reports to {', '.join(TRACKERS)} (not {', '.join(unknown)})")
    return {"report_to": names or ["none"]}


def _disable_tqdm(value, fields):
    return {"progress_bar": False} if value else {}


def _model_init_kwargs(value, fields):
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else None
    if not value:
        return {}
    others = sorted(set(value) - {"dtype", "torch_dtype"})
    if others:
        raise Unsupported(f"selftaught loads the model itself; of these only dtype maps (not {', '.join(others)})")
    dtype = str(value.get("dtype", value.get("torch_dtype"))).removeprefix("torch.")
    return {"model.dtype": dtype}


def _use_vllm(value, fields):
    return {"rollout_backend": "vllm" if value else "selftaught"}


def _vllm_mode(value, fields):
    if value == "colocate":
        return {}
    raise Unsupported("selftaught's vLLM engine is colocated; server mode is designed in docs/scaling.md, not built")


def _vllm_correction(value, fields):
    return {"vllm_importance_sampling_correction": bool(value)}


def _vllm_mode_field(value, fields):
    if fields.get("vllm_importance_sampling_correction", True) is False:
        return {}  # TRL ignores the mode then; selftaught's config would call it a contradiction
    return {"vllm_importance_sampling_mode": value}


def _vllm_clip_max(value, fields):
    cap = fields.get("vllm_importance_sampling_cap")  # TRL's deprecated name overrides clip_max
    value = cap if cap is not None else value
    return {"vllm_importance_sampling_clip_max": math.inf if value is None else value}


def _steps_per_generation(value, fields):
    accumulation = fields.get("gradient_accumulation_steps", trl_defaults()["gradient_accumulation_steps"])
    if value is None or value == accumulation:
        return {}
    raise Unsupported(f"TRL would split one generation batch over {value // accumulation or 1} optimizer steps; "
                      "selftaught generates once per optimizer step (steps_per_generation = "
                      "gradient_accumulation_steps)")


def _generation_batch_size(value, fields):
    if value is None or fields.get("steps_per_generation") is not None:
        return {}  # then steps_per_generation says it (checked there)
    per_step = (fields.get("per_device_train_batch_size", trl_defaults()["per_device_train_batch_size"])
                * fields.get("gradient_accumulation_steps", trl_defaults()["gradient_accumulation_steps"]))
    if value == per_step:  # one process: one generation batch per optimizer step
        return {}
    raise Unsupported(f"TRL's generation batch of {value} is not one optimizer step's {per_step} completions; "
                      "selftaught generates once per optimizer step (its own generation_batch_size is a "
                      "memory bound on one generate call)")


def _optim(value, fields):
    if value in ("adamw_torch", "adamw_torch_fused"):
        return {}
    raise Unsupported("selftaught's optimizer is torch's AdamW (adamw_torch)")


def _debug(value, fields):
    if value in ("", [], None):
        return {}
    raise Unsupported("selftaught has no debug modes")


TRANSLATIONS: dict[str, Callable[[Any, Mapping], dict]] = {
    "output_dir": _output_dir, "max_steps": _max_steps_field, "num_train_epochs": _num_train_epochs,
    "scale_rewards": _scale_rewards, "epsilon_high": _epsilon_high, "loss_type": _loss_type,
    "lr_scheduler_type": _lr_scheduler_type, "lr_scheduler_kwargs": _no_kwargs("scheduler options"),
    "warmup_steps": _warmup, "warmup_ratio": _warmup, "bf16": _bf16, "fp16": _fp16,
    "gradient_checkpointing": _checkpointing, "activation_checkpointing": _checkpointing,
    "gradient_checkpointing_kwargs": _checkpointing_kwargs, "activation_checkpointing_kwargs": _checkpointing_kwargs,
    "save_strategy": _save_strategy, "save_steps": _save_steps,
    "logging_strategy": _logging_strategy, "logging_steps": _logging_steps,
    "report_to": _report_to, "disable_tqdm": _disable_tqdm,
    "trust_remote_code": lambda value, fields: {"model.trust_remote_code": bool(value)},
    "shuffle_dataset": lambda value, fields: {"data.shuffle": bool(value)},
    "model_init_kwargs": _model_init_kwargs,
    "use_vllm": _use_vllm, "vllm_mode": _vllm_mode,
    "vllm_importance_sampling_correction": _vllm_correction, "vllm_importance_sampling_mode": _vllm_mode_field,
    "vllm_importance_sampling_clip_max": _vllm_clip_max,
    "vllm_importance_sampling_cap": lambda value, fields: {},  # read by _vllm_clip_max
    "steps_per_generation": _steps_per_generation, "generation_batch_size": _generation_batch_size,
    "optim": _optim, "optim_args": _no_kwargs("optimizer options"), "debug": _debug,
    **{name: (lambda key: lambda value, fields: {key: value})(name) for name in SAME_NAME},
}
"""TRL field → its selftaught settings (dotted keys; a `Deferred` value waits for the run length)."""


def _is_default(name: str, value) -> bool:
    empty = (None, "", [], {})
    default = trl_defaults()[name]
    return value == default or (value in empty and default in empty)


def translate(fields: Mapping[str, Any]) -> tuple[dict, list[tuple[str, Any, str]]]:
    """(selftaught settings, unsupported fields) of TRL config `fields`.

    Settings are dotted keys (`model.dtype`) → values or `Deferred`s. Unsupported fields come as
    (name, value, reason); fields at TRL's default are never among them."""
    settings, unsupported = {}, []
    for name, value in fields.items():
        if name in DECIDED_BY_SELFTAUGHT:
            continue
        if name in TRANSLATIONS:
            try:
                settings.update(TRANSLATIONS[name](value, fields))
            except Unsupported as reason:
                if not _is_default(name, value):
                    unsupported.append((name, value, str(reason)))
        elif name not in trl_defaults():
            unsupported.append((name, value, f"not a field of TRL {trl_version()}'s GRPOConfig (model, data and "
                                              "rewards come from the --config recipe)"))
        elif not _is_default(name, value):
            unsupported.append((name, value, "not supported by selftaught"))
    return settings, unsupported


def read_trl_config(source) -> dict:
    """A TRL config as a plain dict: a `.json` / `.yaml` / `.yml` file, a mapping (`GRPOConfig.to_dict()`),
    or anything with a `to_dict()` (a `GRPOConfig`)."""
    if hasattr(source, "to_dict"):
        return dict(source.to_dict())
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise UserError(f"--trl-config: file not found: {path}")
    try:
        fields = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise UserError(f"--trl-config {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} "
                        f"({str(error).splitlines()[0]})") from None
    if not isinstance(fields, dict):
        raise UserError(f"--trl-config {path}: expected a mapping of GRPOConfig fields to values")
    return fields


def _describe(field: tuple[str, Any, str]) -> str:
    name, value, reason = field
    return f"{name}={value!r} ({reason})"


def from_trl_config(trl_config, recipe=None, overrides=(), ignore_unsupported: bool = False,
                    warn: Callable[[str], None] | None = None) -> TrainConfig:
    """The TrainConfig of TRL config `trl_config` (a file, a dict or a GRPOConfig; `read_trl_config`) on top
    of `recipe` (a YAML path, a raw dict, or None for selftaught's defaults), then `overrides` ("key=value",
    as `--set`).

    A field selftaught does not support, set to anything but TRL's default, is a UserError naming every such
    field in one line; with `ignore_unsupported` each is left out with one `warn` line instead (default:
    `selftaught: warning: ...` on stderr)."""
    fields = read_trl_config(trl_config)
    settings, unsupported = translate(fields)
    if unsupported and not ignore_unsupported:
        raise UserError(f"--trl-config: {len(unsupported)} field(s) selftaught does not support are set: "
                        f"{'; '.join(_describe(f) for f in unsupported)}. Change them, or pass "
                        "--ignore-unsupported to train without them")
    warn = warn or (lambda line: print(f"selftaught: warning: {line}", file=sys.stderr, flush=True))
    for field in unsupported:
        warn(f"--trl-config: ignoring {_describe(field)}")
    raw = copy.deepcopy(dict(recipe)) if isinstance(recipe, Mapping) else (read_recipe(recipe) if recipe else {})
    set_all_dotted(raw, {key: value for key, value in settings.items() if not isinstance(value, Deferred)})
    raw = apply_overrides(raw, list(overrides))
    overridden = {item.split("=", 1)[0].strip() for item in overrides}
    set_all_dotted(raw, {key: value.of(raw) for key, value in settings.items()
                         if isinstance(value, Deferred) and key not in overridden})
    return build_config(raw)
