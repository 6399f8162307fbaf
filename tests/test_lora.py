"""LoRA through peft: only the adapter trains, the reference is the base model (adapter
disabled, no copy), checkpoints hold the adapter, resume continues exactly, and
`selftaught export --merge` writes a plain Hugging Face model. Gradient checkpointing
gives the same gradients as without."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from selftaught.cli import main
from selftaught.config import build_config
from selftaught.errors import UserError
from selftaught.fused_logprobs import fused_head
from selftaught.models import load_model
from selftaught.scoring import completion_token_statistics
from selftaught.trainer import Trainer

from conftest import tiny_overrides

pytest.importorskip("peft")

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def lora_trainer(tmp_path, resume=False, **extra):
    extra.setdefault("lora", LORA)
    return Trainer(build_config(tiny_overrides(tmp_path, **extra)), resume=resume)


def test_only_adapter_weights_train_and_no_reference_copy_is_made(tmp_path):
    trainer = lora_trainer(tmp_path, beta=0.01, learning_rate=1e-2)
    model = trainer.accelerator.unwrap_model(trainer.model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    count = sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    total = sum(p.numel() for p in model.parameters())
    # r = 4 on q_proj (64→64) and v_proj (64→32) in 2 layers: 2 · 4 · (64+64 + 64+32) = 1,792
    assert count == 1792, count
    print(f"LoRA trainable parameters: {count} of {total} ({100 * count / total:.2f} %)")
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for n, p in model.named_parameters() if n in trainable}
    assert trainer.reference is None, "β > 0 with LoRA must not copy the model"

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)

    checkpoint = tmp_path / "checkpoints" / "step-2"
    assert (checkpoint / "adapter_config.json").is_file() and not (checkpoint / "config.json").exists()
    saved = load_file(checkpoint / "adapter_model.safetensors")
    assert saved and all("lora_" in key for key in saved)


def test_reference_logprobs_are_the_base_models_after_training(tmp_path):
    trainer = lora_trainer(tmp_path, beta=0.01, learning_rate=3e-2, max_steps=3)
    trainer.train()
    rollout = trainer.episodes.collect(trainer.sampler, 4)
    scores = trainer.score(rollout)
    base, _ = load_model("tiny-random")
    base.eval()
    with torch.no_grad():
        expected = completion_token_statistics(base, rollout.prompt_ids, rollout.prompt_mask,
                                               rollout.completion_ids, rollout.completion_mask,
                                               temperature=trainer.config.temperature, chunk_size=2048).logprobs
    mask = rollout.completion_mask
    difference = float((scores.ref_logprobs - expected).abs()[mask].max())
    print(f"max |reference − base| log-prob: {difference:.1e}")
    assert difference == 0.0
    assert not torch.allclose(scores.old_logprobs[mask], expected[mask]), "the adapter should have moved the policy"


def test_resume_continues_a_lora_run_exactly(tmp_path):
    straight = lora_trainer(tmp_path / "straight", beta=0.01, max_steps=3)
    straight.train()
    first = lora_trainer(tmp_path / "resumed", beta=0.01, max_steps=3)
    first.train_step()  # one step, a checkpoint, then "crash"
    first.save_checkpoint()
    resumed = lora_trainer(tmp_path / "resumed", resume=True, beta=0.01, max_steps=3)
    assert resumed.step == 1
    resumed.train()
    a = load_file(tmp_path / "straight" / "checkpoints" / "step-3" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "checkpoints" / "step-3" / "adapter_model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)


def test_export_merge_writes_a_plain_model_with_the_adapters_outputs(tmp_path, capsys):
    trainer = lora_trainer(tmp_path, learning_rate=3e-2, max_steps=2)
    trainer.train()
    policy = trainer.accelerator.unwrap_model(trainer.model).eval()
    out = tmp_path / "merged"
    assert main(["export", "--checkpoint", str(tmp_path), "--output", str(out), "--merge"]) == 0
    assert "merged" in capsys.readouterr().out
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    ids = trainer.tokenizer(["Q: What is 3 + 4?\nA: 7"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, policy(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    # `selftaught eval --model <lora checkpoint>` loads the same merged model
    loaded, _ = load_model(str(tmp_path / "checkpoints" / "step-2"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, merged(ids).logits, atol=0, rtol=0)
    # without --merge: the adapter alone, no trainer state
    adapter = tmp_path / "adapter"
    assert main(["export", "--checkpoint", str(tmp_path / "checkpoints" / "step-2"), "--output", str(adapter)]) == 0
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "trainer_state.pt").exists()


def test_fused_path_finds_the_head_under_peft_and_falls_back_when_the_head_is_adapted(tmp_path):
    trainer = lora_trainer(tmp_path)
    policy = trainer.accelerator.unwrap_model(trainer.model)
    assert fused_head(policy) is policy.get_output_embeddings() and fused_head(policy) is not None
    adapted = lora_trainer(tmp_path / "head", lora={**LORA, "target_modules": ["q_proj", "lm_head"]})
    assert fused_head(adapted.accelerator.unwrap_model(adapted.model)) is None
    rollout = trainer.sampler.sample(["Q: 1 + 2?\nA:", "Q: 5 + 5?\nA:"], num_generations=2)
    rows = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
    with torch.no_grad():
        for model in (policy, adapted.accelerator.unwrap_model(adapted.model)):
            fused = completion_token_statistics(model, *rows, temperature=0.9, chunk_size=7, fused=True)
            plain = completion_token_statistics(model, *rows, temperature=0.9, chunk_size=7, fused=False)
            for f, p in zip(fused[:2], plain[:2]):
                torch.testing.assert_close(f, p, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lora", [None, LORA], ids=["full", "lora"])
def test_gradient_checkpointing_gives_the_same_gradients(tmp_path, lora):
    results = []
    for checkpointing in (False, True):
        trainer = lora_trainer(tmp_path / str(checkpointing), lora=lora, gradient_checkpointing=checkpointing,
                               beta=0.01, max_steps=1)
        model = trainer.accelerator.unwrap_model(trainer.model)
        assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules()) == checkpointing
        grads = {}
        step = trainer.optimizer.step

        def record_then_step(*args, _step=step, _model=model, _grads=grads, **kwargs):
            _grads.update({n: p.grad.clone() for n, p in _model.named_parameters() if p.grad is not None})
            return _step(*args, **kwargs)

        trainer.optimizer.step = record_then_step
        trainer.train()
        results.append(grads)
    assert results[0].keys() == results[1].keys() and results[0]
    for name in results[0]:
        torch.testing.assert_close(results[0][name], results[1][name], atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("lora, message", [
    ({"target_modules": []}, "target_modules is empty"),
    ({"r": 0}, "lora.r"),
    ({"rank": 8}, "unknown key 'lora.rank'"),
])
def test_lora_config_mistakes_are_one_line(tmp_path, lora, message):
    with pytest.raises(UserError, match=message) as error:
        build_config(tiny_overrides(tmp_path, lora=lora))
    assert "\n" not in str(error.value)


def test_lora_on_modules_the_model_lacks_is_one_line(tmp_path):
    with pytest.raises(UserError, match="lora.target_modules") as error:
        lora_trainer(tmp_path, lora={"target_modules": ["c_attn"]})
    assert "\n" not in str(error.value)


def test_resuming_across_lora_and_full_weights_is_refused(tmp_path):
    lora_trainer(tmp_path, max_steps=1).train()
    with pytest.raises(UserError, match="LoRA checkpoint"):
        Trainer(build_config(tiny_overrides(tmp_path, max_steps=2)), resume=True)
