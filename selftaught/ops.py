"""Tensor maths on model outputs: per-token log-probs, self-certainty, masks.

Notation (docs/reference.md §1): z_t ∈ R^V are the logits that predict completion token
o_t, τ the sampling temperature, p_t = softmax(z_t / τ).

    log p_t(o_t) = z_t[o_t]/τ − logsumexp(z_t/τ)
    sc_t = KL(U ‖ p_t) = −(1/V) Σ_j log(V · p_t[j]) = logsumexp(z_t/τ) − mean(z_t/τ) − log V
    H_t  = −Σ_j p_t[j] log p_t[j] = log S − (Σ_j e_j u_j) / S     (optional: `entropy=True`)

with u = z/τ − max(z/τ), e = exp(u), S = Σ e (RENT's per-token entropy, at the
sampling temperature). All need only a logsumexp, a gather and a mean per row
(plus one row-wise dot product e·u for H), so they are computed
chunk by chunk over the flattened [B*T, V] rows, casting one chunk at a time to
fp32. A [B, T, V] fp32 log-softmax is never built: with V = 151,936 it would be
0.6 MB per token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import Tensor

# A chunk is sized by bytes, not rows: its fp32 [C, V] buffer takes DEFAULT_CHUNK_BYTES,
# so C = DEFAULT_CHUNK_BYTES / (V · 4) (110 rows at Qwen2.5's V = 151,936; at least 1).
# The peak is a few such buffers (the cast, z/τ, logsumexp's exp): ~0.25 GiB, under
# the bf16 logits of any batch above ~850 tokens at that V, and under 1/8 of what a
# straightforward log_softmax path holds (benchmarks/bench_logprobs.py). A fixed row
# count would grow with V instead: 2048 rows are 1.24 GB per buffer at that V.
DEFAULT_CHUNK_BYTES = 64 << 20

# The fused path (hidden states → head → statistics) knows the hidden size H too, and
# there a chunk may take up to a quarter of the fp32 weight gradient the backward
# produces anyway: C · V · 4 ≤ (V · H · 4) / 4, i.e. C = H / 4 rows, whatever V. Its
# backward reads and writes that [V, H] gradient once per chunk (∂W += eᵀ h, a product
# whose inner dimension is C), so too few rows make it a memory-bound sweep per
# handful of tokens: at Qwen2.5-1.5B sizes on the CPU, 110 rows took 1.48× the
# straightforward path's time and 256 rows 0.86× (README "Performance").
WEIGHT_GRADIENT_SHARE = 4


def chunk_rows(vocab_size: int, chunk_size: int | None = None, budget_bytes: int | None = None,
               hidden_size: int | None = None) -> int:
    """Rows per fp32 chunk: `chunk_size` when given; else budget // (V · 4) (budget:
    `budget_bytes`, default DEFAULT_CHUNK_BYTES), raised to H / WEIGHT_GRADIENT_SHARE rows
    when the caller projects hidden states of size `hidden_size` itself; at least 1."""
    if chunk_size is not None:
        return int(chunk_size)
    budget = DEFAULT_CHUNK_BYTES if budget_bytes is None else int(budget_bytes)
    rows = budget // (4 * max(1, int(vocab_size)))
    if hidden_size is not None:
        rows = max(rows, int(hidden_size) // WEIGHT_GRADIENT_SHARE)
    return max(1, rows)


class TokenStatistics(NamedTuple):
    """Per-token outputs of one scoring pass, each [B, T] and 0 where mask == 0.

    logprobs: log p_t(o_t) (differentiable); self_certainty: sc_t; entropy: H(p_t),
    or None when not asked for (sc_t carries no gradient; H_t does, for the entropy bonus).
    """

    logprobs: Tensor
    self_certainty: Tensor
    entropy: Tensor | None = None


# Rows of exp(u) alive at once when H is asked for. CPU: one row (600 KB at V = 151,936) stays in
# cache, which measured fastest (2-8 rows were slower); GPU: enough rows to keep the kernels large.
ENTROPY_BLOCK_ROWS = {"cpu": 1}
ENTROPY_BLOCK_ROWS_DEFAULT = 256


def row_statistics(z: Tensor, targets: Tensor, log_v: float, entropy: bool) -> tuple[Tensor, ...]:
    """One [C, V] chunk of z = logits/τ (overwritten in place: the only big buffer) →
    (log p(target), sc, lse, H or an empty tensor), each [C].

    With u = z − max, e = exp(u), S = Σ e: lse = max + log S, and
    H = log S − Σ e·u / S. Without H, e overwrites u in place. With H, both are needed:
    e is made a few rows at a time (ENTROPY_BLOCK_ROWS; a small buffer) and Σ e·u is a
    row-wise dot product (bmm); u is clamped to the dtype's finite range first, so a
    −inf logit gives e·u = 0·(finite) = 0, not NaN.
    """
    tgt = z.gather(1, targets[:, None]).squeeze(1)
    mean = z.mean(dim=1)
    zmax = z.amax(dim=1)
    u = z.sub_(zmax[:, None])  # z is overwritten here
    if entropy:
        total, dot = torch.empty_like(zmax), torch.empty_like(zmax)
        lowest = torch.finfo(u.dtype).min
        rows = ENTROPY_BLOCK_ROWS.get(u.device.type, ENTROPY_BLOCK_ROWS_DEFAULT)
        for i in range(0, u.shape[0], rows):
            block = u[i:i + rows].clamp_(min=lowest)
            e = block.exp()
            total[i:i + rows] = e.sum(dim=1)
            dot[i:i + rows] = torch.bmm(e[:, None, :], block[:, :, None]).view(-1)
        log_total = total.log()
        h = log_total - dot / total
    else:
        total = u.exp_().sum(dim=1)
        log_total = total.log()
        h = z.new_empty(0)
    lse = zmax + log_total
    return tgt - lse, lse - mean - log_v, lse, h


def _row_chunks(logits: Tensor, chunk_size: int):
    """Yield (start, end, rows) with rows = logits flattened to [B*T, V] [start:end].

    A slice such as ``logits[:, P-1:P+T-1]`` (the positions that predict the completion)
    cannot be viewed as [B*T, V] without a full copy, so in that case each chunk
    is gathered from per-sequence views: only one chunk is ever copied.
    """
    B, T, V = logits.shape
    n = B * T
    try:
        flat = logits.view(n, V)
    except RuntimeError:
        flat = None
    for start in range(0, n, chunk_size):
        end = min(start + chunk_size, n)
        if flat is not None:
            yield start, end, flat[start:end]
            continue
        pieces = []
        i = start
        while i < end:
            b, t = divmod(i, T)
            t_end = min(T, t + (end - i))
            pieces.append(logits[b, t:t_end])
            i += t_end - t
        yield start, end, torch.cat(pieces, dim=0)


def _compute_dtype(logits: Tensor) -> torch.dtype:
    # fp32 for bf16/fp16/fp32 inputs; fp64 stays fp64 (lets gradcheck run).
    return torch.promote_types(logits.dtype, torch.float32)


def _scaled(rows: Tensor, acc: torch.dtype, temperature: float) -> Tensor:
    """rows / τ in `acc` as one new [C, V] buffer (rows itself is never written)."""
    if rows.dtype == acc:
        return rows / temperature
    return rows.to(acc).div_(temperature)


class _ChunkedLogProbs(torch.autograd.Function):
    """log p(target) and self-certainty, chunked, with a recomputing backward.

    Autograd through a plain chunked loop would keep every fp32 chunk alive for
    the logsumexp backward (i.e. the whole [B*T, V] in fp32 after all). Here the
    forward keeps only the input logits (already alive in the model's graph) and
    the backward recomputes softmax chunk by chunk:

        ∂ log p(y)/∂ z_j = (1[j = y] − p_j) / τ
    """

    @staticmethod
    def forward(ctx, logits, targets, mask, temperature, chunk_size, entropy=False):
        B, T, V = logits.shape
        acc = _compute_dtype(logits)
        logp = torch.zeros(B * T, dtype=acc, device=logits.device)
        sc = torch.zeros(B * T, dtype=acc, device=logits.device)
        ent = torch.zeros(B * T if entropy else 0, dtype=acc, device=logits.device)
        flat_targets = targets.reshape(-1)
        log_v = math.log(V)
        # Everything here is vocabulary-wide maths in `acc`: autocast would run H's row-wise dot (bmm) in bf16.
        with torch.autocast(logits.device.type, enabled=False):
            for start, end, rows in _row_chunks(logits, chunk_size):
                z = _scaled(rows, acc, temperature)  # [C, V] fp32, the only large temporary
                logp[start:end], sc[start:end], _, h = row_statistics(z, flat_targets[start:end], log_v, entropy)
                if entropy:
                    ent[start:end] = h
                del z
        flat_mask = mask.reshape(-1)
        logp = torch.where(flat_mask, logp, 0.0).view(B, T)
        sc = torch.where(flat_mask, sc, 0.0).view(B, T)
        if entropy:
            ent = torch.where(flat_mask, ent, 0.0).view(B, T)
        ctx.save_for_backward(logits, targets, mask)
        ctx.temperature = temperature
        ctx.chunk_size = chunk_size
        ctx.mark_non_differentiable(sc)  # a reward: no gradient through it
        ctx.set_materialize_grads(False)  # an output the loss does not use: None, and no work for it
        return logp, sc, ent

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_logp, grad_sc, grad_entropy):
        logits, targets, mask = ctx.saved_tensors
        B, T, V = logits.shape
        tau = ctx.temperature
        # Masked outputs are constant 0, so their incoming gradient must not leak.
        acc = _compute_dtype(logits)
        g = _output_gradient(grad_logp, mask, acc, tau)  # [B*T]
        g_entropy = None if grad_entropy is None else _output_gradient(grad_entropy, mask, acc, tau)
        flat_targets = targets.reshape(-1)
        flat_mask = mask.reshape(-1)
        grad = torch.empty((B * T, V), dtype=logits.dtype, device=logits.device)
        for start, end, rows in _row_chunks(logits, ctx.chunk_size):
            z = _scaled(rows, acc, tau)
            chunk_grad = softmax_gradient(z, flat_targets[start:end], g[start:end],
                                          None if g_entropy is None else g_entropy[start:end])
            # a fill, not g = 0 alone: a NaN/inf logit at a padded position must not leak.
            chunk_grad.masked_fill_(~flat_mask[start:end].unsqueeze(-1), 0.0)
            grad[start:end].copy_(chunk_grad)  # casts to the logits' dtype without another chunk
        return grad.view(B, T, V), None, None, None, None, None


def _output_gradient(grad: Tensor | None, mask: Tensor, acc: torch.dtype, tau: float) -> Tensor:
    """An output's incoming gradient [B, T] as [B*T] in `acc`, 0 at masked positions, divided by τ
    (z = logits/τ); an unused output (None) is all zeros."""
    if grad is None:
        return torch.zeros(mask.numel(), dtype=acc, device=mask.device)
    return torch.where(mask, grad.to(acc), 0.0).reshape(-1) / tau


def softmax_gradient(z: Tensor, targets: Tensor, g: Tensor, g_entropy: Tensor | None = None,
                     lse: Tensor | None = None) -> Tensor:
    """∂L/∂z of one [C, V] chunk of z = logits/τ (overwritten: the result is returned in its place,
    plus one more [C, V] buffer when `g_entropy` is given), where g = ∂L/∂log p(y) and
    g_entropy = ∂L/∂H, both [C]:

        ∂ log p(y)/∂z_j = 1[j = y] − p_j        ∂H/∂z_j = −p_j (z_j − Σ_k p_k z_k)

    `lse` (optional, [C]): logsumexp(z) when the caller already has it.
    """
    if lse is None:
        lse = torch.logsumexp(z, dim=-1)
    if g_entropy is None:
        grad = z.sub_(lse[:, None]).exp_().mul_(-g[:, None])  # −p·g, in place: still one buffer
    else:
        z.clamp_(min=torch.finfo(z.dtype).min)  # a −inf logit: p = 0 and a finite z − z̄, not 0·inf
        p = (z - lse[:, None]).exp_()
        mean_z = torch.bmm(p[:, None, :], z[:, :, None]).view(-1, 1)  # Σ_k p_k z_k without a [C, V] product
        grad = z.sub_(mean_z).mul_(p).mul_(-g_entropy[:, None])  # −p (z − z̄) g_H
        grad.sub_(p.mul_(g[:, None]))  # − p g
    grad.scatter_add_(1, targets[:, None], g[:, None])  # + onehot(y) g
    return grad


def check_token_arguments(targets: Tensor, B: int, T: int, temperature: float, chunk_size: int | None,
                          vocab_size: int, hidden_size: int | None = None) -> int:
    """Validate the arguments shared by the logits and fused paths; returns the chunk's rows
    (`chunk_rows`: None → from the byte budget at `vocab_size`, and `hidden_size` for the fused path)."""
    if targets.shape != (B, T):
        raise ValueError(f"targets must be [B, T] = {(B, T)}, got {tuple(targets.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    chunk_size = chunk_rows(vocab_size, chunk_size, hidden_size=hidden_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return chunk_size


def token_statistics(
    logits: Tensor,
    targets: Tensor,
    mask: Tensor | None = None,
    temperature: float = 1.0,
    chunk_size: int | None = None,
    entropy: bool = False,
) -> TokenStatistics:
    """Per-token log-probs of `targets`, self-certainty and (when `entropy`) entropy, from logits.

    Computed chunk by chunk over the flattened [B*T, V] rows, one fp32 chunk at a time
    (module docstring): no [B, T, V] fp32 tensor exists, forward or backward. H costs one
    more elementwise pass over each chunk, no extra forward.

    Args:
        logits: [B, T, V], any float dtype (bf16 fine); ``logits[:, t]`` predicts
            ``targets[:, t]`` (``logits[:, P-1:P+T-1]`` of a prompt+completion forward;
            such a non-contiguous slice is read a chunk at a time, never copied whole).
        targets: [B, T] long token ids. Values at masked positions are ignored
            (they may be padding or out of range, e.g. -100).
        mask: [B, T] bool or 0/1; None means all positions are real.
        temperature: τ > 0; logits are divided by it (in fp32) before the softmax,
            for every output (docs/reference.md §1: the same τ as sampling).
        chunk_size: rows of the flattened [B*T, V] processed per fp32 chunk, >= 1
            (None → `chunk_rows(V)`: a 64 MiB fp32 chunk, 110 rows at V = 151,936).
        entropy: also compute H(p_t) = −Σ_j p_t[j] log p_t[j].

    Returns:
        `TokenStatistics`, each [B, T] float32 (float64 for float64 logits) and exactly
        0 where mask == 0:
        logprobs: log softmax(z/τ)[target]; differentiable w.r.t. logits.
        self_certainty: KL(U ‖ softmax(z/τ)) ≥ 0; no gradient (a reward).
        entropy: H(softmax(z/τ)), differentiable w.r.t. logits (the entropy bonus);
            None unless `entropy`.
        The backward recomputes the softmax chunk by chunk (only the input logits are
        saved) and writes a logits gradient of the logits' dtype, 0 at masked positions.

    Raises:
        ValueError: logits not 3-D, targets or mask not [B, T], τ <= 0 or chunk_size < 1.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be [B, T, V], got shape {tuple(logits.shape)}")
    B, T, V = logits.shape
    chunk_size = check_token_arguments(targets, B, T, temperature, chunk_size, vocab_size=V)
    if mask is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=logits.device)
    else:
        mask = mask.to(device=logits.device).bool()
        if mask.shape != (B, T):
            raise ValueError(f"mask must be [B, T] = {(B, T)}, got {tuple(mask.shape)}")
    # Masked targets may be padding ids such as -100: make them safe to gather.
    targets = torch.where(mask, targets.to(logits.device).long(), 0)
    logp, sc, ent = _ChunkedLogProbs.apply(logits, targets, mask, float(temperature), chunk_size, bool(entropy))
    return TokenStatistics(logp, sc, ent if entropy else None)


