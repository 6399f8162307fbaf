"""selftaught.ops against slow references: explicit loops, brute force over the vocabulary."""

import math

import pytest
import torch

from selftaught.ops import (
    token_statistics,
    completion_mask,
    sequence_mean,
)


# ---------------------------------------------------------------- references


def ref_logprob_and_sc(logits, targets, mask, temperature):
    """Per position: explicit softmax in Python floats (float64), loops over j."""
    B, T, V = logits.shape
    logp = torch.zeros(B, T, dtype=torch.float64)
    sc = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                continue
            z = [float(v) / temperature for v in logits[b, t]]
            zmax = max(z)
            total = sum(math.exp(zj - zmax) for zj in z)
            p = [math.exp(zj - zmax) / total for zj in z]
            logp[b, t] = math.log(p[int(targets[b, t])])
            # KL(U || p) = Σ_j (1/V) log((1/V) / p_j) = −(1/V) Σ_j log(V p_j)
            sc[b, t] = -sum(math.log(V * pj) for pj in p) / V
    return logp, sc


def make_case(B=3, T=7, V=13, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g) * scale
    targets = torch.randint(0, V, (B, T), generator=g)
    mask = torch.rand(B, T, generator=g) > 0.25
    mask[1] = False  # a padding row: no real token at all
    mask[0, 0] = True
    return logits, targets, mask


# ---------------------------------------------------------------- log-probs and self-certainty


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.6])
@pytest.mark.parametrize("chunk_size", [1, 4, 5, 21, 1000, None])
def test_logprobs_and_self_certainty_match_bruteforce(temperature, chunk_size):
    logits, targets, mask = make_case()  # B*T = 21 rows: 4 and 5 do not divide it
    logp, sc, _ = token_statistics(logits, targets, mask, temperature, chunk_size)
    ref_lp, ref_sc = ref_logprob_and_sc(logits, targets, mask, temperature)
    assert logp.dtype == sc.dtype == torch.float32
    assert logp.shape == sc.shape == (3, 7)
    torch.testing.assert_close(logp.double(), ref_lp, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(sc.double(), ref_sc, atol=2e-5, rtol=1e-5)


def test_masked_positions_are_exactly_zero_even_with_garbage():
    logits, targets, mask = make_case()
    logits[~mask] = float("nan")  # whatever sits at padded positions must not leak
    targets[~mask] = -100  # e.g. an ignore index: out of range for gather
    logp, sc, _ = token_statistics(logits, targets, mask, chunk_size=4)
    assert torch.all(logp[~mask] == 0) and torch.all(sc[~mask] == 0)
    assert torch.isfinite(logp).all() and torch.isfinite(sc).all()
    assert torch.all(logp[mask] < 0) and torch.all(sc[mask] > 0)


def test_mask_none_and_int_mask_equal_bool_mask():
    logits, targets, mask = make_case()
    full = token_statistics(logits, targets).logprobs
    ones = token_statistics(logits, targets, torch.ones(3, 7, dtype=torch.long)).logprobs
    torch.testing.assert_close(full, ones)
    a = token_statistics(logits, targets, mask)[:2]
    b = token_statistics(logits, targets, mask.long())[:2]
    torch.testing.assert_close(a, b)


def test_self_certainty_properties():
    V = 50
    uniform = torch.zeros(1, 2, V)
    sc = token_statistics(uniform, torch.zeros(1, 2, dtype=torch.long)).self_certainty
    assert torch.allclose(sc, torch.zeros_like(sc), atol=1e-6)  # 0 only for the uniform
    logits, targets, _ = make_case(V=V)
    sc = token_statistics(logits, targets).self_certainty
    assert torch.all(sc > 0)
    # Sharper distribution (lower τ) -> further from uniform -> more certain.
    sc_sharp = token_statistics(logits, targets, temperature=0.5).self_certainty
    assert torch.all(sc_sharp > sc)
    # A near one-hot row: KL(U||p) ≈ (1/V) Σ_{j≠k} (z_k − z_j) − log V + ... grows with the gap.
    peaked = torch.zeros(1, 1, V)
    peaked[0, 0, 3] = 40.0
    sc_peak = token_statistics(peaked, torch.zeros(1, 1, dtype=torch.long)).self_certainty
    expected = 40.0 - 40.0 / V - math.log(V)  # lse ≈ 40, mean = 40/V
    assert abs(sc_peak.item() - expected) < 1e-4


def test_bf16_matches_fp32_on_rounded_values():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 9, 257, generator=g) * 4
    targets = torch.randint(0, 257, (4, 9), generator=g)
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[2, 5:] = False
    rounded = logits.to(torch.bfloat16)
    lp16, sc16, _ = token_statistics(rounded, targets, mask, temperature=0.9, chunk_size=7)
    assert lp16.dtype == torch.float32 and sc16.dtype == torch.float32
    lp32, sc32, _ = token_statistics(rounded.float(), targets, mask, temperature=0.9, chunk_size=7)
    torch.testing.assert_close(lp16, lp32, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sc16, sc32, atol=1e-5, rtol=1e-5)
    # Against the unrounded logits: only the bf16 input rounding (8 bits of mantissa).
    lp_exact, sc_exact, _ = token_statistics(logits, targets, mask, temperature=0.9)
    torch.testing.assert_close(lp16, lp_exact, atol=0.1, rtol=0.02)
    torch.testing.assert_close(sc16, sc_exact, atol=0.05, rtol=0.02)


