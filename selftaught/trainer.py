"""The one training loop every method shares.

    episodes.collect ──► score (no grad) ──► episodes.rewards ──► episodes.advantages ──► μ updates
    (sample completions)  (old log-probs,      (self-certainty,      (group / task-relative)   (clipped surrogate,
                           self-certainty,      gold answers, ...)                               + β·KL, AdamW)
                           reference)

Self-certainty comes from the same no-grad forward pass that computes the "old"
log-probs of the PPO ratio (REFERENCE §1, online): Intuitor costs no extra pass.
Runs under `accelerate` so multi-process training needs no rewrite.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from . import checkpoint
from .config import TrainConfig
from .errors import UserError
from .fused_logprobs import capture_head_input, fused_head, fused_token_logprobs_and_self_certainty
from .losses import policy_loss
from .metrics_log import MetricsWriter
from .models import load_model
from .ops import sequence_mean, token_logprobs_and_self_certainty
from .rewards import Scores
from .rollout import Rollout, Sampler


class TrainingStopped(RuntimeError):
    """Too many consecutive non-finite steps: the run is diverging."""


def completion_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask, *,
                        temperature: float, chunk_size: int, fused: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(o_t | q, o_<t) and sc_t for every completion token: two [n, T] float32 tensors.

    Position P-1+t of the prompt+completion sequence predicts completion token t;
    only those T positions reach the output layer (`logits_to_keep`). Position ids
    follow the attention mask, as in `generate`, so left padding does not shift them.

    `fused` (default): the lm_head's input is captured and log-probs/self-certainty
    come from `fused_logprobs` chunk by chunk, so no [n, T, V] logits tensor exists
    (forward or backward). Models whose logits are not exactly `lm_head(hidden)`
    (soft-capping, logit scales, unknown architectures) use the logits path.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask, completion_mask], dim=1).long()
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    T = completion_ids.shape[1]
    inputs = dict(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                  logits_to_keep=T + 1, use_cache=False)
    head = fused_head(model) if fused else None
    if head is None:
        logits = model(**inputs).logits[:, :-1]
        return token_logprobs_and_self_certainty(logits, completion_ids, completion_mask,
                                                 temperature=temperature, chunk_size=chunk_size)
    with capture_head_input(head) as captured:
        model(**inputs)
    if len(captured) != 1:
        raise RuntimeError(f"expected one lm_head call in the forward pass, saw {len(captured)}")
    hidden = captured[0][:, :-1]  # [n, T, H]: the states that predict completion tokens 0..T-1
    return fused_token_logprobs_and_self_certainty(hidden, head.weight, completion_ids, completion_mask,
                                                   temperature=temperature, chunk_size=chunk_size, bias=head.bias)


def _rows(rollout: Rollout, index: slice, device) -> tuple[torch.Tensor, ...]:
    return tuple(t[index].to(device) for t in (rollout.prompt_ids, rollout.prompt_mask,
                                               rollout.completion_ids, rollout.completion_mask))


def _mixed_precision(setting) -> str:
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return "bf16" if setting else "no"


class Trainer:
    """Runs `config.max_steps` optimizer steps of any episode source."""

    def __init__(self, config: TrainConfig, episodes=None, resume: bool = False):
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our bar is the one to watch

        self.config = config
        self.output_dir = Path(config.output_dir)
        self.accelerator = Accelerator(mixed_precision=_mixed_precision(config.bf16))
        set_seed(config.seed)

        resume_from = checkpoint.latest(self.output_dir / "checkpoints") if resume else None
        if resume and resume_from is None:
            raise UserError(f"--resume: no checkpoint in {self.output_dir / 'checkpoints'}; start without --resume")
        model, self.tokenizer = load_model(str(resume_from or config.model.name_or_path), config.model.dtype,
                                           config.model.trust_remote_code)
        if resume_from is not None:  # the reference is the *initial* model, never the checkpoint
            needs_base = config.beta > 0 or self._offline_self_certainty(episodes)
            base = load_model(config.model.name_or_path, config.model.dtype)[0] if needs_base else None
        else:
            base = model
        model.config.use_cache = False  # generate turns the cache on for itself

        if episodes is None:
            from .episodes import build_episodes

            episodes = build_episodes(config, self.tokenizer)
        self.episodes = episodes

        # β = 0 and online self-certainty: no reference model at all (saves a model's memory).
        self.reference = None
        if config.beta > 0 or self._offline_self_certainty(episodes):
            self.reference = copy.deepcopy(base).eval().requires_grad_(False).to(self.accelerator.device)

        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                      betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = self._scheduler(self.optimizer)
        unwrapped = self.accelerator.unwrap_model(self.model)
        self.sampler = Sampler(unwrapped, self.tokenizer, max_prompt_length=config.max_prompt_length,
                               max_completion_length=config.max_completion_length,
                               temperature=config.temperature, top_p=config.top_p, top_k=config.top_k,
                               generation_batch_size=config.generation_batch_size)
        self.step = 0
        self.bad_steps = 0
        if resume_from is not None:
            self._restore(resume_from)
        self.metrics = MetricsWriter(self.output_dir, resume_step=self.step if resume_from else None) \
            if self.accelerator.is_main_process else None

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _offline_self_certainty(episodes) -> bool:
        return bool(getattr(episodes, "needs_reference_self_certainty", False))

    def _scheduler(self, optimizer):
        from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

        warmup = int(round(self.config.warmup_ratio * self.config.max_steps))
        if self.config.lr_scheduler_type == "cosine":
            return get_cosine_schedule_with_warmup(optimizer, warmup, self.config.max_steps)
        return get_constant_schedule_with_warmup(optimizer, warmup)

    def _restore(self, path: Path) -> None:
        state = checkpoint.load_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.episodes.load_state_dict(state["episodes"])
        self.step, self.bad_steps = state["step"], state.get("bad_steps", 0)
        checkpoint.set_rng_state(state["rng"])
        self.accelerator.print(f"resumed from {path} at step {self.step}")

    def save_checkpoint(self) -> Path | None:
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return None
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "episodes": self.episodes.state_dict(), "step": self.step, "bad_steps": self.bad_steps,
                 "rng": checkpoint.rng_state(), "config": self.config.model_dump()}
        path = checkpoint.save(self.output_dir / "checkpoints", self.step,
                               self.accelerator.unwrap_model(self.model), self.tokenizer, state,
                               keep=self.config.save_total_limit)
        export = getattr(self.episodes, "export", None)  # e.g. AZR writes its task buffers as JSONL
        if export is not None:
            export(self.output_dir, self.step)
        return path

    # ----------------------------------------------------------------- scoring

    def _micro_batches(self, n: int) -> list[slice]:
        size = self.config.per_device_train_batch_size
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    @torch.no_grad()
    def score(self, rollout: Rollout) -> Scores:
        """One no-grad pass: π_old log-probs and online self-certainty (+ the reference's)."""
        device, n = self.accelerator.device, len(rollout)
        kwargs = {"temperature": self.config.temperature, "chunk_size": self.config.logits_chunk_size,
                  "fused": self.config.fused_logprobs}
        old, sc, ref, ref_sc = [], [], [], []
        self.model.eval()
        for index in self._micro_batches(n):
            rows = _rows(rollout, index, device)
            with self.accelerator.autocast():
                logp, sc_tokens = completion_logprobs(self.model, *rows, **kwargs)
                old.append(logp.cpu())
                sc.append(sequence_mean(sc_tokens, rows[3]).cpu())
                if self.reference is not None:
                    logp, sc_tokens = completion_logprobs(self.reference, *rows, **kwargs)
                    ref.append(logp.cpu())
                    ref_sc.append(sequence_mean(sc_tokens, rows[3]).cpu())
        self.model.train()
        return Scores(old_logprobs=torch.cat(old), self_certainty=torch.cat(sc),
                      ref_logprobs=torch.cat(ref) if ref else None,
                      ref_self_certainty=torch.cat(ref_sc) if ref_sc else None)

    # ------------------------------------------------------------------ update

    def _update(self, rollout: Rollout, scores: Scores, advantages: torch.Tensor) -> dict:
        """One optimizer step over the whole rollout, in micro-batches (gradient accumulation).

        Each micro-batch's loss is normalised by the whole step's token/row count,
        so the gradient does not depend on how the batch is split.
        """
        config, device = self.config, self.accelerator.device
        mask = rollout.completion_mask
        totals = {"num_tokens": float(mask.sum().clamp(min=1)), "num_rows": float(len(rollout))}
        batches = self._micro_batches(len(rollout))
        loss_sum, stats_sum = 0.0, {}
        self.optimizer.zero_grad(set_to_none=True)
        for i, index in enumerate(batches):
            rows = _rows(rollout, index, device)
            sync = nullcontext() if i == len(batches) - 1 else self.accelerator.no_sync(self.model)
            with sync, self.accelerator.autocast():
                logp, _ = completion_logprobs(self.model, *rows, temperature=config.temperature,
                                              chunk_size=config.logits_chunk_size, fused=config.fused_logprobs)
                loss, stats = policy_loss(
                    logp, scores.old_logprobs[index].to(device), advantages[index].to(device), rows[3],
                    epsilon=config.epsilon, epsilon_high=config.epsilon_high, beta=config.beta,
                    ref_logprobs=None if scores.ref_logprobs is None else scores.ref_logprobs[index].to(device),
                    loss_type=config.loss_type, max_completion_length=config.max_completion_length, **totals)
                self.accelerator.backward(loss)
            loss_sum += loss.item()
            weight = float(rows[3].sum()) / totals["num_tokens"]  # token-weighted means of the stats
            for key, value in stats.items():
                stats_sum[key] = stats_sum.get(key, 0.0) + value * weight
        grad_norm = float(self.accelerator.clip_grad_norm_(self.model.parameters(), config.max_grad_norm))
        finite = math.isfinite(loss_sum) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
            self.bad_steps = 0
        else:  # never let one NaN poison the weights; stop if it keeps happening
            self.optimizer.zero_grad(set_to_none=True)
            self.bad_steps += 1
        self.scheduler.step()
        return {"loss": loss_sum, "grad_norm": grad_norm, "skipped": not finite, **stats_sum}

    # -------------------------------------------------------------------- loop

    def completions_per_step(self) -> int:
        c = self.config
        return c.per_device_train_batch_size * c.gradient_accumulation_steps

    def train_step(self) -> list[dict]:
        """Collect one rollout, then `num_iterations` optimizer steps on it; one metrics row per step."""
        started = time.perf_counter()
        rollout = self.episodes.collect(self.sampler, self.completions_per_step())
        generated = time.perf_counter()
        scores = self.score(rollout)
        rewards = self.episodes.rewards(rollout, scores)
        advantages = self.episodes.advantages(rollout, rewards)
        scored = time.perf_counter()
        shared = self._rollout_metrics(rollout, scores, rewards, advantages)
        rows = []
        for _ in range(self.config.num_iterations):
            if self.step >= self.config.max_steps:
                break
            update = self._update(rollout, scores, advantages)
            self.step += 1
            now = time.perf_counter()
            row = {"step": self.step, **update, **shared, "learning_rate": self.scheduler.get_last_lr()[0],
                   "time/generate_s": generated - started, "time/score_s": scored - generated,
                   "time/step_s": now - started}
            rows.append(row)
            started = generated = scored = now
            if self.bad_steps >= self.config.max_consecutive_bad_steps:
                self._log(row, rollout, rewards)
                raise TrainingStopped(f"{self.bad_steps} consecutive steps with a non-finite loss or gradient "
                                      f"(step {self.step}); lower learning_rate or check the data")
            self._log(row, rollout, rewards)
        return rows

    def _rollout_metrics(self, rollout, scores, rewards, advantages) -> dict:
        mask = rollout.completion_mask
        lengths = mask.sum(-1).float()
        weights = getattr(self.episodes, "weights", {})  # name → weight; 0 = logged only
        total = sum(weights.get(k, 1.0) * v for k, v in rewards.items() if weights.get(k, 1.0) != 0) \
            if rewards else torch.zeros(len(rollout))
        metrics = {
            "reward/mean": float(total.mean()), "reward/std": float(total.std()) if len(total) > 1 else 0.0,
            "self_certainty/mean": float(scores.self_certainty.mean()),
            "completion_length/mean": float(lengths.mean()), "completion_length/max": float(lengths.max()),
            "completion_truncated/frac": float((mask[:, -1] & (lengths == mask.shape[1])).float().mean())
            if mask.shape[1] == self.config.max_completion_length else 0.0,
            "advantage/abs_mean": float(advantages.abs().mean()),
        }
        for name, values in rewards.items():
            metrics[f"rewards/{name}/mean"] = float(values.mean())
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
        """Train to `max_steps`, checkpointing every `save_steps` and at the end."""
        from tqdm.auto import tqdm

        history: list[dict] = []
        bar = tqdm(total=self.config.max_steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not (self.config.progress_bar and self.accelerator.is_main_process))
        last_saved = self.step
        try:
            while self.step < self.config.max_steps:
                for row in self.train_step():
                    history.append(row)
                    bar.update(1)
                    bar.set_postfix(reward=f"{row['reward/mean']:.3f}", sc=f"{row['self_certainty/mean']:.3f}",
                                    len=f"{row['completion_length/mean']:.0f}", loss=f"{row['loss']:.4f}")
                # Checkpoints fall on rollout boundaries (a mid-rollout state would need the rollout too).
                if self.step - last_saved >= self.config.save_steps or self.step >= self.config.max_steps:
                    self.save_checkpoint()
                    last_saved = self.step
        finally:
            bar.close()
            if self.metrics is not None:
                self.metrics.close()
        return history
