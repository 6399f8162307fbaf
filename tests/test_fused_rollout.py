"""The rollout's own decoding loop (shared prefill, preallocated KV cache, finished
rows dropped) against `model.generate`: same greedy tokens, same sampling
distribution (temperature, top-k, top-p), same Rollout layout."""

import copy

import pytest
import torch

from selftaught.models import load_model
from selftaught.rollout import SelftaughtSampler, _filter_logits, _preallocated_cache, _sample_categorical

PROMPTS = ["Q: What is 3 + 4?\nA:", "Q: Hi\nA:", "Q: 12 * 7 - 5 = ?\nA:"]


@pytest.fixture(scope="module")
def tiny():
    """tiny-random with sharpened weights: its greedy completions vary (plain tiny-random repeats one token)."""
    model, tokenizer = load_model("tiny-random")
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(8)
    return model.eval(), tokenizer


def sampler(tiny, backend, **kw):
    model, tokenizer = tiny
    settings = dict(max_prompt_length=64, max_completion_length=24, temperature=0.9)
    settings.update(kw)
    return SelftaughtSampler(model, tokenizer, backend=backend, **settings)


@pytest.mark.parametrize("generation_batch_size", [None, 2, 5])
def test_greedy_loop_equals_generate(tiny, generation_batch_size):
    a = sampler(tiny, "loop", generation_batch_size=generation_batch_size).sample(PROMPTS, 3, greedy=True)
    b = sampler(tiny, "generate", generation_batch_size=generation_batch_size).sample(PROMPTS, 3, greedy=True)
    assert torch.equal(a.prompt_ids, b.prompt_ids) and torch.equal(a.prompt_mask, b.prompt_mask)
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.completion_mask, b.completion_mask)
    assert a.completions == b.completions and a.prompts == b.prompts


def test_greedy_with_early_eos_drops_rows_and_still_matches(tiny):
    model, tokenizer = tiny
    ref = sampler(tiny, "generate").sample(PROMPTS, 2, greedy=True)
    # Declare tokens the model emits to be EOS too, so rows end at different steps.
    emitted = [int(ref.completion_ids[0, 2]), int(ref.completion_ids[4, 9])]
    a, b = sampler(tiny, "loop"), sampler(tiny, "generate")
    a.eos_ids = b.eos_ids = sorted(set(a.eos_ids) | set(emitted))
    ra, rb = a.sample(PROMPTS, 2, greedy=True), b.sample(PROMPTS, 2, greedy=True)
    lengths = ra.completion_mask.sum(1)
    assert lengths.min() < lengths.max(), "rows should end at different steps"
    assert torch.equal(ra.completion_ids, rb.completion_ids) and torch.equal(ra.completion_mask, rb.completion_mask)


