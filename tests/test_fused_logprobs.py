"""The fused path (hidden states + lm_head weight, no [B, T, V] logits) against the
straightforward one: full logits, log-softmax, autograd. Values and gradients,
with masking, padding ids, temperature, bias, chunk sizes that do not divide the rows."""

import math

import pytest
import torch

from selftaught.fused_logprobs import (
    capture_head_input,
    fused_head,
    fused_token_statistics,
)
from selftaught.ops import token_statistics


def straightforward(hidden, weight, targets, mask, temperature, bias=None):
    """Full logits → log_softmax → gather; sc = −mean(log p) − log V. Masked positions 0."""
    logits = hidden @ weight.t()
    if bias is not None:
        logits = logits + bias
    logp_all = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)) / temperature, -1)
    safe = torch.where(mask, targets, 0)
    logp = logp_all.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    sc = (-logp_all.mean(-1) - math.log(weight.shape[0])).detach()
    return torch.where(mask, logp, 0.0), torch.where(mask, sc, 0.0)


def make_case(B=3, T=7, H=16, V=37, seed=0, dtype=torch.float32, pad_id=-100):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, H, generator=g, dtype=dtype)
    weight = (torch.randn(V, H, generator=g, dtype=dtype) * 0.5)
    bias = torch.randn(V, generator=g, dtype=dtype) * 0.1
    targets = torch.randint(0, V, (B, T), generator=g)
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[1] = False  # a row that is all padding
    mask[0, 0] = True
    mask[-1, -2:] = False  # right padding after an EOS
    targets = torch.where(mask, targets, pad_id)  # padding ids that are not valid tokens
    return hidden, weight, bias, targets, mask


def grads(fn, hidden, weight, bias, upstream):
    leaves = [t.detach().clone().requires_grad_(True) for t in (hidden, weight, bias)]
    logp, sc = fn(*leaves)
    (logp * upstream).sum().backward()
    return logp.detach(), sc, [t.grad for t in leaves]


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
@pytest.mark.parametrize("chunk_size", [1, 4, 5, 1000])
@pytest.mark.parametrize("use_bias", [False, True])
def test_values_and_gradients_match_straightforward(temperature, chunk_size, use_bias):
    hidden, weight, bias, targets, mask = make_case()
    upstream = torch.randn(mask.shape, generator=torch.Generator().manual_seed(1))
    b = bias if use_bias else torch.zeros_like(bias)

    def fused(h, w, bb):
        return fused_token_statistics(h, w, targets, mask, temperature, chunk_size,
                                      bias=bb if use_bias else None)[:2]

    def plain(h, w, bb):
        return straightforward(h, w, targets, mask, temperature, bias=bb if use_bias else None)

    logp, sc, g = grads(fused, hidden, weight, b, upstream)
    ref_logp, ref_sc, ref_g = grads(plain, hidden, weight, b, upstream)
    assert logp.dtype == sc.dtype == torch.float32 and logp.shape == sc.shape == mask.shape
    torch.testing.assert_close(logp, ref_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sc, ref_sc, atol=1e-5, rtol=1e-5)
    assert not sc.requires_grad
    assert (logp[~mask] == 0).all() and (sc[~mask] == 0).all()
    for name, got, want in zip(("hidden", "weight", "bias"), g, ref_g):
        if name == "bias" and not use_bias:
            assert got is None
            continue
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=name)
    assert (g[0][1] == 0).all(), "an all-padding row must get no gradient"


def test_matches_the_logits_path_of_ops():
    hidden, weight, _, targets, mask = make_case(seed=3)
    fused = fused_token_statistics(hidden, weight, targets, mask, 0.9, 3)[:2]
    logits = token_statistics(hidden @ weight.t(), targets, mask, 0.9, 3)[:2]
    for a, b in zip(fused, logits):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gradcheck_float64():
    hidden, weight, bias, targets, mask = make_case(B=3, T=4, H=5, V=9, dtype=torch.float64)
    leaves = [t.requires_grad_(True) for t in (hidden, weight, bias)]
    assert torch.autograd.gradcheck(
        lambda h, w, b: fused_token_statistics(h, w, targets, mask, 0.8, 3, bias=b).logprobs, leaves)


