"""The logits chunk follows from a byte budget (rows = budget / (V · 4)), on the fused path at least
H / 4 rows (a quarter of the fp32 weight gradient); an explicit size wins."""

import pytest
import torch
from pydantic import ValidationError
from test_ops import make_case, ref_logprob_and_sc

from selftaught import fused_logprobs, ops
from selftaught.config import TrainConfig
from selftaught.fused_logprobs import fused_token_statistics
from selftaught.ops import DEFAULT_CHUNK_BYTES, chunk_rows, token_statistics


def test_rows_from_the_budget():
    assert DEFAULT_CHUNK_BYTES == 64 << 20
    assert chunk_rows(151_936) == (64 << 20) // (151_936 * 4) == 110  # Qwen2.5's vocabulary
    assert chunk_rows(1000) == (64 << 20) // 4000
    assert chunk_rows(10**9) == 1  # at least one row, however wide the vocabulary
    assert chunk_rows(151_936, chunk_size=2048) == 2048  # an explicit size wins
    assert chunk_rows(100, budget_bytes=4 * 100 * 3) == 3


def test_fused_rows_reach_a_quarter_of_the_weight_gradient():
    assert chunk_rows(151_936, hidden_size=1536) == 384  # Qwen2.5-1.5B: H / 4 beats the budget's 110
    assert 384 * 151_936 * 4 == (151_936 * 1536 * 4) // 4  # the chunk is a quarter of fp32 ∂W
    assert chunk_rows(151_936, hidden_size=256) == 110  # a narrow model keeps the byte budget
    assert chunk_rows(1000, hidden_size=4096) == (64 << 20) // 4000
    assert chunk_rows(151_936, chunk_size=7, hidden_size=1536) == 7  # an explicit size still wins
    assert chunk_rows(10**9, hidden_size=2) == 1


def test_config_default_is_the_budget_and_an_explicit_value_is_kept():
    assert TrainConfig().logits_chunk_size is None
    assert TrainConfig(logits_chunk_size=16).logits_chunk_size == 16
    with pytest.raises(ValidationError):
        TrainConfig(logits_chunk_size=0)


def _spy_chunks(monkeypatch):
    seen = []
    real = ops._row_chunks

    def spy(logits, chunk_size):
        seen.append(chunk_size)
        return real(logits, chunk_size)

    monkeypatch.setattr(ops, "_row_chunks", spy)
    return seen


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_default_chunk_is_sized_by_bytes_and_values_match_bruteforce(monkeypatch, temperature):
    logits, targets, mask = make_case(B=3, T=7, V=13)
    monkeypatch.setattr(ops, "DEFAULT_CHUNK_BYTES", 13 * 4 * 3)  # three rows of fp32 logits
    seen = _spy_chunks(monkeypatch)
    logits = logits.double().requires_grad_(True)
    logp, sc, _ = token_statistics(logits, targets, mask, temperature)
    assert seen == [3]
    want_logp, want_sc = ref_logprob_and_sc(logits.detach(), targets, mask, temperature)
    torch.testing.assert_close(logp, want_logp, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sc, want_sc, rtol=1e-10, atol=1e-10)
    logp.sum().backward()  # the recomputing backward walks the same 3-row chunks
    assert seen == [3, 3]
    explicit = token_statistics(logits.detach(), targets, mask, temperature, chunk_size=5)
    assert seen[-1] == 5
    torch.testing.assert_close(explicit[0], logp.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("hidden_size,rows", [(8, 4), (24, 6)])  # the budget's 4 rows, or H / 4 when more
def test_fused_default_chunk_is_sized_by_bytes_and_hidden_size(monkeypatch, hidden_size, rows):
    g = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(2, 5, hidden_size, generator=g), torch.randn(11, hidden_size, generator=g)
    targets = torch.randint(0, 11, (2, 5), generator=g)
    monkeypatch.setattr(ops, "DEFAULT_CHUNK_BYTES", 11 * 4 * 4)  # four rows
    seen = []
    real = fused_logprobs._FusedLinearLogProbs.apply
    monkeypatch.setattr(fused_logprobs._FusedLinearLogProbs, "apply",
                        lambda *a: seen.append(a[5]) or real(*a))
    logp, sc, _ = fused_token_statistics(hidden, weight, targets, temperature=0.9)
    assert seen == [rows]
    want = token_statistics(hidden @ weight.t(), targets, temperature=0.9, chunk_size=1)
    torch.testing.assert_close(logp, want[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sc, want[1], rtol=1e-5, atol=1e-5)