def test_gradcheck_double():
    logits, targets, mask = make_case(B=2, T=5, V=7, seed=3)
    x = logits.double().requires_grad_(True)

    def f(x):
        return token_statistics(x, targets[:2, :5], mask[:2, :5], temperature=0.8, chunk_size=3).logprobs

    assert torch.autograd.gradcheck(f, (x,))


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
def test_gradient_matches_plain_log_softmax_on_a_sliced_input(dtype, atol):
    # Full-sequence logits sliced to the positions that predict the completion: a non-contiguous view.
    g = torch.Generator().manual_seed(4)
    B, P, T, V = 3, 4, 6, 11
    full = (torch.randn(B, P + T, V, generator=g) * 2).to(dtype)
    targets = torch.randint(0, V, (B, T), generator=g)
    mask = completion_mask(torch.where(torch.arange(T) == 3 + torch.arange(B)[:, None], 0, 1), eos_token_id=0)
    weights = torch.randn(B, T, generator=g)  # a generic upstream gradient

    x1 = full.clone().requires_grad_(True)
    lp = token_statistics(
        x1[:, P - 1:P + T - 1], targets, mask, temperature=0.7, chunk_size=4
    ).logprobs
    (lp * weights).sum().backward()

    x2 = full.clone().requires_grad_(True)
    z = x2[:, P - 1:P + T - 1].float() / 0.7
    ref = torch.log_softmax(z, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1) * mask
    (ref * weights).sum().backward()

    torch.testing.assert_close(lp, ref.detach(), atol=1e-5, rtol=1e-5)
    assert x1.grad.dtype == dtype
    torch.testing.assert_close(x1.grad.float(), x2.grad.float(), atol=atol, rtol=1e-2)
    assert torch.all(x1.grad[:, : P - 1] == 0)  # prompt positions that predict prompt tokens
    assert torch.all(x1.grad[:, -1] == 0)  # the last position predicts nothing we score


def test_self_certainty_has_no_gradient():
    logits, targets, mask = make_case()
    x = logits.requires_grad_(True)
    logp, sc, _ = token_statistics(x, targets, mask)
    assert logp.requires_grad and not sc.requires_grad