def sequence_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` [B, T] over each row's masked positions -> [B].

    Rows with no real token give 0 (never NaN, even if masked values are inf/NaN).
    """
    mask = mask.bool()
    total = torch.where(mask, values, 0.0).sum(dim=-1)
    count = mask.sum(dim=-1).clamp(min=1)
    return total / count


def completion_mask(
    completion_ids: Tensor,
    eos_token_id: int | Iterable[int],
    pad_token_id: int | None = None,
) -> Tensor:
    """Which completion tokens are real: [B, T] ids -> [B, T] bool.

    True up to and including the first EOS of each row, False after it; a row
    without EOS (truncated at max length) is all True. `eos_token_id` may be one
    id or several (e.g. Qwen's <|im_end|> and <|endoftext|>).

    `pad_token_id` (optional): where a row has no EOS before its first pad token,
    the pad and everything after it are False. HF `generate` pads rows that
    stopped on `stop_strings` or a custom stopping criterion without writing an
    EOS. A pad id that is also an EOS id is treated as EOS (kept).
    """
    if isinstance(eos_token_id, int):
        eos_ids = [eos_token_id]
    else:
        eos_ids = [int(e) for e in eos_token_id]
    eos_ids_t = torch.tensor(eos_ids, dtype=completion_ids.dtype, device=completion_ids.device)
    is_eos = torch.isin(completion_ids, eos_ids_t).int()
    # Real while no EOS occurred strictly before this position.
    mask = (is_eos.cumsum(dim=-1) - is_eos) == 0
    if pad_token_id is not None and pad_token_id not in eos_ids:
        is_pad = (completion_ids == pad_token_id).int()
        mask &= is_pad.cumsum(dim=-1) == 0
    return mask


def truncated_rows(completion_ids: Tensor, completion_mask: Tensor, eos_token_ids: Iterable[int]) -> Tensor:
    """[N] bool: completions whose last real token is not an EOS, i.e. that hit the length limit
    (or stopped for another reason) before ending; a completion without tokens is not truncated."""
    mask = completion_mask.bool()
    lengths = mask.sum(dim=-1)
    last = completion_ids.gather(1, (lengths - 1).clamp(min=0)[:, None]).squeeze(1)
    eos = torch.tensor(list(eos_token_ids), dtype=completion_ids.dtype, device=completion_ids.device)
    return (lengths > 0) & ~torch.isin(last, eos)
