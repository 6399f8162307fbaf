"""Per-token log-probs and self-certainty straight from hidden states: no [B, T, V] logits.

The output layer is z = h Wᵀ (+ b). At Qwen2.5's V = 151,936 the logits of one
4,096-token sequence take 2.5 GB in fp32, and the straightforward path
(logits → log_softmax → gather, then autograd) holds several such tensors at
once. Here rows of h are processed a chunk at a time; one [C, V] fp32 buffer is
the only vocabulary-sized temporary, in the forward and in the backward.

With τ the temperature, z the chunk's logits already divided by τ, p = softmax(z)
(docs/reference.md §1):

    logp_t = z_t[y_t] − lse_t,   lse_t = logsumexp(z_t)
    sc_t   = lse_t − mean(z_t) − log V            (a reward: no gradient)
    H_t    = −Σ_j p_t[j] log p_t[j]               (optional, `entropy=True`; the entropy bonus's gradient)

Backward, with g_t = ∂L/∂logp_t and g^H_t = ∂L/∂H_t (`ops.softmax_gradient`):

    ∂L/∂z_t(raw) = [g_t (onehot(y_t) − p_t) − g^H_t p_t ⊙ (z_t − Σ_j p_t[j] z_t[j])] / τ =: e_t
    ∂L/∂h_t = e_t W        ∂L/∂W = Σ_t e_tᵀ h_t        ∂L/∂b = Σ_t e_t

`fused_token_statistics`: the forward keeps h, W and lse (N floats); the backward
recomputes each chunk's logits (one extra matmul, the price of not storing [N, V])
and accumulates ∂L/∂W over chunks. The no-grad scoring pass uses it, and so does a
step whose scoring forward is the update's (the loss is not known yet then).

`fused_token_loss`: when the loss is a sum of per-token terms L = Σ_t ℓ_t(logp_t) — the
policy loss is (`losses.PolicyObjective.token_losses`) — g_t is known as soon as
logp_t is, so e_t and the three gradients are taken in the forward from the chunk's
logits while they exist: three matmuls per chunk, as the straightforward path does,
instead of four. The backward only scales them. The trainer's update uses it.

Precision: under autocast the matmuls run in the autocast dtype (as the model's
own lm_head would), everything vocabulary-wide after them in fp32. Without
autocast, fp32 in → fp32 throughout (fp64 stays fp64, for gradcheck).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .ops import TokenStatistics, check_token_arguments, row_statistics, softmax_gradient

# Model types whose logits are exactly `lm_head(hidden)`: no soft-capping, no
# scale after the head. Anything else goes through the logits path (`fused_head`).
SUPPORTED_MODEL_TYPES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3", "olmo", "olmo2",
    "smollm3", "starcoder2", "gemma",
})
# Config fields that rescale or cap logits after the head, in the families we know.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "lm_head_multiplier",
                     "output_multiplier_scale", "logit_softcapping")


def _matmul_dtype(hidden: Tensor, weight: Tensor) -> torch.dtype:
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return torch.promote_types(hidden.dtype, weight.dtype)


class _FusedLinearLogProbs(torch.autograd.Function):
    """Rows [N, H] → (logp [N], sc [N]); see the module docstring for the maths."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature, chunk_size, mm_dtype, entropy=False):
        acc = torch.promote_types(mm_dtype, torch.float32)
        N, V = hidden.shape[0], weight.shape[0]
        device_type = hidden.device.type
        logp = torch.empty(N, dtype=acc, device=hidden.device)
        sc = torch.empty(N, dtype=acc, device=hidden.device)
        lse = torch.empty(N, dtype=acc, device=hidden.device)
        ent = torch.empty(N if entropy else 0, dtype=acc, device=hidden.device)
        log_v = math.log(V)
        with torch.autocast(device_type, enabled=False):
            w = weight.to(mm_dtype)
            b = None if bias is None else bias.to(acc)
            for start in range(0, N, chunk_size):
                end = min(start + chunk_size, N)
                z = _chunk_logits(hidden[start:end], w, b, temperature, acc)  # [C, V], the one big buffer
                logp[start:end], sc[start:end], lse[start:end], h = row_statistics(
                    z, targets[start:end], log_v, entropy)  # z is overwritten here
                if entropy:
                    ent[start:end] = h
                del z
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.temperature, ctx.chunk_size, ctx.mm_dtype = temperature, chunk_size, mm_dtype
        ctx.mark_non_differentiable(sc)
        ctx.set_materialize_grads(False)  # an output the loss does not use: None, and no work for it
        return logp, sc, ent

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_logp, grad_sc, grad_entropy):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        tau, chunk_size, mm_dtype = ctx.temperature, ctx.chunk_size, ctx.mm_dtype
        acc = lse.dtype
        N = hidden.shape[0]
        g = torch.zeros(N, dtype=acc, device=hidden.device) if grad_logp is None else grad_logp.to(acc) / tau
        g_entropy = None if grad_entropy is None else grad_entropy.to(acc) / tau  # [N]
        grads = _HeadGradients(hidden, weight, bias, acc, *ctx.needs_input_grad[:3])
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(mm_dtype)
            b = None if bias is None else bias.to(acc)
            for start in range(0, N, chunk_size):
                rows = slice(start, min(start + chunk_size, N))
                h = hidden[rows].to(mm_dtype)
                e = softmax_gradient(_chunk_logits(h, w, b, tau, acc), targets[rows], g[rows],  # recomputed z
                                     None if g_entropy is None else g_entropy[rows], lse[rows])
                grads.accumulate(e, h, w, rows)
                del e
        return *grads.result(weight, bias), None, None, None, None, None


