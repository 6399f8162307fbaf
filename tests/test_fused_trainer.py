"""The trainer's fused path (default) against its logits path: same log-probs,
self-certainty and parameter gradients on the built-in model, with left-padded
prompts, early-ending completions and a temperature; and the config switch back."""

import torch

from selftaught.config import build_config
from selftaught.trainer import Trainer, completion_logprobs

from conftest import tiny_overrides


def test_fused_and_logits_paths_agree_on_values_and_parameter_gradients(tmp_path):
    trainer = Trainer(build_config(tiny_overrides(tmp_path)))
    rollout = trainer.sampler.sample(["Q: What is 3 + 4?\nA:", "Q: Hi\nA:"], num_generations=2)
    rollout.completion_mask[0, 3:] = False
    rollout.completion_ids[0, 3:] = trainer.tokenizer.pad_token_id
    model = trainer.accelerator.unwrap_model(trainer.model).train()
    rows = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
    upstream = torch.randn(rollout.completion_ids.shape, generator=torch.Generator().manual_seed(0))
    results = []
    for fused in (True, False):
        model.zero_grad(set_to_none=True)
        logp, sc = completion_logprobs(model, *rows, temperature=0.7, chunk_size=3, fused=fused)
        (logp * upstream).sum().backward()
        results.append((logp.detach(), sc, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (logp_f, sc_f, grad_f), (logp_l, sc_l, grad_l) = results
    torch.testing.assert_close(logp_f, logp_l, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sc_f, sc_l, atol=1e-5, rtol=1e-5)
    assert (logp_f[0, 3:] == 0).all() and (sc_f[0, 3:] == 0).all()
    assert grad_f.keys() == grad_l.keys()
    for name in grad_f:
        torch.testing.assert_close(grad_f[name], grad_l[name], atol=1e-5, rtol=1e-4, msg=name)


def test_config_switch_back_to_the_logits_path_trains(tmp_path):
    config = build_config(tiny_overrides(tmp_path, fused_logprobs=False, max_steps=1))
    assert config.fused_logprobs is False
    assert build_config(tiny_overrides(tmp_path)).fused_logprobs is True
    history = Trainer(config).train()
    assert len(history) == 1 and history[0]["self_certainty/mean"] > 0
