"""Typed run configuration, validated with clear one-line messages.

Names follow TRL's GRPOConfig where one exists (`num_generations`, `beta`,
`epsilon`, `loss_type`, `scale_rewards`, `max_completion_length`, ...), so users
of TRL can read a recipe without a glossary. A config is plain data: YAML on disk,
`--set key=value` overrides on the command line, dotted for nested keys.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .azr.config import AZRConfig
from .errors import UserError
from .strict import Strict
from .variants import LOSS_TYPES, Correction, resolve_correction
from .trackers import TRACKERS, default_report_to


class ModelConfig(Strict):
    name_or_path: str = "tiny-random"
    """`tiny-random` (built on the fly), a local HF directory or checkpoint, a
    `.gguf` file, or a hub id (needs network)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype. `auto`: float32 master weights (bf16 compute comes from
    `bf16`)."""
    trust_remote_code: bool = False
    """Let transformers run the model repository's own code (hub models that need it)."""


class DataConfig(Strict):
    source: str = "arithmetic"
    """`arithmetic` (built-in generator), a `.jsonl` file with `prompt` and optional
    `answer`, or a Hugging Face dataset name or local dataset directory."""
    split: str = "train"
    """The split of a built-in generator, or of a Hugging Face data set, to train on."""
    prompt_field: str = "prompt"
    """The row field that holds the prompt (JSONL and Hugging Face sources)."""
    answer_field: str = "answer"
    """The row field that holds the gold answer (optional: label-free rewards need none)."""
    num_examples: int = Field(2000, ge=1)
    """Size of a generated data set (built-in generators only)."""
    difficulty: int = Field(1, ge=1, le=5)
    """Operand size / number of steps for the built-in arithmetic generator."""
    system_prompt: str | None = None
    """A system message put before every prompt when the chat template is used."""
    prompt_template: str = "{prompt}\n"
    """How a row's prompt becomes the user message; `{prompt}` is replaced. Without
    a chat template this is the model's whole context, so end it where the answer
    should start."""
    use_chat_template: Literal["auto", "always", "never"] = "auto"
    """`auto`: the tokenizer's chat template when it has one; `always`/`never` force it."""
    shuffle: bool = True
    """Draw prompts in a seeded random order (false: file order)."""