class _HeadGradients:
    """∂L/∂h, ∂L/∂W, ∂L/∂b of the output layer, accumulated chunk by chunk (None where not needed).

    For a chunk with softmax p [C, V] and g_t = ∂L/∂logp_t / τ:  e = (onehot(y) − p)·g (`add`; a
    backward with an entropy term gets e from `ops.softmax_gradient` and hands it to `accumulate`),
    ∂h = e W,  ∂W += eᵀ h,  ∂b += Σ_t e_t. The products run in the matmul dtype (as the model's own
    head would under autocast), ∂W and ∂b accumulate in fp32 across chunks.
    """

    def __init__(self, hidden, weight, bias, acc, need_h: bool, need_w: bool, need_b: bool):
        self.acc = acc
        self.h = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device) if need_h else None
        self.w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        self.b = torch.zeros(weight.shape[0], dtype=acc, device=weight.device) if need_b and bias is not None else None

    def add(self, p: Tensor, g: Tensor, targets: Tensor, h: Tensor, w: Tensor, rows: slice) -> None:
        """One chunk: p [C, V] softmax (overwritten with e), g [C, 1], h [C, H] and w in the matmul dtype."""
        e = p.mul_(-g)  # −p·g, in place: still the one buffer
        e.scatter_add_(1, targets[:, None], g)  # + onehot(y)·g
        self.accumulate(e, h, w, rows)

    def accumulate(self, e: Tensor, h: Tensor, w: Tensor, rows: slice) -> None:
        """One chunk's e = ∂L/∂z(raw) [C, V] (e.g. `ops.softmax_gradient`'s, entropy term included)."""
        if self.b is not None:
            self.b += e.sum(dim=0)
        e_mm = e.to(w.dtype)
        if self.h is not None:
            self.h[rows] = (e_mm @ w).to(self.h.dtype)
        if self.w is not None:
            if e_mm.dtype == self.acc:
                self.w.addmm_(e_mm.t(), h)
            else:  # low-precision matmul, fp32 accumulation across chunks
                self.w += (e_mm.t() @ h).to(self.acc)

    def result(self, weight, bias) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        return (self.h, None if self.w is None else self.w.to(weight.dtype),
                None if self.b is None else self.b.to(bias.dtype))


