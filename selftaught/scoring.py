"""The no-grad scoring pass, shared by the trainer and `selftaught diagnose`.

One forward per micro-batch gives every token-level quantity a reward may need:
log π(o_t) (the PPO ratio's π_old, and `trajectory_logprob`), sc_t
(self-certainty) and, when asked, H(p_t) (`token_entropy`). The extra sources
cost one elementwise pass over each logits chunk, never another forward.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple

import torch

from .fused_logprobs import capture_head_input, fused_head, fused_token_loss, fused_token_statistics
from .ops import TokenStatistics, sequence_mean, token_statistics
from .rewards import Scores


def completion_token_statistics(model, prompt_ids, prompt_mask, completion_ids, completion_mask, *,
                                temperature: float, chunk_size: int | None, fused: bool = True,
                                entropy: bool = False) -> TokenStatistics:
    """log π(o_t | q, o_<t), sc_t and (if `entropy`) H(p_t) for every completion token, [n, T] each.

    One forward of `model` over prompt + completion. Position P-1+t of that sequence
    predicts completion token t; only those T positions reach the output layer
    (`logits_to_keep`). Position ids follow the attention mask, as in `generate`, so left
    padding of the prompt does not shift them.

    `fused` (default): the lm_head's input is captured and the statistics come from
    `fused_logprobs.fused_token_statistics` chunk by chunk, so no [n, T, V] logits tensor
    exists (forward or backward). Models whose logits are not exactly `lm_head(hidden)`
    (soft-capping, logit scales, unknown architectures: `fused_logprobs.fused_head`), and
    `fused=False`, use the logits path, `ops.token_statistics` on the model's logits.

    Args:
        model: a causal LM (HF interface; DDP / accelerate wrappers fine).
        prompt_ids, prompt_mask: [n, P] token ids and 0/1 mask, left padded.
        completion_ids, completion_mask: [n, T] token ids and 0/1 or bool mask of the real
            completion tokens (padding after EOS is 0; its ids are ignored).
        temperature: τ > 0, the sampling temperature; every output is of softmax(z/τ).
        chunk_size: rows per fp32 chunk (None → `ops.chunk_rows`: the 64 MiB budget, on the fused
            path at least H / 4 rows).
        fused: take the fused path when the model allows it.
        entropy: also compute H(p_t).

    Returns:
        `ops.TokenStatistics`, each [n, T] float32 (float64 for a float64 model) and 0
        where completion_mask == 0: logprobs (differentiable w.r.t. the model's parameters
        when grad is enabled), self_certainty (no gradient: a reward), entropy
        (differentiable; None unless `entropy`).
    """
    inputs = _forward_inputs(prompt_ids, prompt_mask, completion_ids, completion_mask)
    head = fused_head(model) if fused else None
    if head is None:
        logits = model(**inputs).logits[:, :-1]
        return token_statistics(logits, completion_ids, completion_mask, temperature=temperature,
                                chunk_size=chunk_size, entropy=entropy)
    return fused_token_statistics(_head_input(model, inputs, head), head.weight, completion_ids, completion_mask,
                                  temperature=temperature, chunk_size=chunk_size, bias=head.bias, entropy=entropy)


def completion_token_loss(model, prompt_ids, prompt_mask, completion_ids, completion_mask, *, token_loss,
                          temperature: float, chunk_size: int | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(loss, detached log π(o_t) [n, T]) of a loss that is a sum of per-token terms of the log-probs
    (`token_loss`, see `fused_logprobs.fused_token_loss`), its head's gradients taken in the forward;
    None for a model the fused path does not cover (the caller then uses the log-probs' graph)."""
    head = fused_head(model)
    if head is None:
        return None
    hidden = _head_input(model, _forward_inputs(prompt_ids, prompt_mask, completion_ids, completion_mask), head)
    loss, stats = fused_token_loss(hidden, head.weight, completion_ids, token_loss, completion_mask,
                                   temperature=temperature, chunk_size=chunk_size, bias=head.bias)
    return loss, stats.logprobs