def test_preallocated_cache_matches_a_full_forward(tiny):
    model, tokenizer = tiny
    ids = tokenizer(["Q: What is 3 + 4?\nA: 7"], return_tensors="pt")["input_ids"]
    cache = _preallocated_cache(model, ids.shape[1])
    assert cache is not None
    with torch.no_grad():
        full = model(input_ids=ids).logits
        step = [model(input_ids=ids[:, :4], past_key_values=cache, use_cache=True).logits]
        for t in range(4, ids.shape[1]):
            step.append(model(input_ids=ids[:, t:t + 1], past_key_values=cache, use_cache=True).logits)
    torch.testing.assert_close(torch.cat(step, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("top_k,top_p", [(0, 1.0), (3, 1.0), (0, 0.6), (4, 0.7)])
def test_filter_logits_matches_generate_warpers(top_k, top_p):
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    scores = torch.randn(6, 11, generator=torch.Generator().manual_seed(top_k))
    want = scores.clone()
    if top_k:
        want = TopKLogitsWarper(top_k)(None, want)
    if top_p < 1:
        want = TopPLogitsWarper(top_p)(None, want)
    assert torch.equal(_filter_logits(scores, top_k, top_p), want)


def test_sampled_first_tokens_follow_the_model_distribution(tiny):
    model, tokenizer = tiny
    s = sampler(tiny, "loop", max_completion_length=1, temperature=0.7, top_k=20, top_p=0.9)
    torch.manual_seed(0)
    n = 4000
    rollout = s.sample(["Q: Hi\nA:"], n)
    ids = tokenizer(["Q: Hi\nA:"], return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        z = model(input_ids=ids).logits[0, -1] / 0.7
    p = _filter_logits(z[None], 20, 0.9).softmax(-1)[0]
    counts = torch.bincount(rollout.completion_ids[:, 0], minlength=p.numel()).double() / n
    assert counts[p == 0].sum() == 0, "a filtered token was sampled"
    assert (counts - p.double()).abs().max() < 4 * (p.max() * (1 - p.max()) / n) ** 0.5 + 1e-3


def test_unknown_backend_is_rejected(tiny):
    with pytest.raises(ValueError, match="backend"):
        sampler(tiny, "vllm")


@pytest.mark.parametrize("backend", ["loop", "generate"])
def test_top_k_zero_means_no_truncation(backend):
    """transformers 5 turns an unset top_k into 50; top_k=0 must sample from the whole vocabulary."""
    model, tokenizer = load_model("tiny-random")  # near-uniform next-token distributions over 512 tokens
    s = SelftaughtSampler(model.eval(), tokenizer, max_prompt_length=16, max_completion_length=1, temperature=1.0,
                top_k=0, backend=backend)
    torch.manual_seed(0)
    first = s.sample(["Q: Hi\nA:"], 600).completion_ids[:, 0]
    assert first.unique().numel() > 100


def test_inverse_cdf_sampling_frequencies_and_zero_probability_tokens():
    torch.manual_seed(0)
    p = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.15, 0.05, 0.0])
    n = 200_000
    draws = _sample_categorical(p.expand(n, -1))
    freq = torch.bincount(draws, minlength=p.numel()).double() / n
    assert (freq[p == 0] == 0).all()
    assert (freq - p.double()).abs().max() < 5 * (0.25 / n) ** 0.5


# ------------------------------------------------------------------ decode steps through the layers


def tiny_decoder(model_type: str):
    """A random 2-layer decoder of `model_type` (sdpa attention), eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                  max_position_embeddings=128, head_dim=8,
                                  sliding_window=None)  # Mistral's default window needs another cache
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3"])
def test_layer_step_gives_the_models_own_logits(model_type):
    from selftaught.rollout import _LayerStep, _ModelStep

    model = tiny_decoder(model_type)
    ids = torch.randint(5, 500, (3, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # a left-padded prompt
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    step = _LayerStep.of(model)
    assert step is not None
    outputs = []
    with torch.inference_mode():
        for decode in (_ModelStep(model), step):
            cache = _preallocated_cache(model, ids.shape[1] + 3)
            assert cache is not None
            model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True)
            attention, position, token, logits = mask.bool(), positions[:, -1] + 1, ids[:, -1], []
            for _ in range(3):  # three decode steps, each feeding the argmax back
                attention = torch.cat([attention, torch.ones(3, 1, dtype=torch.bool)], 1)
                logits.append(decode(token, attention, position, cache).float())
                token, position = logits[-1].argmax(-1), position + 1
            outputs.append(torch.stack(logits))
    assert torch.equal(outputs[0], outputs[1])


def test_sampler_decodes_through_the_layers_and_samples_what_the_model_step_samples(tiny):
    from selftaught.rollout import _ModelStep

    fast = sampler(tiny, "loop")
    torch.manual_seed(3)
    a = fast.sample(PROMPTS, 4)
    assert fast.decode_path == "layers"
    plain = sampler(tiny, "loop")
    plain._step, plain.decode_path = _ModelStep(plain.model), "model"  # the model's own forward, every step
    torch.manual_seed(3)
    b = plain.sample(PROMPTS, 4)
    assert torch.equal(a.completion_ids, b.completion_ids) and a.completions == b.completions


def test_a_layer_step_that_differs_from_the_model_is_refused(monkeypatch):
    """The once-per-sampler check is what makes the shortcut safe on any transformers version: a
    layer step that computes anything else (here: another head) is not used."""
    from selftaught import rollout

    model = tiny_decoder("qwen2")
    head = copy.deepcopy(model.get_output_embeddings())
    with torch.no_grad():
        head.weight.mul_(1.001)
    wrong = rollout._LayerStep(model, model.get_decoder(), head)
    monkeypatch.setattr(rollout._LayerStep, "of", classmethod(lambda cls, m, autocast=None: wrong))
    ids, mask = torch.randint(5, 500, (1, 5)), torch.ones(1, 5, dtype=torch.long)
    with torch.inference_mode():
        assert rollout._checked_layer_step(model, ids, mask) is None


def test_architectures_off_the_list_decode_through_their_forward(tiny):
    _, tokenizer = tiny
    model = tiny_decoder("gemma")
    s = SelftaughtSampler(model, tokenizer, max_prompt_length=16, max_completion_length=4, temperature=1.0, backend="loop")
    assert s.sample(PROMPTS[:1], 2).completion_ids.shape[0] == 2
    assert s.decode_path == "model"


def test_the_layer_step_runs_under_the_autocast_of_a_wrapped_forward(tiny):
    """accelerate's bf16 wraps the model's forward in autocast: the layer step must run under it too
    (the trainer passes it), and without it the check falls back rather than sample otherwise."""
    from contextlib import nullcontext

    model, tokenizer = tiny
    wrapped = copy.deepcopy(model)
    forward = wrapped.forward
    wrapped.forward = lambda *a, **k: (lambda out: out)(
        torch.autocast("cpu", dtype=torch.bfloat16)(forward)(*a, **k))
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    settings = dict(max_prompt_length=64, max_completion_length=12, temperature=0.9)
    with_context = SelftaughtSampler(wrapped, tokenizer, autocast=autocast, **settings)
    without = SelftaughtSampler(wrapped, tokenizer, autocast=nullcontext, **settings)
    torch.manual_seed(5)
    a = with_context.sample(PROMPTS, 2)
    torch.manual_seed(5)
    b = without.sample(PROMPTS, 2)
    assert with_context.decode_path == "layers" and without.decode_path == "model"
    assert torch.equal(a.completion_ids, b.completion_ids)