def test_no_full_fp32_copy_is_kept_for_backward():
    # The fp32 [B*T, V] that a plain log_softmax keeps for backward is what we avoid.
    B, T, V = 2, 16, 512
    logits = torch.randn(B, T, V).to(torch.bfloat16).requires_grad_(True)
    targets = torch.randint(0, V, (B, T))
    saved = []

    def pack(t):
        saved.append((t.dtype, t.numel()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logp = token_statistics(logits, targets, chunk_size=8).logprobs
    big_fp32 = [n for dt, n in saved if dt == torch.float32 and n >= 8 * V]
    assert not big_fp32, saved
    logp.sum().backward()
    assert logits.grad.shape == (B, T, V)


def test_argument_errors():
    logits, targets, mask = make_case()
    with pytest.raises(ValueError):
        token_statistics(logits[0], targets[0])
    with pytest.raises(ValueError):
        token_statistics(logits, targets[:, :3])
    with pytest.raises(ValueError):
        token_statistics(logits, targets, temperature=0.0)
    with pytest.raises(ValueError):
        token_statistics(logits, targets, chunk_size=0)


# ---------------------------------------------------------------- sequence_mean


def test_sequence_mean_matches_loop():
    g = torch.Generator().manual_seed(5)
    values = torch.randn(4, 6, generator=g)
    mask = torch.rand(4, 6, generator=g) > 0.4
    mask[2] = False
    values[~mask] = float("nan")  # must not leak
    got = sequence_mean(values, mask)
    for b in range(4):
        real = [values[b, t].item() for t in range(6) if mask[b, t]]
        want = sum(real) / len(real) if real else 0.0
        assert got[b].item() == pytest.approx(want, abs=1e-6)
    assert got[2].item() == 0.0 and torch.isfinite(got).all()


# ---------------------------------------------------------------- completion_mask


def ref_completion_mask(ids, eos_ids, pad=None):
    out = []
    for row in ids.tolist():
        keep, ended = [], False
        for tok in row:
            if pad is not None and pad not in eos_ids and tok == pad and not ended:
                ended = True  # a pad ends the completion and is itself excluded
            keep.append(not ended)
            if tok in eos_ids:
                ended = True  # EOS is included, what follows is not
        out.append(keep)
    return torch.tensor(out, dtype=torch.bool)


def test_completion_mask_cases():
    ids = torch.tensor(
        [
            [5, 6, 2, 0, 0],  # EOS in the middle, pads after
            [2, 0, 0, 0, 0],  # EOS first
            [5, 6, 7, 8, 2],  # EOS last
            [5, 6, 7, 8, 9],  # no EOS: truncated, all real
            [5, 2, 6, 2, 7],  # only the first EOS counts
        ]
    )
    want = torch.tensor(
        [
            [1, 1, 1, 0, 0],
            [1, 0, 0, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [1, 1, 0, 0, 0],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(completion_mask(ids, 2), want)
    assert torch.equal(completion_mask(ids, [2]), want)
    assert torch.equal(completion_mask(ids, 2, pad_token_id=2), want)  # pad == EOS


def test_completion_mask_several_eos_ids_and_pad():
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(0, 8, (20, 9), generator=g)
    for eos in ([3], [3, 5], {4, 7}):
        for pad in (None, 0, 3):
            got = completion_mask(ids, eos, pad_token_id=pad)
            assert torch.equal(got, ref_completion_mask(ids, set(eos), pad)), (eos, pad)
    # stop_strings-style rows: stopped without EOS, then padded
    ids = torch.tensor([[5, 6, 0, 0], [5, 6, 7, 8]])
    assert completion_mask(ids, 2, pad_token_id=0).tolist() == [[True, True, False, False], [True] * 4]



def test_statistics_ignore_an_enclosing_autocast():
    """The trainer scores under accelerate's bf16 autocast; the vocabulary-wide maths (H's row-wise
    dot product is a bmm, which autocast would run in bf16) must stay in fp32 all the same."""
    logits, targets, mask = make_case(B=2, T=5, V=301, seed=3)
    plain = token_statistics(logits, targets, mask, 0.8, chunk_size=3, entropy=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = token_statistics(logits, targets, mask, 0.8, chunk_size=3, entropy=True)
    for got, want in zip(autocast, plain):
        assert torch.equal(got, want)