class _FusedLinearLoss(torch.autograd.Function):
    """Rows [N, H] → (Σ_t loss_t(logp_t), logp [N], sc [N]) for a loss that is a sum of per-token
    terms (`token_loss(logp [C], positions [C]) → [C]`): the policy loss is one (losses.py).

    Each token's ∂L/∂logp_t is known as soon as its log-prob is, so the output layer's gradients
    are taken in the forward, from the chunk's logits while they exist: three matmuls per chunk
    (logits, ∂h, ∂W), as the straightforward path does, instead of the four of a recomputing
    backward. The backward only scales them by ∂(outer)/∂loss.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, positions, temperature, chunk_size, mm_dtype, token_loss):
        acc = torch.promote_types(mm_dtype, torch.float32)
        N, V = hidden.shape[0], weight.shape[0]
        logp = torch.empty(N, dtype=acc, device=hidden.device)
        sc = torch.empty(N, dtype=acc, device=hidden.device)
        loss = torch.zeros((), dtype=acc, device=hidden.device)
        grads = _HeadGradients(hidden, weight, bias, acc, *ctx.needs_input_grad[:3])
        log_v = math.log(V)
        with torch.autocast(hidden.device.type, enabled=False):
            w = weight.to(mm_dtype)
            b = None if bias is None else bias.to(acc)
            for start in range(0, N, chunk_size):
                rows = slice(start, min(start + chunk_size, N))
                h = hidden[rows].to(mm_dtype)
                z = _chunk_logits(h, w, b, temperature, acc)
                logp[rows], sc[rows], _, _ = row_statistics(z, targets[rows], log_v, False)  # z ← exp(z − max)
                with torch.enable_grad():  # ∂loss/∂logp of this chunk's tokens
                    x = logp[rows].detach().requires_grad_(True)
                    terms = token_loss(x, positions[rows])
                    (g,) = torch.autograd.grad(terms.sum(), x)
                loss += terms.detach().sum()
                p = z.div_(z.sum(dim=1, keepdim=True))  # the chunk's softmax, in the same buffer
                grads.add(p, (g / temperature)[:, None], targets[rows], h, w, rows)
                del z, p
        # Kept as an attribute, not saved tensors: the backward scales them in place and hands them over
        # (autograd then adopts ∂W as the weight's .grad instead of copying a [V, H] fp32 tensor).
        ctx.head_gradients = grads.result(weight, bias)
        ctx.mark_non_differentiable(logp, sc)
        return loss, logp, sc

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss, grad_logp, grad_sc):
        gradients, ctx.head_gradients = ctx.head_gradients, None
        scaled = [None if g is None else g.mul_(grad_loss.to(g.dtype)) for g in gradients]
        return *scaled, None, None, None, None, None, None


def _chunk_logits(h: Tensor, w: Tensor, b: Tensor | None, tau: float, acc: torch.dtype) -> Tensor:
    """[C, H] rows → [C, V] logits / τ in `acc` precision (one buffer when no cast is needed)."""
    z = h.to(w.dtype) @ w.t()
    z = z.to(acc) if z.dtype != acc else z
    if b is not None:
        z += b
    return z.div_(tau)


def fused_token_statistics(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    mask: Tensor | None = None,
    temperature: float = 1.0,
    chunk_size: int | None = None,
    bias: Tensor | None = None,
    entropy: bool = False,
) -> TokenStatistics:
    """Per-token log-probs of `targets`, self-certainty and (when `entropy`) entropy, from the
    output layer's input.

    The same results as ``ops.token_statistics(hidden @ weight.T + bias, ...)`` without ever
    holding more than `chunk_size` rows of logits: the forward keeps h, W and the logsumexp,
    and the backward recomputes each chunk's logits (module docstring). H costs one more
    elementwise pass over each chunk.

    Args:
        hidden: [B, T, H]; ``hidden[:, t]`` is the final hidden state that predicts
            ``targets[:, t]`` (what the model feeds its lm_head).
        weight: [V, H] output-layer weight (tied or not).
        targets: [B, T] token ids; masked positions are ignored (may be padding / -100).
        mask: [B, T] bool or 0/1; None = all real. Masked rows are skipped entirely
            (no logits are computed for padding).
        temperature: τ > 0, applied to every output (docs/reference.md §1).
        chunk_size: rows per [C, V] fp32 chunk, >= 1 (None → `ops.chunk_rows(V, hidden_size=H)`:
            a 64 MiB chunk, or H / 4 rows when that is more; 384 rows at Qwen2.5-1.5B's H = 1536).
        bias: [V] output-layer bias, or None.
        entropy: also compute H(p_t) = −Σ_j p_t[j] log p_t[j].

    Returns:
        `TokenStatistics`, each [B, T] float32 (float64 for float64 inputs) and 0 where
        mask == 0:
        logprobs: log softmax(z/τ)[target]; differentiable w.r.t. hidden, weight and bias.
        self_certainty: KL(U ‖ softmax(z/τ)) ≥ 0; no gradient (a reward).
        entropy: H(softmax(z/τ)), differentiable w.r.t. hidden, weight and bias (the
            entropy bonus); None unless `entropy`.
        Under autocast the matmuls run in the autocast dtype, the rest in fp32 (module docstring).

    Raises:
        ValueError: hidden not 3-D, weight not [V, H], bias not [V], targets or mask not
            [B, T], a target outside [0, V) at a real position, τ <= 0 or chunk_size < 1.
    """
    real = _RealRows.of(hidden, weight, targets, mask, temperature, chunk_size, bias)
    outputs = _FusedLinearLogProbs.apply(real.hidden, weight, bias, real.targets, float(temperature), real.chunk_size,
                                         real.mm_dtype, bool(entropy))
    return TokenStatistics(*real.scatter(outputs if entropy else outputs[:2]))


def fused_token_loss(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    token_loss,
    mask: Tensor | None = None,
    temperature: float = 1.0,
    chunk_size: int | None = None,
    bias: Tensor | None = None,
) -> tuple[Tensor, TokenStatistics]:
    """A loss that is a sum of per-token terms of log p_t, straight from the output layer's input.

    `token_loss(logp [n], positions [n]) → [n]`: the terms of n real tokens given their
    log-probs (float32, differentiable) and their flat positions in [B, T] (e.g.
    `losses.PolicyObjective.token_losses`). Returns (Σ of the terms over the real tokens, a
    scalar differentiable w.r.t. hidden, weight and bias; the detached log-probs and
    self-certainty, [B, T] each, 0 where mask == 0). The gradients are taken in the forward,
    chunk by chunk (`_FusedLinearLoss`): the same numbers as backpropagating `token_loss` through
    `fused_token_statistics`, with one matmul per chunk fewer. Other arguments as there.
    """
    real = _RealRows.of(hidden, weight, targets, mask, temperature, chunk_size, bias)
    loss, logp, sc = _FusedLinearLoss.apply(real.hidden, weight, bias, real.targets, real.positions,
                                            float(temperature), real.chunk_size, real.mm_dtype, token_loss)
    return loss, TokenStatistics(*real.scatter((logp, sc)))


class _RealRows(NamedTuple):
    """The rows of hidden [B, T, H] that a fused function works on: the real (unmasked) positions."""

    hidden: Tensor  # [n, H]
    targets: Tensor  # [n]
    positions: Tensor  # [n] flat positions in [B, T]
    shape: tuple[int, int]
    chunk_size: int
    mm_dtype: torch.dtype

    @classmethod
    def of(cls, hidden, weight, targets, mask, temperature, chunk_size, bias) -> "_RealRows":
        """Validated arguments and the real rows; padded positions are skipped entirely."""
        if hidden.dim() != 3:
            raise ValueError(f"hidden must be [B, T, H], got shape {tuple(hidden.shape)}")
        B, T, H = hidden.shape
        if weight.dim() != 2 or weight.shape[1] != H:
            raise ValueError(f"weight must be [V, {H}], got {tuple(weight.shape)}")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must be [{weight.shape[0]}], got {tuple(bias.shape)}")
        chunk_size = check_token_arguments(targets, B, T, temperature, chunk_size, vocab_size=weight.shape[0],
                                           hidden_size=H)
        rows = hidden.reshape(B * T, H)
        flat_targets = targets.to(hidden.device).reshape(-1).long()
        positions = torch.arange(B * T, device=hidden.device)
        if mask is not None:
            mask = mask.to(hidden.device).bool()
            if mask.shape != (B, T):
                raise ValueError(f"mask must be [B, T] = {(B, T)}, got {tuple(mask.shape)}")
            if not bool(mask.all()):
                positions = mask.reshape(-1).nonzero().squeeze(1)
                rows, flat_targets = rows.index_select(0, positions), flat_targets.index_select(0, positions)
        if bool(((flat_targets < 0) | (flat_targets >= weight.shape[0])).any()):
            raise ValueError("targets at unmasked positions must be token ids in [0, V)")
        return cls(rows, flat_targets, positions, (B, T), chunk_size, _matmul_dtype(hidden, weight))

    def scatter(self, outputs) -> list[Tensor]:
        """Per-row outputs [n] back to [B, T], zeros at the padded positions."""
        B, T = self.shape
        if len(self.positions) == B * T:
            return [o.view(B, T) for o in outputs]
        return [torch.zeros(B * T, dtype=o.dtype, device=o.device).index_copy(0, self.positions, o).view(B, T)
                for o in outputs]


# --------------------------------------------------------------- models


def fused_head(model) -> nn.Linear | None:
    """The model's output layer when its logits are exactly `lm_head(hidden)`, else None.

    None (use the logits path) for unknown architectures and for configs that cap
    or rescale logits after the head (Gemma 2's soft-capping, Cohere's logit_scale,
    Granite's logits_scaling, ...): the fused maths would silently differ there.
    """
    inner = getattr(model, "module", model)  # DDP / accelerate wrappers
    config = getattr(inner, "config", None)
    get_head = getattr(inner, "get_output_embeddings", None)
    if config is None or get_head is None:
        return None
    if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return None
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return None
    head = get_head()
    return head if type(head) is nn.Linear else None


@contextmanager
def capture_head_input(head: nn.Module):
    """Within the block, `head` records its input and computes logits for zero positions.

    Yields the list the inputs are appended to. The model's forward runs as usual
    (wrappers, hooks, DDP bookkeeping included); only its vocabulary projection is
    skipped: a [B, 0, V] tensor comes out instead of [B, T, V].
    """
    captured: list[Tensor] = []

    def hook(module, args):
        captured.append(args[0])
        return (args[0][..., :0, :],)

    handle = head.register_forward_pre_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