class RewardSpec(Strict):
    name: str
    """A built-in source (a key of `selftaught.rewards.REWARDS`: self_certainty, math_answer,
    majority_vote, answer_agreement, token_entropy, trajectory_logprob) or a user function,
    `package.module:function` or `path/to/file.py:function` (docs/rewards.md)."""
    weight: float = 1.0
    """Weight of this source's group-normalised advantage; 0 = logged only."""
    mode: Literal["online", "offline"] = "online"
    """self_certainty only. `online` scores with the current policy (the paper's
    default; offline is reward-hacked within ~100 steps and exists for ablation)."""
    answer_only: bool = False
    """Sources that accept it (token_entropy): average over the final answer's tokens, not the whole
    completion."""

    @model_validator(mode="after")
    def _check_name(self) -> "RewardSpec":
        from .rewards import REWARDS, is_user_function, reward_class
        from .rewards.user import split_user_function

        if is_user_function(self.name):
            try:
                split_user_function(self.name)
            except UserError as error:
                raise ValueError(str(error)) from None
        elif self.name not in REWARDS:
            close = difflib.get_close_matches(self.name, list(REWARDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown reward {self.name!r}{hint}; built-in: {', '.join(REWARDS)}, or a user "
                             "function 'package.module:function' / 'path/to/file.py:function'")
        if self.answer_only and not reward_class(self.name).accepts_answer_only:
            takers = [name for name, source in REWARDS.items() if source.accepts_answer_only]
            raise ValueError(f"answer_only applies to {', '.join(takers)} only, not {self.name!r}")
        return self


class LoraSettings(Strict):
    """PEFT LoRA (`pip install peft`, or the `lora` extra). Only the adapter trains;
    with β > 0 the reference is the same model with the adapter disabled."""
    r: int = Field(8, ge=1)
    """LoRA rank."""
    alpha: float = Field(16.0, gt=0)
    """LoRA scaling α (the update is scaled by α / r)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the LoRA branch's input."""
    target_modules: list[str] | Literal["all-linear"] = ["q_proj", "v_proj"]
    """Module names (suffixes) to adapt, or `all-linear` (every linear layer but the output head)."""

    @model_validator(mode="after")
    def _check_targets(self) -> "LoraSettings":
        if isinstance(self.target_modules, list) and not self.target_modules:
            raise ValueError("lora.target_modules is empty; name modules such as [q_proj, v_proj] or use all-linear")
        return self


class TrainConfig(Strict):
    method: Literal["intuitor", "grpo", "azr"] = "intuitor"
    """intuitor / grpo: data-set prompts; default rewards when `rewards` is empty:
    intuitor = self-certainty, grpo = math_answer (the other is logged with weight 0).
    azr: Absolute Zero self-play (settings in `azr`; `data` and `rewards` unused)."""
    output_dir: str = "runs/intuitor"
    """Where checkpoints, metrics.jsonl, completions.jsonl and the final model go."""
    seed: int = 0
    """Seeds data order, sampling and initialisation (one run repeats on one machine)."""
    max_steps: int = Field(20, ge=1)
    """Optimizer steps."""

    model: ModelConfig = ModelConfig()
    """The policy: `model.name_or_path` (a built-in name, a local directory, a `.gguf` file or a hub id) and its
    dtype."""
    data: DataConfig = DataConfig()
    """The prompt source (a built-in generator, a JSONL file or a Hugging Face data set) and its template."""
    rewards: list[RewardSpec] = []
    """Reward sources `{name, weight, mode: online | offline}`: `name` is a built-in (`self_certainty`,
    `math_answer`, `majority_vote`, `answer_agreement`, `token_entropy`, `trajectory_logprob`, `random`) or a
    user function `module:function` / `file.py:function` (README, "Label-free rewards"); each source is
    group-normalised separately and the weighted advantages are summed; weight 0 = logged only. Empty: the
    method's default."""
    azr: AZRConfig = AZRConfig()
    """Absolute Zero's settings (used when `method: azr`)."""
    lora: LoraSettings | None = None
    """None: train every weight. A mapping (`lora: {r: 8}`, or `--set lora.r=8`): LoRA."""

    # Batch geometry (TRL semantics): completions per optimizer step =
    # per_device_train_batch_size × gradient_accumulation_steps × processes. Each
    # process's part (the first two factors) must split into whole groups of
    # num_generations, so a group never spans two processes. (AZR: the global batch
    # is azr.tasks_per_type_role per type and role, split over the processes.)
    per_device_train_batch_size: int = Field(8, ge=1)
    """Completions per micro-batch (scoring and update) on each process (TRL's name)."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Micro-batches per optimizer step; completions per step = this × per_device_train_batch_size × processes, a
    multiple of num_generations."""
    num_generations: int = Field(4, ge=2)
    """G, completions sampled per prompt: the group GRPO normalises within (GRPO, DeepSeekMath)."""
    generation_batch_size: int | None = Field(None, ge=1)
    """Completions generated per `generate` call (memory bound); None = all."""

    # Sampling
    max_prompt_length: int = Field(256, ge=1)
    """Prompt tokens kept (left-truncated)."""
    max_completion_length: int = Field(64, ge=1)
    """Tokens generated per completion at most."""
    temperature: float = Field(0.9, gt=0)
    """τ for sampling, and for the log-probs, entropy and self-certainty computed from the same logits."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling (1.0 = off)."""
    top_k: int = Field(0, ge=0)
    """0 = no top-k truncation (the sampled distribution is the scored one)."""
    rollout_backend: Literal["selftaught", "vllm"] = "selftaught"
    """Who samples the completions: `selftaught` (our decoding loop) or `vllm` (a vLLM
    engine in the training process, weights synced in place after the optimizer
    steps; needs `make setup-vllm`, see README "vLLM rollout backend")."""
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    """vllm: fraction of the GPU's memory vLLM may take (weights + KV cache); the rest
    is the trainer's. On a CPU the KV cache is VLLM_CPU_KVCACHE_SPACE GiB (default 1 here)."""
    vllm_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """vllm: the engine's dtype. `auto`: bfloat16 when the trainer computes in bf16, else float32."""
    vllm_importance_sampling_correction: Literal["none", "token", "sequence"] | bool = "token"
    """vllm: weigh the policy term by π_old / π_vllm of the sampled tokens (TRL's importance
    sampling correction, docs/reference.md §7): `token` (default) = token_truncate, `sequence` =
    sequence_truncate, `none`/false off, true = on in `vllm_importance_sampling_mode`."""
    vllm_importance_sampling_mode: Literal["token_truncate", "token_mask", "sequence_truncate",
                                           "sequence_mask"] | None = None
    """vllm: TRL's four forms, per token or per sequence, clamped to [C_min, C_max] (truncate) or
    zeroed outside it (mask). None: the correction's own (token_truncate; TRL's default is sequence_mask)."""
    vllm_importance_sampling_clip_min: float | None = Field(None, ge=0)
    """vllm: C_min; None = no lower bound."""
    vllm_importance_sampling_clip_max: float | None = Field(None, gt=0)
    """vllm: C_max (`.inf`: none); None = `vllm_importance_sampling_cap`."""
    vllm_importance_sampling_cap: float = Field(2.0, ge=1)
    """vllm: C_max when `vllm_importance_sampling_clip_max` is unset (TRL's deprecated name; TRL's C_max is 3.0)."""

    # GRPO objective (docs/reference.md §2)
    beta: float = Field(0.0, ge=0)
    """β of the k3 KL penalty to the frozen initial model (GRPO, DeepSeekMath); 0 loads no reference model."""
    epsilon: float = Field(0.2, gt=0)
    """ε of the clipped surrogate, the ratio clipped to [1 − ε, 1 + ε_high] (PPO)."""
    epsilon_high: float | None = Field(None, gt=0)
    """ε_high of the clip (None = epsilon; DAPO's clip-higher: 0.28). With `loss_type: cispo`, the
    cap ε_max of CISPO's weight (ScaleRL recommends 5.0)."""
    delta: float | None = Field(None, gt=1)
    """Two-sided clipping (INTELLECT-2): the ratio of negative-advantage tokens is also capped at δ
    (> 1; recommended > 1 + ε). None: off."""
    loss_type: str = "token_mean"
    """Objective and aggregation (§2.1, §2.2): token_mean (= TRL's dapo), seq_mean (= grpo), dr_grpo,
    and TRL's grpo, bnpo, dapo, cispo, sapo, luspo, vespo. TRL's default is dapo."""
    importance_sampling_level: Literal["token", "sequence"] = "token"
    """The PPO ratio per token, or GSPO's one per sequence (the geometric mean of its token ratios)."""
    sapo_temperature_pos: float = Field(1.0, gt=0)
    """sapo: the gate's temperature τ for tokens with A > 0."""
    sapo_temperature_neg: float = Field(1.05, gt=0)
    """sapo: τ for tokens with A ≤ 0."""
    vespo_k_pos: float = Field(2.0, ge=0)
    """vespo: the power k of φ(w) for A ≥ 0 (down-weights w < 1)."""
    vespo_lambda_pos: float = Field(3.0, ge=0)
    """vespo: the decay λ of φ(w) for A ≥ 0 (down-weights w > 1)."""
    vespo_k_neg: float = Field(3.0, ge=0)
    """vespo: k for A < 0."""
    vespo_lambda_neg: float = Field(2.0, ge=0)
    """vespo: λ for A < 0."""
    use_bias_correction_kl: bool = False
    """Multiply the k3 KL term by the ratio ρ (DeepSeek-V3.2's unbiased KL gradient); TRL's default is true."""
    mask_truncated_completions: bool = False
    """Completions that hit max_completion_length without an EOS leave the loss (DAPO); their
    rewards still count in their group."""
    top_entropy_quantile: float = Field(1.0, ge=0, le=1)
    """ρ of "Beyond the 80/20 rule": only the top-ρ share of tokens by entropy (per micro-batch, over
    every process, as TRL) enter the policy term; 1.0 = all, the paper uses 0.2."""
    off_policy_mask_threshold: float | None = Field(None, ge=0)
    """DeepSeek-V3.2's off-policy sequence mask: a row with A < 0 whose mean log π_sampler − log π_θ
    exceeds δ leaves the policy term. None: off."""
    entropy_coef: float = Field(0.0, ge=0)
    """Entropy bonus c: loss −= c · mean_t H(p_t) (per micro-batch, as TRL): a guard against the entropy
    collapse label-free rewards drive. The initial c when adaptive."""
    use_adaptive_entropy: bool = False
    """Skywork-OR1's adaptive c: +entropy_coef_delta after a step whose entropy is ≤ entropy_target,
    −entropy_coef_delta otherwise; the bonus applies only while the entropy is ≤ the target."""
    entropy_coef_min: float = Field(0.0, ge=0)
    """Adaptive entropy coefficient's floor (Skywork-OR1)."""
    entropy_coef_max: float = Field(1.0, ge=0)
    """Adaptive entropy coefficient's ceiling (Skywork-OR1)."""
    entropy_coef_delta: float = Field(0.005, ge=0)
    """Adaptive entropy coefficient's step per optimizer step (Skywork-OR1)."""
    entropy_target: float = Field(0.2, ge=0)
    """Nats per token, over the bonus's tokens; set it near the entropy seen early in training."""
    multi_objective_aggregation: Literal["per_source", "sum_then_normalize", "normalize_then_sum"] = "per_source"
    """Several reward sources (§2.8): `per_source` normalises each in its group, then sums the
    weighted advantages (Intuitor's code); TRL's `sum_then_normalize` (its default) normalises the
    weighted sum; `normalize_then_sum` (GDPO) z-scores each, sums, then normalises over the batch."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Advantage scaling: `group` (divide by the group's std, GRPO), `batch` (the batch's std), `none` (Dr. GRPO)."""
    advantage_epsilon: float = Field(1e-4, gt=0)
    """ε in (r − mean) / (std + ε); std unbiased (TRL's choice)."""
    num_iterations: int = Field(1, ge=1)
    """μ: optimizer steps per rollout batch (GRPO's inner iterations; ratios leave 1 from the second)."""

    # Optimisation
    learning_rate: float = Field(1e-5, gt=0)
    """AdamW's peak learning rate."""
    lr_scheduler_type: Literal["cosine", "constant", "linear"] = "cosine"
    """After `warmup_ratio` of the steps' linear warm-up: cosine decay to 0, constant, or linear decay to 0."""
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    """Share of the steps with a linear warm-up from 0."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW's decoupled weight decay."""
    adam_beta1: float = 0.9
    """AdamW β1."""
    adam_beta2: float = 0.999
    """AdamW β2."""
    adam_epsilon: float = 1e-8
    """AdamW ε."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradients are clipped to this global norm."""
    bf16: Literal["auto", True, False] = "auto"
    """bf16 autocast over fp32 weights: `auto` = when the accelerator supports it."""
    use_cpu: bool = False
    """Train on the CPU even when an accelerator is present (TRL's key); false: accelerate decides."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward (non-reentrant):
    less memory for longer completions, one extra forward's compute."""
    logits_chunk_size: int | None = Field(None, ge=1)
    """Rows of logits handled at once in fp32 (log-probs, self-certainty). None (default):
    from a 64 MiB fp32 budget, rows = 64 MiB / (V · 4 bytes) (110 at V = 151,936), and on the
    fused path at least H / 4 rows (a chunk up to a quarter of the fp32 weight gradient: 384 at
    Qwen2.5-1.5B's H = 1536), where fewer rows made the backward's ∂W sweeps dominate."""
    fused_logprobs: bool = True
    """Log-probs and self-certainty from the lm_head's input, chunk by chunk, never
    holding [B, T, V] logits; false = the model's logits, then the chunked ops."""

    # Robustness and output
    max_consecutive_bad_steps: int = Field(3, ge=1)
    """Non-finite loss or gradient skips the update; this many in a row stops."""
    save_steps: int = Field(10, ge=1)
    """A checkpoint every this many steps (and at the end)."""
    save_total_limit: int | None = Field(3, ge=1)
    """Checkpoints kept (oldest removed); None = all."""
    completion_tags: dict[str, str] = {}
    """name → regular expression matched at a completion's start (leading spaces ignored): the share
    of each step's completions it matches is logged as `tags/<name>/share` (AZR: per task type and
    role, `azr/<type>/<role>/tags/<name>`). For watching a behaviour RL should select, e.g.
    `procedure: "Step by step:"`."""
    log_completions: int = Field(2, ge=0)
    """Completions written to `completions.jsonl` per step."""
    progress_bar: bool = True
    """On a terminal, the progress bar; false (or `--quiet`) turns it off."""
    log_every: int = Field(10, ge=0)
    """When stdout is not a terminal (a log file, a pipe): one plain line every N steps
    (and at the last step) instead of bar frames; 0 = none."""
    report_to: list[Literal[(*TRACKERS, "none")]] = Field(
        default_factory=default_report_to)
    """Experiment trackers that receive every metrics row, the config and the sampled
    completions (TRL's key): default `[tensorboard]` when it is installed, else none;
    `none` = only the files in output_dir."""
    run_name: str | None = None
    """The run's name in the trackers; default: the name of `output_dir`."""

    @field_validator("loss_type", mode="before")
    @classmethod
    def _registered_loss_type(cls, value):
        """One of `variants.LOSS_TYPES`, read when validating (a registered loss type counts), worded as
        pydantic words a Literal's error."""
        if not isinstance(value, str) or value not in LOSS_TYPES:
            *names, last = (repr(name) for name in LOSS_TYPES)
            raise ValueError(f"Input should be {', '.join(names)} or {last}")
        return value

    @field_validator("completion_tags")
    @classmethod
    def _tags_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"completion_tags.{name}: {pattern!r} is not a regular expression ({error})") from None
        return value

    @field_validator("report_to", mode="before")
    @classmethod
    def _report_to_list(cls, value):
        return [value] if isinstance(value, str) else value  # `--set report_to=wandb`

    @field_validator("report_to")
    @classmethod
    def _report_to_none(cls, value: list[str]) -> list[str]:
        if "none" in value and len(value) > 1:
            raise ValueError("'none' cannot be combined with a tracker")
        return list(dict.fromkeys(v for v in value if v != "none"))

    @model_validator(mode="after")
    def _check_geometry(self) -> "TrainConfig":
        if self.method == "azr":  # self-play sizes its own batches (azr.tasks_per_type_role)
            return self
        per_step = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if per_step % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size × gradient_accumulation_steps = {per_step} "
                f"completions per step does not split into groups of num_generations="
                f"{self.num_generations}; make it a multiple"
            )
        return self

    @model_validator(mode="after")
    def _check_combinations(self) -> "TrainConfig":
        """Knobs that make no sense together: one line naming both (docs/reference.md §2.2)."""
        loss, kind = self.loss_type, LOSS_TYPES[self.loss_type]
        if kind.level is not None and self.importance_sampling_level != kind.level:
            raise ValueError(f"loss_type: {kind.why}; it needs importance_sampling_level: {kind.level}, not "
                             f"{self.importance_sampling_level}")
        if self.delta is not None and "delta" not in kind.objective.settings:
            takers = ", ".join(name for name, other in LOSS_TYPES.items() if "delta" in other.objective.settings)
            raise ValueError(f"delta bounds the ratio of the clipped objective; loss_type: {loss} has no clip to "
                             f"bound (drop delta, or use one of {takers})")
        unset = [key for key in kind.needs if getattr(self, key) is None]
        if unset:
            raise ValueError(f"loss_type: {kind.why}; set {', '.join(unset)}")
        if self.multi_objective_aggregation == "normalize_then_sum" and self.scale_rewards != "group":
            raise ValueError(f"multi_objective_aggregation: normalize_then_sum z-scores each reward in its group "
                             f"and the sum over the batch, so scale_rewards: {self.scale_rewards} would be ignored; "
                             "use scale_rewards: group or another aggregation")
        if self.method == "azr" and self.multi_objective_aggregation != "per_source":
            raise ValueError("multi_objective_aggregation combines prompt rewards; method: azr normalises its "
                             "rewards per task type and role (TRR++)")
        if self.entropy_coef_min > self.entropy_coef_max:
            raise ValueError(f"entropy_coef_min ({self.entropy_coef_min}) is above entropy_coef_max "
                             f"({self.entropy_coef_max})")
        correction = self.importance_correction()
        if (kind.objective.folds_importance_weights and self.rollout_backend == "vllm" and correction is not None
                and correction.per_sequence):
            raise ValueError(f"loss_type: {loss} folds per-token vLLM weights into its sequence weight; "
                             f"vllm_importance_sampling_mode: {correction.mode} is per sequence (use token_truncate "
                             "or token_mask)")
        return self

    def importance_correction(self) -> Correction | None:
        """The vLLM importance correction the four vllm_importance_sampling_* keys describe (None: off)."""
        return resolve_correction(self.vllm_importance_sampling_correction, self.vllm_importance_sampling_mode,
                                  self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max,
                                  self.vllm_importance_sampling_cap)

    def reward_specs(self) -> list[RewardSpec]:
        """The configured rewards, or the method's defaults."""
        if self.rewards:
            return list(self.rewards)
        main, logged = ("self_certainty", "math_answer")
        if self.method == "grpo":
            main, logged = logged, main
        return [RewardSpec(name=main, weight=1.0), RewardSpec(name=logged, weight=0.0)]