def _forward_inputs(prompt_ids, prompt_mask, completion_ids, completion_mask) -> dict:
    """The model's keyword arguments for one forward over prompt + completion (alignment: see above)."""
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask, completion_mask], dim=1).long()
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return dict(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                logits_to_keep=completion_ids.shape[1] + 1, use_cache=False)


def _head_input(model, inputs: dict, head) -> torch.Tensor:
    """The states [n, T, H] that predict completion tokens 0..T-1: the lm_head's input, captured."""
    with capture_head_input(head) as captured:
        model(**inputs)
    if len(captured) != 1:
        raise RuntimeError(f"expected one lm_head call in the forward pass, saw {len(captured)}")
    return captured[0][:, :-1]


class MicroBatch(NamedTuple):
    """One micro-batch of a rollout's rows, on the device that scores or trains on them."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor

    @classmethod
    def of(cls, rollout, index: slice, device) -> "MicroBatch":
        return cls(*(t[index].to(device) for t in (rollout.prompt_ids, rollout.prompt_mask,
                                                   rollout.completion_ids, rollout.completion_mask)))


def micro_batches(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` of `n` rows."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


class ModelScores(NamedTuple):
    """One model's scores of a rollout's completions, detached and on the CPU: log π(o_t) [N, T],
    self-certainty per completion [N] (the mean of sc_t over its tokens), H(p_t) [N, T] or None."""

    logprobs: torch.Tensor
    self_certainty: torch.Tensor
    entropy: torch.Tensor | None = None

    @classmethod
    def of(cls, stats: TokenStatistics, completion_mask: torch.Tensor) -> "ModelScores":
        return cls(stats.logprobs.detach().cpu(), sequence_mean(stats.self_certainty, completion_mask).cpu(),
                   None if stats.entropy is None else stats.entropy.float().cpu())

    @staticmethod
    def concat(parts: list["ModelScores"]) -> "ModelScores":
        return ModelScores(torch.cat([p.logprobs for p in parts]), torch.cat([p.self_certainty for p in parts]),
                           torch.cat([p.entropy for p in parts]) if parts and parts[0].entropy is not None else None)


@torch.no_grad()
def score_model(model, rollout, *, temperature: float, chunk_size: int | None, batch_size: int, device,
                fused: bool = True, entropy: bool = False, autocast=nullcontext) -> ModelScores:
    """`model`'s scores of every completion of `rollout`, `batch_size` rows per forward."""
    parts = []
    for index in micro_batches(len(rollout), batch_size):
        rows = MicroBatch.of(rollout, index, device)
        with autocast():
            stats = completion_token_statistics(model, *rows, temperature=temperature, chunk_size=chunk_size,
                                                fused=fused, entropy=entropy)
        parts.append(ModelScores.of(stats, rows.completion_mask))
    return ModelScores.concat(parts)


def score_rollout(model, rollout, *, temperature: float, chunk_size: int | None, batch_size: int, device,
                  fused: bool = True, entropy: bool = False, reference=None, reference_context=nullcontext,
                  autocast=nullcontext, policy: ModelScores | None = None) -> Scores:
    """Scores of every completion of `rollout`, `batch_size` rows per forward.

    `reference` (optional): a second model scored alike (log-probs and self-certainty)
    inside `reference_context()` (e.g. LoRA's `disable_adapter`). `autocast`: the
    mixed-precision context of the caller (accelerate's). `policy`: the policy's scores when
    the caller already has them (the trainer's one-forward step); else `model` is scored here.
    The model's train/eval mode is the caller's business.
    """
    kwargs = {"temperature": temperature, "chunk_size": chunk_size, "batch_size": batch_size, "device": device,
              "fused": fused, "autocast": autocast}
    if policy is None:
        policy = score_model(model, rollout, entropy=entropy, **kwargs)
    ref = None
    if reference is not None:
        with reference_context():
            ref = score_model(reference, rollout, **kwargs)
    return Scores(old_logprobs=policy.logprobs, self_certainty=policy.self_certainty,
                  ref_logprobs=None if ref is None else ref.logprobs,
                  ref_self_certainty=None if ref is None else ref.self_certainty,
                  token_entropy=policy.entropy, completion_mask=rollout.completion_mask.bool().cpu())
