"""The one training loop every method shares.

    episodes.collect ──► score (no grad) ──► episodes.rewards ──► episodes.advantages ──► μ updates
    (sample completions)  (old log-probs,      (self-certainty,      (group / task-relative)   (clipped surrogate,
                           self-certainty,      gold answers, AZR's                              + β·KL, AdamW)
                           reference)           R(y), ...)

`episodes` is an `episodes.EpisodeSource` (the method: `methods.build_episodes`), the
sampler a `rollout.RolloutSampler`; the trainer calls only what those two contracts
document. Every reward of every method is computed in `episodes.rewards`.

Self-certainty comes from the same no-grad forward pass that computes the "old"
log-probs of the PPO ratio (docs/reference.md §1, online): Intuitor costs no extra pass.

Runs under `accelerate` (`accelerate launch -m selftaught train ...`): each process
collects, scores and trains on its share of the step's batch (whole groups); the
rewards and per-row keys of the whole batch are gathered so advantages and metrics
are computed globally, and each rank's loss is normalised by global counts, so N
processes take the same step as one process on the same global batch
(`distributed.py` states the contract). Rank 0 writes metrics and checkpoints; the
checkpoint holds every rank's RNG streams.

LoRA (`lora:` in the config, PEFT): only the adapter trains, and the reference for
β > 0 is the policy with its adapter disabled, not a second copy of the weights.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint, fsdp2
from .config import TrainConfig
from .console import TrainProgress, silence_library_bars
from .distributed import Processes, accumulation_step, check_launch
from .errors import Preempted, TrainingStopped, UserError
from .importance import importance_weights, logprob_mismatch, weight_stats
from .losses import EntropyBonus, PolicyObjective, entropy_threshold, high_entropy_mask
from .memory import release_freed_memory
from .metrics_log import MetricsWriter
from .preemption import StopOnSignal, exit_code
from .episodes import EpisodeSource
from .methods import build_episodes
from .models import load_model
from .rewards import Scores
from .rewards.user import RewardFunctionError
from .ops import TokenStatistics, truncated_rows
from .rollout import Rollout, RolloutSampler, SelftaughtSampler, eos_token_ids
from .trackers import check_installed, start_trackers
from .variants import OBJECTIVE_SETTINGS
from .scoring import (MicroBatch, ModelScores, completion_token_loss, completion_token_statistics, micro_batches,
                      score_rollout)
from .storage import disk_writes


RELEASE_MEMORY_EVERY = 50
"""Steps between returning freed heap memory to the OS (`selftaught.memory`). Every step would cost
~18% CPU in page faults as the next step takes the pages back; every 50 costs about 0.4%."""


def _mixed_precision(setting) -> str:
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return "bf16" if setting else "no"


def _enable_gradient_checkpointing(model) -> None:
    """Recompute each decoder layer in the backward; non-reentrant (works with DDP, LoRA, no_grad scoring).

    transformers ≥ 5.2x names it `activation_checkpointing_enable` and warns on `gradient_checkpointing_enable`;
    both make the embeddings' output require grad, which LoRA's frozen embeddings need.
    """
    options = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)


def _has_dropout(model) -> bool:
    """Whether the model's train and eval modes differ: an nn.Dropout (LoRA's included) or a
    configured dropout rate (attention dropout is functional, not a module) above zero."""
    config = getattr(model, "config", None)
    rates = config.to_dict().items() if config is not None else ()
    return (any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
            or any(("dropout" in key or "pdrop" in key) and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
                   for key, value in rates))


def _check_parallelism(accelerator) -> None:
    """Refuse the set-ups whose sharded weights the rollout cannot sample from.

    FSDP2 works (`selftaught.fsdp2`: the weights are gathered once for sampling and
    scoring, and every rank runs the same number of training micro-batches). FSDP1 and
    DeepSpeed ZeRO-3 would need the same for their own wrappers, which is not built:
    their per-module all-gathers would hang when ranks decode different numbers of
    tokens. DDP and ZeRO-2 keep whole weights on every rank.
    """
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    fsdp = getattr(accelerator.state, "fsdp_plugin", None)
    if kind == DistributedType.FSDP and getattr(fsdp, "fsdp_version", 1) != 2:
        raise UserError("FSDP version 1 is not supported: set `fsdp_version: 2` in the accelerate config "
                        "(configs/accelerate/fsdp2.yaml)")
    if kind == DistributedType.DEEPSPEED and plugin is not None and plugin.zero_stage == 3:
        raise UserError("DeepSpeed ZeRO-3 shards the weights that sampling needs on every rank, and the rollout "
                        "does not gather them for it; use configs/accelerate/fsdp2.yaml (sharded, supported), "
                        "ddp.yaml or zero2.yaml (see docs/scaling.md)")


def _distributed_cpu() -> bool:
    """Several processes and no accelerator: tell accelerate so, or each process trains alone.

    torchrun (`accelerate launch --multi_gpu`, `configs/accelerate/cpu2.yaml`) sets
    WORLD_SIZE but not ACCELERATE_USE_CPU; without `cpu=True` accelerate then sees
    neither GPUs nor a CPU cluster and makes every process a rank-0 single process.
    """
    import os

    has_accelerator = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not has_accelerator


MISNAMED_EPISODE_ATTRIBUTES = {"weights": "reward_weights", "needs_reference_self_certainty": "needs_reference"}
"""EpisodeSource attributes under names the contract does not read → the names it reads."""


@dataclass
class _StepBatch:
    """This rank's rows of a step as the loss reads them: the rollout, log π_old [N, T], A [N],
    the loss mask [N, T], log π_ref [N, T] (β > 0), the importance weights [N, T] (vLLM) and the
    log-probs the off-policy mask measures drift from (the sampler's, else π_old)."""

    rollout: Rollout
    old_logprobs: torch.Tensor
    advantages: torch.Tensor
    loss_mask: torch.Tensor
    ref_logprobs: torch.Tensor | None
    importance_weights: torch.Tensor | None
    behaviour_logprobs: torch.Tensor

    @classmethod
    def of(cls, rollout: Rollout, scores: Scores, advantages: torch.Tensor, loss_mask: torch.Tensor,
           importance_weights: torch.Tensor | None) -> "_StepBatch":
        behaviour = scores.old_logprobs if rollout.sampler_logprobs is None else rollout.sampler_logprobs
        return cls(rollout, scores.old_logprobs, advantages, loss_mask, scores.ref_logprobs, importance_weights,
                   behaviour)

    def rows(self, index: slice, device) -> tuple:
        """(π_old, A, mask, π_ref, w, behaviour) of the rows `index`, on `device` (None stays None)."""
        return tuple(None if t is None else t[index].to(device)
                     for t in (self.old_logprobs, self.advantages, self.loss_mask, self.ref_logprobs,
                               self.importance_weights, self.behaviour_logprobs))


def _entropy_window(entropy: torch.Tensor, objective: PolicyObjective) -> torch.Tensor:
    """(Σ H·m, Σ m) [2] float64 over the tokens the entropy bonus counts (the adaptive control's input)."""
    counted = objective.mask if objective.entropy_mask is None else objective.mask & objective.entropy_mask
    return torch.tensor([float(torch.where(counted, entropy.detach(), 0.0).sum()), float(counted.sum())],
                        dtype=torch.float64)


class Trainer:
    """Runs `config.max_steps` optimizer steps of any episode source."""

    def __init__(self, config: TrainConfig, episodes=None, resume: bool = False, rewards=None, sampler=None):
        """`episodes`: an `EpisodeSource`, or a subclass built here as `episodes(config, tokenizer)`
        (e.g. a `PromptEpisodes` subclass); None = the method's own. `rewards`: optional reward
        callables with TRL's signature (see `selftaught.rewards.user`), trained alongside the
        config's rewards; an episode source given in `episodes` brings its own. `sampler`: a
        `RolloutSampler`, or a callable `sampler(trainer)` that returns one, called once the
        trainer is set up (policy, tokenizer, processes, resumed step); None = the configured
        `rollout_backend`."""
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        check_installed(config.report_to)  # a missing tracker stops the run before anything loads
        if sampler is not None and not (isinstance(sampler, RolloutSampler) or callable(sampler)):
            raise UserError(f"Trainer(sampler=...): {type(sampler).__name__} is neither a "
                            "selftaught.rollout.RolloutSampler nor a callable that builds one")
        silence_library_bars()  # our bar (or plain lines) is the one to watch

        self.config = config
        self.output_dir = Path(config.output_dir)
        self.accelerator = Accelerator(mixed_precision=_mixed_precision(config.bf16),
                                       cpu=config.use_cpu or _distributed_cpu())
        check_launch(self.accelerator)
        _check_parallelism(self.accelerator)
        self.processes = Processes.from_accelerator(self.accelerator)
        set_seed(config.seed)  # the same on every rank: identical initial weights (LoRA init included)

        resume_from = self._checkpoint_to_resume() if resume else None
        model, self.tokenizer = self._load_policy(resume_from)
        self.eos_ids = eos_token_ids(self.tokenizer, model)  # what ends a completion (mask_truncated_completions)
        self.objective = {key: getattr(config, key) for key in OBJECTIVE_SETTINGS}  # PolicyObjective's settings
        self.entropy_bonus = EntropyBonus.from_config(config)

        self.episodes = self._episode_source(episodes, rewards)
        self.episodes.set_processes(self.processes)

        # β = 0 and online self-certainty: no reference model at all (saves a model's memory).
        # With LoRA the reference is the policy with its adapter disabled (`_reference`).
        self.needs_reference = config.beta > 0 or self.episodes.needs_reference
        self.reference = None
        if self.needs_reference and config.lora is None:
            # the *initial* model, never a checkpoint being resumed
            base = model if resume_from is None else load_model(
                config.model.name_or_path, config.model.dtype, config.model.trust_remote_code)[0]
            self.reference = copy.deepcopy(base).eval().requires_grad_(False).to(self.accelerator.device)
        if config.gradient_checkpointing:
            _enable_gradient_checkpointing(model)
        model.config.use_cache = False  # generate turns the cache on for itself

        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is not None and plugin.is_auto("train_micro_batch_size_per_gpu"):  # no dataloader to infer it
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.per_device_train_batch_size
        trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapter only
        optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay,
                                      betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = self._scheduler(self.optimizer)
        # The fused path reads lm_head's weight after the forward, where FSDP2 may have re-sharded it.
        self.is_fsdp2 = fsdp2.is_sharded(self.model)
        self.fused = config.fused_logprobs and not self.is_fsdp2
        self.has_dropout = _has_dropout(model)
        self.sampler = self._build_sampler(self.accelerator.unwrap_model(self.model)) if sampler is None else None
        self.step = 0
        self.bad_steps = 0
        if resume_from is not None:
            self._restore(resume_from)
        elif self.processes.world > 1:  # each rank samples its own completions: its own stream
            set_seed(config.seed + self.processes.rank)
        self.metrics = MetricsWriter(self.output_dir, resume_step=self.step if resume_from else None,
                                     trackers=self._start_trackers) if self.accelerator.is_main_process else None
        if sampler is not None:
            self.sampler = sampler if isinstance(sampler, RolloutSampler) else sampler(self)
            if not isinstance(self.sampler, RolloutSampler):
                raise UserError(f"Trainer(sampler=...): {type(self.sampler).__name__} is not a "
                                "selftaught.rollout.RolloutSampler (subclass it)")

    def _episode_source(self, episodes, rewards) -> EpisodeSource:
        """The `episodes` argument as an EpisodeSource: the method's own, a class built here, or as given."""
        if episodes is None:
            return build_episodes(self.config, self.tokenizer, rewards=rewards)
        if rewards:
            raise UserError("Trainer(rewards=...) adds rewards to the built-in episode source; an episode source "
                            "passed as `episodes` computes its own")
        if isinstance(episodes, type) and issubclass(episodes, EpisodeSource):  # built with the policy's tokenizer
            episodes = episodes(self.config, self.tokenizer)
        if not isinstance(episodes, EpisodeSource):
            name = episodes.__name__ if isinstance(episodes, type) else type(episodes).__name__
            raise UserError(f"Trainer(episodes=...): {name} is not a selftaught.episodes.EpisodeSource (subclass it)")
        # Attributes the contract names otherwise: a source setting them would silently train on
        # no reward weights, or without the reference it wants.
        misnamed = {old: new for old, new in MISNAMED_EPISODE_ATTRIBUTES.items() if hasattr(episodes, old)}
        if misnamed:
            raise UserError(f"{type(episodes).__name__}: an episode source names these "
                            + ", ".join(f"{new} (not {old})" for old, new in misnamed.items()))
        return episodes

    # ------------------------------------------------------------------ set-up

    def _start_trackers(self) -> list:
        """The `report_to` trackers (rank 0), started when training starts, with the config."""
        config = self.config
        return start_trackers(config.report_to, self.output_dir, config.run_name or self.output_dir.resolve().name,
                              config.model_dump(mode="json"))

    def _checkpoint_to_resume(self) -> Path:
        """The newest intact checkpoint; one warning line per damaged one skipped. Rank 0 checks
        (every file's hash: one read of the checkpoint, not one per rank) and tells the others."""
        directory = self.output_dir / "checkpoints"
        main = self.accelerator.is_main_process
        warn = (lambda line: print(f"selftaught: warning: {line}", file=sys.stderr, flush=True)) if main \
            else (lambda line: None)
        found = checkpoint.latest_intact(directory, warn) if main else None
        path, skipped = self.processes.from_main(found)  # rank 0's finding, on every rank
        if path is None and not skipped:
            raise UserError(f"--resume: no checkpoint in {directory}; start without --resume")
        if path is None:
            raise UserError(f"--resume: no intact checkpoint in {directory} ({'; '.join(skipped)}); "
                            "start without --resume, or restore a checkpoint from a backup")
        return path

    def _load_policy(self, resume_from: Path | None):
        """(model, tokenizer) to train: the configured model, a resumed checkpoint, or either with LoRA."""
        from .lora import apply_lora
        from .models.adapters import is_adapter_checkpoint, load_adapter_checkpoint

        config = self.config
        if config.lora is None:
            if resume_from is not None and is_adapter_checkpoint(resume_from):
                raise UserError(f"{resume_from} is a LoRA checkpoint but the config has no `lora:` section; "
                                "resume with the same config")
            return load_model(str(resume_from or config.model.name_or_path), config.model.dtype,
                              config.model.trust_remote_code)
        if resume_from is not None and not is_adapter_checkpoint(resume_from):
            raise UserError(f"{resume_from} holds full weights but the config asks for lora; resume with the "
                            "same config")
        model, tokenizer = load_model(config.model.name_or_path, config.model.dtype, config.model.trust_remote_code)
        if resume_from is not None:
            return load_adapter_checkpoint(resume_from, model, trainable=True), tokenizer
        return apply_lora(model, config.lora, config.model.name_or_path), tokenizer

    def _build_sampler(self, policy):
        """Our decoding loop, or (`rollout_backend: vllm`) a colocated vLLM engine synced from `policy`."""
        config = self.config
        settings = dict(max_prompt_length=config.max_prompt_length, max_completion_length=config.max_completion_length,
                        temperature=config.temperature, top_p=config.top_p, top_k=config.top_k)
        if config.rollout_backend == "selftaught":
            return SelftaughtSampler(policy, self.tokenizer, generation_batch_size=config.generation_batch_size,
                                     autocast=self.accelerator.autocast, **settings)
        if self.is_fsdp2:
            raise UserError("rollout_backend: vllm with FSDP2 is not supported (the engine needs whole weights "
                            "to sync); use configs/accelerate/ddp.yaml or the selftaught backend")
        from .vllm_backend import VLLMSampler

        return VLLMSampler(policy, self.tokenizer, seed=config.seed + self.processes.rank,
                           gpu_memory_utilization=config.vllm_gpu_memory_utilization, dtype=config.vllm_dtype,
                           trainer_bf16=self.accelerator.mixed_precision == "bf16",
                           distributed=self.processes.world > 1, **settings)

    def _sampler_correction(self, rollout: Rollout, scores: Scores) -> tuple[torch.Tensor | None, dict]:
        """Truncated importance weights π_old / π_sampler and the mismatch metrics, when another
        engine sampled the rollout (it reported its log-probs); (None, {}) for our own loop."""
        if rollout.sampler_logprobs is None:
            return None, {}
        old, reported, mask = scores.old_logprobs, rollout.sampler_logprobs, rollout.completion_mask
        mismatch = logprob_mismatch(old, reported, mask)
        if self.processes.world > 1:  # over every rank's tokens: token-weighted mean, max of maxes
            weighted, tokens = self.processes.total((mismatch["mean"] * float(mask.sum()), float(mask.sum())))
            mismatch = {"mean": weighted / max(tokens, 1.0), "max": self.processes.maximum(mismatch["max"])}
        metrics = {"vllm/logprob_abs_diff/mean": mismatch["mean"], "vllm/logprob_abs_diff/max": mismatch["max"]}
        correction = self.config.importance_correction()
        weights = importance_weights(old, reported, mask, correction)
        if weights is not None:
            metrics.update({f"vllm/is_weight/{key}": value
                            for key, value in weight_stats(weights, mask, correction).items()})
        return weights, metrics

    def _scheduler(self, optimizer):
        from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                                  get_linear_schedule_with_warmup)

        warmup = int(round(self.config.warmup_ratio * self.config.max_steps))
        if self.config.lr_scheduler_type == "cosine":
            return get_cosine_schedule_with_warmup(optimizer, warmup, self.config.max_steps)
        if self.config.lr_scheduler_type == "linear":
            return get_linear_schedule_with_warmup(optimizer, warmup, self.config.max_steps)
        return get_constant_schedule_with_warmup(optimizer, warmup)

    def _restore(self, path: Path) -> None:
        state = checkpoint.load_state(path)
        saved = state.get("num_processes", 1)
        if saved != self.processes.world:
            raise UserError(f"checkpoint {path} was written by {saved} process(es) and this run has "
                            f"{self.processes.world}; resume with --num_processes {saved} (the batch per step "
                            "and each process's random stream depend on it)")
        fsdp2.load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.episodes.load_state_dict(state["episodes"])
        self.step, self.bad_steps = state["step"], state.get("bad_steps", 0)
        if "entropy_bonus" in state:
            self.entropy_bonus.load_state_dict(state["entropy_bonus"])
        checkpoint.set_rng_state(state.get("rng_per_rank", [state["rng"]])[self.processes.rank])
        self.accelerator.print(f"resumed from {path} at step {self.step}")

    def _full_weights(self):
        """Whole weights on every rank for sampling and scoring (FSDP2); otherwise nothing."""
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
        return fsdp2.full_weights(self.model, bool(getattr(plugin, "reshard_after_forward", True)))

    def _state_dict_is_collective(self) -> bool:
        """FSDP and DeepSpeed hold the weights in pieces: saving them is a collective every rank joins."""
        from accelerate.utils import DistributedType

        return self.accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)

    def save_checkpoint(self) -> Path | None:
        """Rank 0 writes `checkpoints/step-N` (every rank's RNG streams inside); the others wait.

        A write the disk refuses is a UserError on every rank (rank 0's line), not a rank 0 that
        stops while the others wait for it."""
        self.accelerator.wait_for_everyone()
        rng = self.processes.gather(checkpoint.rng_state())
        # FSDP / ZeRO-3 shard the weights: gathering them is collective (every rank calls it).
        weights = self.accelerator.get_state_dict(self.model) if self._state_dict_is_collective() else None
        optimizer = fsdp2.optimizer_state(self.model, self.optimizer)  # FSDP2: gathered (collective)
        path, failure = None, None
        if self.accelerator.is_main_process:
            state = {"optimizer": optimizer, "scheduler": self.scheduler.state_dict(),
                     "episodes": self.episodes.state_dict(), "step": self.step, "bad_steps": self.bad_steps,
                     "entropy_bonus": self.entropy_bonus.state_dict(),
                     "rng": rng[0], "rng_per_rank": rng, "num_processes": self.processes.world,
                     "config": self.config.model_dump()}
            try:
                path = checkpoint.save(self.output_dir / "checkpoints", self.step,
                                       self.accelerator.unwrap_model(self.model), self.tokenizer, state,
                                       keep=self.config.save_total_limit, state_dict=weights)
                with disk_writes("files exported to", self.output_dir):  # e.g. AZR writes its task buffers as JSONL
                    self.episodes.export(self.output_dir, self.step)
            except UserError as error:
                failure = str(error)
        failure = self.processes.from_main(failure)  # also the barrier: every rank waits for rank 0's write
        if failure is not None:
            raise UserError(failure)
        return path

    # ----------------------------------------------------------------- scoring

    def _reference(self):
        """(model, context) that score the reference policy, or (None, nullcontext) when there is none.

        Full fine-tuning: a frozen copy of the initial model. LoRA: the policy itself
        with its adapter disabled, which *is* the initial model.
        """
        if self.reference is not None:
            return self.reference, nullcontext
        if self.config.lora is not None and self.needs_reference:
            policy = self.accelerator.unwrap_model(self.model)
            return policy, policy.disable_adapter
        return None, nullcontext

    @torch.no_grad()
    def score(self, rollout: Rollout, policy: ModelScores | None = None) -> Scores:
        """One no-grad pass: π_old log-probs, online self-certainty, per-token entropy when a
        reward needs it (+ the reference's log-probs and self-certainty). `policy`: the policy's
        part, when the step's one forward already measured it (`_score_step`)."""
        reference, disabled = self._reference()
        self.model.eval()
        try:
            return score_rollout(self.model, rollout, temperature=self.config.temperature,
                                 chunk_size=self.config.logits_chunk_size,
                                 batch_size=self.config.per_device_train_batch_size,
                                 device=self.accelerator.device, fused=self.fused,
                                 entropy=self.episodes.needs_token_entropy,
                                 reference=reference, reference_context=disabled,
                                 autocast=self.accelerator.autocast, policy=policy)
        finally:
            self.model.train()

    def _one_forward(self, rollout: Rollout) -> bool:
        """Whether this step's scoring pass and its update can be one forward: a single optimizer
        step on the rollout (μ = 1, so π_old = π_θ), one micro-batch, and a model whose train and
        eval modes compute the same function (no dropout). FSDP2 and DeepSpeed keep two passes
        (their gathered-sampling and engine contracts assume them)."""
        from accelerate.utils import DistributedType

        config = self.config
        return (config.num_iterations == 1 and 0 < len(rollout) <= config.per_device_train_batch_size
                and not self.has_dropout and not self.is_fsdp2
                and self.accelerator.distributed_type != DistributedType.DEEPSPEED)

    def _score_step(self, rollout: Rollout) -> tuple[Scores, TokenStatistics | None]:
        """The step's scores, and the update's differentiable log π_θ(o_t) [N, T] (and H(p_t) when the
        update needs it) when one forward serves both (`_one_forward`; else None and the update runs
        its own forward).

        With μ = 1 the update's forward is the scoring pass with a graph: same weights, same rows,
        same numbers (the ratio is exactly 1), so running it once saves a forward of the whole
        batch per step. The graph lives until the update's backward, as it would in the update.
        """
        if not self._one_forward(rollout):
            return self.score(rollout), None
        batch = MicroBatch.of(rollout, slice(0, len(rollout)), self.accelerator.device)
        reward_entropy = self.episodes.needs_token_entropy
        with self.accelerator.autocast():
            stats = completion_token_statistics(self.model, *batch, temperature=self.config.temperature,
                                                chunk_size=self.config.logits_chunk_size, fused=self.fused,
                                                entropy=reward_entropy or self._update_needs_entropy)
        scored = stats if reward_entropy else stats._replace(entropy=None)
        # Rewards are numbers, not part of the graph: a reward read from this forward (token
        # entropy, self-certainty) must not carry a gradient into the advantages.
        scored = TokenStatistics(*(None if t is None else t.detach() for t in scored))
        return self.score(rollout, policy=ModelScores.of(scored, batch.completion_mask)), stats

    @property
    def _update_needs_entropy(self) -> bool:
        """The loss reads H(p_t): the top-entropy mask or the (possibly adaptive) entropy bonus."""
        return self.config.top_entropy_quantile < 1.0 or self.entropy_bonus.enabled

    # ------------------------------------------------------------------ update

    def _update(self, rollout: Rollout, scores: Scores, advantages: torch.Tensor, whole: Rollout,
                importance_weights: torch.Tensor | None = None, forwarded: TokenStatistics | None = None) -> dict:
        """One optimizer step over this rank's rollout, in micro-batches (gradient accumulation).

        Each micro-batch's loss is normalised by the token/row count of `whole` (the step's batch
        over *all* processes; tokens as `_loss_mask` counts them), times the number of processes
        (DDP averages the ranks' gradients), so the gradient does not depend on how the batch is
        split over micro-batches or processes, except where TRL defines a mean per micro-batch
        (bnpo, the entropy bonus, the top-entropy quantile; docs/reference.md §2.2).
        `importance_weights`: [N, T] on the policy term (vLLM sampled: `_sampler_correction`), or
        None. `forwarded`: the rollout's log π_θ (and entropy) with their graph when the scoring
        forward was the update's (`_score_step`).
        """
        batches = micro_batches(len(rollout), self.config.per_device_train_batch_size)
        real = len(batches)
        if self.is_fsdp2:  # each forward is a collective: every rank runs as many (repeats count 0)
            batches = fsdp2.padded_micro_batches(batches, self.processes)
        step = _StepBatch.of(rollout, scores, advantages, self._loss_mask(rollout), importance_weights)
        global_tokens = max(float(self._loss_mask(whole).sum()), 1.0)
        counts = {"num_tokens": global_tokens / self.processes.world, "num_rows": len(whole) / self.processes.world,
                  "num_micro_batches": real}
        bonus = self.entropy_bonus.applied() if self.entropy_bonus.enabled else 0.0
        loss_sum, stats_sum, window = 0.0, {}, torch.zeros(2, dtype=torch.float64)  # window: Σ H·m, Σ m
        self.optimizer.zero_grad(set_to_none=True)
        for i, index in enumerate(batches):
            padding = i >= real
            with accumulation_step(self.accelerator, self.model, last=i == len(batches) - 1), \
                    self.accelerator.autocast():
                loss, loss_stats, objective, entropy = self._micro_batch_loss(step, index, counts, bonus, padding,
                                                                              forwarded)
                self.accelerator.backward(loss * 0.0 if padding else loss)
            if padding:
                continue
            loss_sum += loss.item()
            share = float(objective.mask.sum()) / global_tokens  # token-weighted means of the statistics
            for key, value in loss_stats.items():
                stats_sum[key] = stats_sum.get(key, 0.0) + value * share
            if self.entropy_bonus.adaptive:
                window += _entropy_window(entropy, objective)
        # The step's loss (mean over ranks) and statistics over all ranks, so every rank decides alike below.
        loss_sum, stats_sum, window = self.processes.total((loss_sum, stats_sum, window))
        loss_sum /= self.processes.world
        grad_norm, finite = self._optimizer_step(loss_sum)
        if self.entropy_bonus.adaptive:  # Skywork-OR1: steer c by this step's entropy, for the next step
            self.entropy_bonus.update(float(window[0] / window[1].clamp(min=1.0)))
        if self.entropy_bonus.enabled:
            stats_sum["entropy_coef"] = self.entropy_bonus.coef
        return {"loss": loss_sum, "grad_norm": grad_norm, "skipped": not finite, **stats_sum}

    def _micro_batch_loss(self, step: _StepBatch, index: slice, counts: dict, bonus: float, padding: bool,
                          forwarded: TokenStatistics | None):
        """L(θ) of one micro-batch (docs/reference.md §2), as `losses.PolicyObjective` writes it:
        log π_θ(o_t) from a forward; ρ_t = π_θ(o_t) / π_old(o_t); the clipped surrogate
        −min(ρ_t A, clip(ρ_t, 1 − ε, 1 + ε) A) (or `loss_type`'s objective) × the importance weight;
        + β·KL_k3(π_θ ‖ π_ref); aggregated as `loss_type` says (with the step's counts); − c·H with the
        entropy bonus.

        Returns (loss, its statistics, the objective, H(p_t) or None). A loss that is a sum of
        per-token terms (`PolicyObjective.per_token`) goes to the fused head whole
        (`completion_token_loss`: the head's gradients in the forward, three matmuls per chunk, not
        four); any other through the log-probs' graph. `forwarded`: the scoring forward's graph.
        """
        config, device = self.config, self.accelerator.device
        π_old, A, mask, π_ref, w, behaviour = step.rows(index, device)
        objective = PolicyObjective(π_old, A, mask, **self.objective, ref_logprobs=π_ref, importance_weights=w,
                                    behaviour_logprobs=behaviour, entropy_coef=bonus, **counts)
        batch = MicroBatch.of(step.rollout, index, device)
        need_entropy = self._update_needs_entropy
        if forwarded is None and self.fused and not need_entropy and objective.per_token:
            fused = completion_token_loss(self.model, *batch, token_loss=objective.token_losses,
                                          temperature=config.temperature, chunk_size=config.logits_chunk_size)
            if fused is not None:
                loss, log_π = fused
                return loss, objective.stats(log_π), objective, None
        stats = forwarded if forwarded is not None else completion_token_statistics(
            self.model, *batch, temperature=config.temperature, chunk_size=config.logits_chunk_size,
            fused=self.fused, entropy=need_entropy)
        if config.top_entropy_quantile < 1.0:
            objective.entropy_mask = self._high_entropy_mask(stats.entropy, mask, padding)
        entropy = stats.entropy if need_entropy else None
        loss, loss_stats = objective.loss_and_stats(stats.logprobs, entropy)
        return loss, loss_stats, objective, entropy

    def _optimizer_step(self, loss: float) -> tuple[float, bool]:
        """Clip the gradient and step, unless the loss or the gradient is not finite (then the step is
        skipped and counted: one NaN must not poison the weights); the schedule advances either way.
        Returns (gradient norm, whether it stepped)."""
        # DeepSpeed has already clipped (its `gradient_clipping`) and stepped; it reports the norm.
        norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        grad_norm = float("nan") if norm is None else float(norm)
        finite = math.isfinite(loss) and (norm is None or math.isfinite(grad_norm))
        if finite:
            self.optimizer.step()
            self.bad_steps = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
        self.scheduler.step()
        return grad_norm, finite

    def _high_entropy_mask(self, entropy: torch.Tensor, mask: torch.Tensor, padding: bool) -> torch.Tensor:
        """The top-`top_entropy_quantile` tokens by entropy, the threshold taken over this micro-batch
        of every rank (TRL's choice); an FSDP2 padding repeat adds no tokens to the pool."""
        local = entropy.detach()[mask.bool()].float().cpu() if not padding else torch.zeros(0)
        pooled = self.processes.cat(local)
        if pooled.numel() == 0:
            return torch.zeros_like(mask, dtype=torch.bool)
        threshold = entropy_threshold(pooled, self.config.top_entropy_quantile).to(entropy.device)
        return high_entropy_mask(entropy.detach(), mask, threshold)

    # -------------------------------------------------------------------- loop

    def completions_per_step(self) -> int:
        """Completions this process trains on per optimizer step (TRL's per-device count)."""
        c = self.config
        return c.per_device_train_batch_size * c.gradient_accumulation_steps

    def _whole_batch(self, rollout: Rollout, self_certainty: torch.Tensor, rewards: dict):
        """The step's batch over all ranks, in rank order (texts, masks, extras, rewards), and this
        rank's rows in it. One process: the inputs themselves."""
        if self.processes.world == 1:
            return rollout, self_certainty, rewards, slice(0, len(rollout))
        empty = torch.zeros(len(rollout), 0, dtype=torch.long)
        parts = self.processes.gather({
            "rollout": Rollout(prompt_ids=empty, prompt_mask=empty.bool(), completion_ids=rollout.completion_ids,
                               completion_mask=rollout.completion_mask, prompts=rollout.prompts,
                               completions=rollout.completions, extras=rollout.extras),
            "self_certainty": self_certainty, "rewards": rewards})
        start = sum(len(p["rollout"]) for p in parts[:self.processes.rank])
        whole = Rollout.concat([p["rollout"] for p in parts], self.tokenizer.pad_token_id)
        all_rewards = {name: torch.cat([p["rewards"][name] for p in parts]) for name in rewards}
        return (whole, torch.cat([p["self_certainty"] for p in parts]), all_rewards,
                slice(start, start + len(rollout)))

    def train_step(self) -> list[dict]:
        """Collect one rollout, then `num_iterations` optimizer steps on it; one metrics row per step."""
        started = time.perf_counter()
        with self._full_weights():  # FSDP2: gathered once; ranks sample different token counts
            rollout = self.episodes.collect(self.sampler, self.completions_per_step())
            generated = time.perf_counter()
            scores, forwarded = self._score_step(rollout)
        importance_weights, correction = self._sampler_correction(rollout, scores)
        try:
            rewards = self.episodes.rewards(rollout, scores)
        except RewardFunctionError as error:  # before any update or checkpoint of this step
            raise UserError(error.describe(step=self.step + 1)) from None
        if not rewards:
            raise UserError(f"{type(self.episodes).__name__}.rewards() returned no rewards: an episode source "
                            "returns at least one named [N] tensor")
        # Advantages over the global batch (batch-scaled std, AZR's task groups span ranks), then ours.
        whole, whole_sc, whole_rewards, mine = self._whole_batch(rollout, scores.self_certainty, rewards)
        whole_advantages = self.episodes.advantages(whole, whole_rewards)
        advantages = whole_advantages[mine]
        scored = time.perf_counter()
        shared = {**self._rollout_metrics(whole, whole_sc, whole_rewards, whole_advantages), **correction}
        logged = []
        for i in range(self.config.num_iterations):
            if self.step >= self.config.max_steps:
                break
            update = self._update(rollout, scores, advantages, whole, importance_weights, forwarded)
            forwarded = None  # a graph serves one backward
            self.step += 1
            last_update = i == self.config.num_iterations - 1 or self.step >= self.config.max_steps
            if self.sampler.syncs_weights and last_update:  # another engine samples: it needs the new weights
                synced = time.perf_counter()  # once per rollout, after its last optimizer step
                self.sampler.sync_weights()
                update["time/sync_s"] = time.perf_counter() - synced
            now = time.perf_counter()
            row = {"step": self.step, **update, **shared, "learning_rate": self.scheduler.get_last_lr()[0],
                   "time/generate_s": generated - started, "time/score_s": scored - generated,
                   "time/step_s": now - started}
            logged.append(row)
            started = generated = scored = now
            self._log(row, whole, whole_rewards)
            if self.bad_steps >= self.config.max_consecutive_bad_steps:
                raise TrainingStopped(f"{self.bad_steps} consecutive steps with a non-finite loss or gradient "
                                      f"(step {self.step}); lower learning_rate or check the data")
        return logged

    def _loss_mask(self, rollout: Rollout) -> torch.Tensor:
        """[N, T] bool: the completion tokens the loss counts; with `mask_truncated_completions`, the rows
        that did not end with an EOS are left out (DAPO), though their rewards counted in their group."""
        mask = rollout.completion_mask.bool()
        if self.config.mask_truncated_completions:
            mask = mask & ~truncated_rows(rollout.completion_ids, mask, self.eos_ids)[:, None]
        return mask

    def _rollout_metrics(self, rollout, self_certainty, rewards, advantages) -> dict:
        mask = rollout.completion_mask
        lengths = mask.sum(-1).float()
        total = self.episodes.total_reward(rewards)  # Σ w_s r_s over the trained sources
        metrics = {
            "reward/mean": float(total.mean()), "reward/std": float(total.std()) if len(total) > 1 else 0.0,
            "self_certainty/mean": float(self_certainty.mean()),
            "completion_length/mean": float(lengths.mean()), "completion_length/max": float(lengths.max()),
            "completion_truncated/frac": float(truncated_rows(rollout.completion_ids, mask, self.eos_ids)
                                               .float().mean()),
            "advantage/abs_mean": float(advantages.abs().mean()),
        }
        for name, values in rewards.items():
            metrics[f"rewards/{name}/mean"] = float(values.float().nanmean()) if len(values) else 0.0
            missing = torch.isnan(values.float())
            if bool(missing.any()):
                metrics[f"rewards/{name}/none_frac"] = float(missing.float().mean())
        metrics.update(self.episodes.metrics(rollout, rewards))
        return metrics

    def _log(self, row: dict, rollout: Rollout, rewards: dict) -> None:
        if self.metrics is None:
            return
        self.metrics.log(row)
        samples = []
        for i in range(min(self.config.log_completions, len(rollout))):
            samples.append({"prompt": rollout.prompts[i], "completion": rollout.completions[i],
                            **{f"reward/{k}": float(v[i]) for k, v in rewards.items()}})
        self.metrics.log_completions(row["step"], samples)

    def train(self) -> list[dict]:
        """Train to `max_steps`, checkpointing every `save_steps` and at the end.

        SIGTERM / SIGINT (`selftaught.preemption`): the step in progress finishes, a checkpoint
        is written, everything is closed, and `Preempted` is raised; a second signal ends the
        process at once."""
        history: list[dict] = []
        progress = TrainProgress(self.config.max_steps, self.step, enabled=self.accelerator.is_main_process,
                                 bar=self.config.progress_bar, log_every=self.config.log_every)
        last_saved, saved_path = self.step, None
        with StopOnSignal(announce=self.accelerator.is_main_process) as stop:
            try:
                if self.metrics is not None:
                    self.metrics.start()  # trackers first: one that cannot start stops the run before step 1
                while self.step < self.config.max_steps:
                    for row in self.train_step():
                        history.append(row)
                        progress.update(row)
                    if self.step % RELEASE_MEMORY_EVERY == 0:
                        release_freed_memory()  # or the allocator's arenas grow over thousands of steps
                    signum = stop.agreed(self.processes)
                    # Checkpoints fall on rollout boundaries (a mid-rollout state would need the rollout too).
                    due = self.step - last_saved >= self.config.save_steps or self.step >= self.config.max_steps
                    if due or (signum is not None and self.step != last_saved):
                        saved_path = self.save_checkpoint()
                        last_saved = self.step
                    if signum is not None and self.step < self.config.max_steps:
                        raise Preempted(signum, self.step, saved_path or checkpoint.latest(self.output_dir / "checkpoints"),
                                        exit_code(signum), self.accelerator.is_main_process)
            finally:
                progress.close()
                if self.metrics is not None:
                    self.metrics.close()
                try:  # e.g. AZR's sandbox processes, vLLM's engine and config dir
                    self.episodes.close()
                finally:
                    self.sampler.close()
        return history