def test_frozen_weight_or_hidden_gets_no_gradient_and_no_error():
    hidden, weight, _, targets, mask = make_case()
    h = hidden.clone().requires_grad_(True)
    logp = fused_token_statistics(h, weight, targets, mask, 1.0, 4).logprobs
    logp.sum().backward()
    assert h.grad is not None and weight.grad is None
    w = weight.clone().requires_grad_(True)
    logp = fused_token_statistics(hidden, w, targets, mask, 1.0, 4).logprobs
    logp.sum().backward()
    assert w.grad is not None


def test_all_masked_gives_zeros_and_a_usable_graph():
    hidden, weight, _, targets, _ = make_case()
    mask = torch.zeros(targets.shape, dtype=torch.bool)
    h = hidden.clone().requires_grad_(True)
    logp, sc, _ = fused_token_statistics(h, weight, targets, mask)
    logp.sum().backward()
    assert (logp == 0).all() and (sc == 0).all() and (h.grad == 0).all()


def test_no_mask_and_non_contiguous_hidden():
    hidden, weight, _, targets, _ = make_case(T=8)
    targets = targets.clamp(min=0)
    sliced = hidden[:, :-1]  # as the trainer slices the captured states
    mask = torch.ones(sliced.shape[:2], dtype=torch.bool)
    got = fused_token_statistics(sliced, weight, targets[:, :-1], None, 1.3, 5)[:2]
    want = straightforward(sliced, weight, targets[:, :-1], mask, 1.3)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_matches_the_autocast_logits_path():
    hidden, weight, _, targets, mask = make_case(H=32, V=64)
    upstream = torch.randn(mask.shape)
    results = []
    for fused in (True, False):
        h, w = hidden.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if fused:
                logp, sc, _ = fused_token_statistics(h, w, targets, mask, 0.9, 4)
            else:
                logits = torch.nn.functional.linear(h, w)  # bf16 under autocast, as a model's lm_head
                logp, sc, _ = token_statistics(logits, targets, mask, 0.9, 4)
        assert logp.dtype == torch.float32
        (logp * upstream).sum().backward()
        assert h.grad.dtype == h.dtype and w.grad.dtype == w.dtype
        results.append((logp.detach(), sc, h.grad, w.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)
    # and close to the fp32 truth (bf16 matmul, fp32 softmax)
    torch.testing.assert_close(results[0][0], straightforward(hidden, weight, targets, mask, 0.9)[0],
                               atol=5e-2, rtol=5e-2)


def test_rejects_bad_shapes_and_out_of_range_targets():
    hidden, weight, _, targets, mask = make_case()
    with pytest.raises(ValueError, match="hidden"):
        fused_token_statistics(hidden[0], weight, targets, mask)
    with pytest.raises(ValueError, match="weight"):
        fused_token_statistics(hidden, weight[:, :3], targets, mask)
    with pytest.raises(ValueError, match="temperature"):
        fused_token_statistics(hidden, weight, targets, mask, 0.0)
    with pytest.raises(ValueError, match="targets"):
        fused_token_statistics(hidden, weight, targets, None)  # -100 at real positions


# ------------------------------------------------------------------ models


def test_capture_head_input_skips_the_vocabulary_projection():
    from selftaught.models import load_model

    model, tokenizer = load_model("tiny-random")
    ids = torch.randint(0, len(tokenizer), (2, 6))
    head = fused_head(model)
    assert head is model.lm_head
    seen = []
    handle = head.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    with capture_head_input(head) as captured:
        out = model(input_ids=ids, logits_to_keep=4)
    handle.remove()
    assert seen == [torch.Size([2, 0, len(tokenizer)])] and out.logits.shape[1] == 0
    full = model(input_ids=ids, logits_to_keep=4).logits
    torch.testing.assert_close(head(captured[0]), full)


def test_fused_head_refuses_logit_transforms_and_unknown_models():
    from transformers import Gemma2Config, Gemma2ForCausalLM, Qwen2Config, Qwen2ForCausalLM

    small = dict(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                 num_attention_heads=2, num_key_value_heads=1, head_dim=8)
    assert fused_head(Qwen2ForCausalLM(Qwen2Config(**small))) is not None
    assert fused_head(Gemma2ForCausalLM(Gemma2Config(**small, final_logit_softcapping=30.0))) is None
    assert fused_head(torch.nn.Linear(3, 3)) is None


# ------------------------------------------------------------------ the loss with its head gradients in the forward


@pytest.mark.parametrize("temperature,chunk_size", [(1.0, 1), (0.7, 4), (1.6, 1000)])
@pytest.mark.parametrize("use_bias", [False, True])
@pytest.mark.parametrize("loss_type,beta", [("token_mean", 0.0), ("seq_mean", 0.04), ("dr_grpo", 0.04)])
def test_fused_token_loss_is_the_policy_loss_of_the_straightforward_path(temperature, chunk_size, use_bias,
                                                                         loss_type, beta):
    """The GRPO loss (clip, KL, importance weights, every aggregation) through full logits and autograd,
    against `fused_token_loss`, whose head gradients are taken in the forward: loss, log-probs,
    self-certainty and the gradients of hidden states, weight and bias."""
    from selftaught.fused_logprobs import fused_token_loss
    from selftaught.losses import PolicyObjective

    hidden, weight, bias, targets, mask = make_case(seed=4)
    g = torch.Generator().manual_seed(5)
    old = -torch.rand(mask.shape, generator=g) * 3
    ref = old + torch.randn(mask.shape, generator=g) * 0.1
    weights = torch.rand(mask.shape, generator=g) + 0.5
    advantages = torch.randn(mask.shape[0], generator=g)
    objective = PolicyObjective(old, advantages, mask, epsilon=0.2, epsilon_high=0.28, beta=beta, ref_logprobs=ref,
                                loss_type=loss_type, max_completion_length=mask.shape[1], num_tokens=20.0,
                                num_rows=4.0, importance_weights=weights)
    leaves = [t.detach().clone().requires_grad_(True) for t in (hidden, weight, bias)]
    logp, sc = straightforward(leaves[0], leaves[1], targets, mask, temperature, bias=leaves[2] if use_bias else None)
    want_loss = objective.loss(logp)
    want_loss.backward()
    fused_leaves = [t.detach().clone().requires_grad_(True) for t in (hidden, weight, bias)]
    loss, stats = fused_token_loss(fused_leaves[0], fused_leaves[1], targets, objective.token_losses, mask,
                                   temperature, chunk_size, bias=fused_leaves[2] if use_bias else None)
    (2.5 * loss).backward()  # an outer factor, as gradient accumulation or a padding repeat (× 0) applies
    torch.testing.assert_close(loss, want_loss.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(stats.logprobs, logp.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats.self_certainty, sc, atol=1e-5, rtol=1e-5)
    assert not stats.logprobs.requires_grad
    for name, got, want in zip(("hidden", "weight", "bias"), fused_leaves, leaves):
        if name == "bias" and not use_bias:
            assert got.grad is None
            continue
        torch.testing.assert_close(got.grad, 2.5 * want.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_fused_token_loss_under_bf16_autocast_matches_its_recomputing_twin():
    """Same chunks, same bf16 matmuls: the forward-gradient path and the recomputing one agree."""
    from selftaught.fused_logprobs import fused_token_loss

    hidden, weight, _, targets, mask = make_case(H=32, V=64, seed=6)
    upstream = torch.randn(mask.shape, generator=torch.Generator().manual_seed(7))
    results = []
    for fused_loss in (True, False):
        h, w = hidden.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            if fused_loss:
                loss, _ = fused_token_loss(h, w, targets, lambda lp, at: lp * upstream.reshape(-1)[at], mask, 0.9, 5)
            else:
                loss = (fused_token_statistics(h, w, targets, mask, 0.9, 5).logprobs * upstream).sum()
        loss.backward()
        results.append((loss.detach(), h.grad, w.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