# --------------------------------------------------------------------- loading


def _parse_scalar(text: str) -> Any:
    """`--set` values are YAML scalars: 1e-6, true, null, [a, b] all work."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def set_dotted(raw: dict, key: str, value: Any) -> dict:
    """Set `key` (dotted for nested sections: "azr.seed_rounds") to `value` in a raw config dict,
    creating the sections on the way."""
    node = raw
    *parents, last = key.strip().split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"config key {key}: {part!r} is not a section")
        node = child
    node[last] = value
    return raw


def set_all_dotted(raw: dict, values: dict[str, Any]) -> dict:
    """`set_dotted` for every key → value of `values`, in order (e.g. a caller's visible overrides)."""
    for key, value in values.items():
        set_dotted(raw, key, value)
    return raw


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `key=value` (dotted keys for nested sections) to a raw config dict."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        set_dotted(raw, key, _parse_scalar(value))
    return raw


def _describe(error: ValidationError, model: type[BaseModel]) -> str:
    """The first validation problem, on one line, with the fix when we know it."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        section: Any = model
        for part in first["loc"][:-1]:
            field = section.model_fields.get(str(part)) if isinstance(part, str) else None
            section = field.annotation if field else section
        valid = sorted(getattr(section, "model_fields", {}))
        close = difflib.get_close_matches(str(first["loc"][-1]), valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"config: unknown key {where!r}{hint}; valid keys: {', '.join(valid)}"
    message = first["msg"].removeprefix("Value error, ")
    return f"config: {where or 'value'}: {message}" if where else f"config: {message}"


def build_config(raw: dict, model: type[BaseModel] = TrainConfig) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise UserError(_describe(error, model)) from None


def merge_recipes(base: dict, recipe: dict) -> dict:
    """`recipe` on top of `base`: sections (mappings) merge key by key, any other value
    (a number, a list such as `rewards`) replaces the base's."""
    merged = dict(base)
    for key, value in recipe.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge_recipes(merged[key], value)
        merged[key] = value
    return merged


def read_recipe(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML recipe as a raw dict. A top-level `base: other.yaml` (relative to this file)
    builds on another recipe: this file's keys are merged over the base's (`merge_recipes`),
    so a family of recipes states its shared block once."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"config {path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"config {path}: expected a mapping of keys to values")
    if "base" not in raw:
        return raw
    base = raw.pop("base")
    if not isinstance(base, str) or not base:
        raise UserError(f"config {path}: base must be the path of another recipe, got {base!r}")
    base_path = (path.parent / base).resolve()
    chain = (*_seen, path.resolve())
    if base_path in chain:
        raise UserError(f"config {chain[0]}: its base chain loops: "
                        f"{' -> '.join(p.name for p in (*chain, base_path))}")
    if not base_path.is_file():
        raise UserError(f"config {path}: base recipe not found: {base_path}")
    return merge_recipes(read_recipe(base_path, chain), raw)


def load_config(path: str | Path | None, overrides: list[str] = (), model: type[BaseModel] = TrainConfig) -> Any:
    """Read a YAML recipe (with its `base`, if any), apply `--set` overrides, validate."""
    raw = read_recipe(path) if path is not None else {}
    return build_config(apply_overrides(raw, list(overrides)), model)


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return str(value)


def _settings_class(annotation) -> type[BaseModel] | None:
    """The settings class a field holds (also under `X | None`; not a list of them), else None."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates += typing.get_args(annotation)
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def field_reference(settings: type[BaseModel] | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, meaning) of every config key, nested settings expanded, in definition
    order: the attribute docstrings under each field are the one place a key is documented (the
    README's table and `selftaught train --help-config` are made from this)."""
    rows = []
    for name, field in (settings or TrainConfig).model_fields.items():
        nested = _settings_class(field.annotation)
        if nested is not None:
            rows.append((f"{prefix}{name}", "", field.description or ""))
            rows += field_reference(nested, f"{prefix}{name}.")
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((f"{prefix}{name}", _yaml_value(default), field.description or ""))
    return rows


def config_table() -> str:
    """The README's config-key table (Markdown), from `field_reference`."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, default, meaning in field_reference():
        cell = f"`{default}`" if default else ""
        lines.append(f"| `{key}` | {cell} | {' '.join(meaning.split()).replace('|', chr(92) + '|')} |")
    return "\n".join(lines)

