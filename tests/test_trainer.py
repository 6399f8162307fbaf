"""The shared training loop on the built-in tiny model: end to end, alignment,
gradient accumulation, NaN handling, reference model."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from selftaught.config import build_config
from selftaught.scoring import completion_token_statistics
from selftaught.trainer import Trainer, TrainingStopped

from conftest import tiny_overrides


def make_trainer(tmp_path, **extra):
    return Trainer(build_config(tiny_overrides(tmp_path, **extra)))


def test_end_to_end_parameters_change_metrics_finite_checkpoint_loads(tmp_path):
    trainer = make_trainer(tmp_path, beta=0.01)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.train()
    assert [row["step"] for row in history] == [1, 2]
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "no parameter changed"

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    required = ["step", "loss", "reward/mean", "reward/std", "self_certainty/mean", "completion_length/mean",
                "kl/mean", "clip_fraction", "learning_rate", "grad_norm", "time/step_s",
                "rewards/self_certainty/mean", "rewards/math_answer/mean", "answer_entropy/mean"]
    for row in rows:
        for key in required:
            assert key in row, key
            assert isinstance(row[key], (int, float)) and math.isfinite(row[key]), (key, row[key])
    assert rows[0]["self_certainty/mean"] > 0

    checkpoint = tmp_path / "checkpoints" / "step-2"
    loaded = AutoModelForCausalLM.from_pretrained(checkpoint)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2 and "optimizer" in state and "rng" in state and "episodes" in state


def brute_force_completion_statistics(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature):
    """Drop the padding, run each sequence alone, read position P-1+t for token t, float64 softmax."""
    logp = torch.zeros(completion_ids.shape, dtype=torch.float64)
    sc = torch.zeros(completion_ids.shape, dtype=torch.float64)
    for b in range(completion_ids.shape[0]):
        prompt = prompt_ids[b][prompt_mask[b].bool()]
        answer = completion_ids[b][completion_mask[b].bool()]
        ids = torch.cat([prompt, answer]).unsqueeze(0)
        logits = model(input_ids=ids).logits[0].double() / temperature
        for t in range(len(answer)):
            z = logits[len(prompt) - 1 + t]
            p = torch.softmax(z, -1)
            logp[b, t] = torch.log(p[answer[t]])
            V = z.numel()
            sc[b, t] = -(torch.log(V * p)).sum() / V
    return logp, sc


def test_completion_token_statistics_alignment_padding_temperature_match_brute_force(tmp_path):
    trainer = make_trainer(tmp_path)
    rollout = trainer.sampler.sample(["Q: What is 3 + 4?\nA:", "Q: Hi\nA:"], num_generations=2)
    # Make one row end early so completion padding is exercised too.
    rollout.completion_mask[0, 3:] = False
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    with torch.no_grad():
        logp, sc, _ = completion_token_statistics(model, rollout.prompt_ids, rollout.prompt_mask,
                                                  rollout.completion_ids, rollout.completion_mask,
                                                  temperature=0.7, chunk_size=5)
        ref_logp, ref_sc = brute_force_completion_statistics(model, rollout.prompt_ids, rollout.prompt_mask,
                                                             rollout.completion_ids, rollout.completion_mask, 0.7)
    assert rollout.prompt_mask[2].sum() < rollout.prompt_mask.shape[1], "second prompt should be left-padded"
    torch.testing.assert_close(logp.double(), ref_logp, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sc.double(), ref_sc, atol=1e-4, rtol=1e-4)
    assert (logp[0, 3:] == 0).all() and (sc[0, 3:] == 0).all()


@pytest.mark.parametrize("loss_type", ["token_mean", "seq_mean", "dr_grpo"])
def test_gradient_accumulation_gives_the_same_gradient(tmp_path, loss_type):
    """8 rows in one micro-batch or in 4 micro-batches of 2: the same gradient for every loss type."""
    results = []
    for batch, accumulation in [(8, 1), (2, 4)]:
        trainer = make_trainer(tmp_path / f"{batch}", per_device_train_batch_size=batch, beta=0.01,
                               gradient_accumulation_steps=accumulation, max_steps=1, loss_type=loss_type)
        grads = []
        step = trainer.optimizer.step

        def record_then_step(*args, **kwargs):
            grads.append([p.grad.clone() for p in trainer.model.parameters()])
            return step(*args, **kwargs)

        trainer.optimizer.step = record_then_step
        trainer.train()
        results.append(grads[0])
    for one, accumulated in zip(*results):
        torch.testing.assert_close(one, accumulated, atol=1e-7, rtol=1e-4)


def test_first_update_ratio_is_one(tmp_path):
    """With μ = 1 the new and old policies coincide: ρ ≡ 1 and nothing is clipped."""
    trainer = make_trainer(tmp_path, max_steps=1)
    row = trainer.train()[0]
    assert row["ratio/mean"] == pytest.approx(1.0, abs=1e-5)
    assert row["clip_fraction"] == 0.0


def test_num_iterations_gives_one_row_per_optimizer_step(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=4, num_iterations=2, learning_rate=5e-3)
    history = trainer.train()
    assert [r["step"] for r in history] == [1, 2, 3, 4]
    # the second pass over a rollout sees a moved policy: the ratio leaves 1
    assert abs(history[1]["ratio/mean"] - 1.0) > 1e-7 or history[1]["clip_fraction"] > 0


def test_no_reference_model_when_beta_is_zero(tmp_path):
    assert make_trainer(tmp_path, beta=0.0).reference is None
    assert make_trainer(tmp_path / "b", beta=0.01).reference is not None
    offline = make_trainer(tmp_path / "c", beta=0.0, rewards=[{"name": "self_certainty", "mode": "offline"}])
    assert offline.reference is not None


def test_offline_self_certainty_scores_with_the_frozen_model(tmp_path):
    trainer = make_trainer(tmp_path, beta=0.0, max_steps=3, learning_rate=1e-2,
                           rewards=[{"name": "self_certainty", "mode": "offline"}])
    trainer.train()
    rollout = trainer.episodes.collect(trainer.sampler, 4)
    scores = trainer.score(rollout)
    rewards = trainer.episodes.rewards(rollout, scores)
    torch.testing.assert_close(rewards["self_certainty"], scores.ref_self_certainty)
    assert not torch.allclose(scores.ref_self_certainty, scores.self_certainty)


def test_nan_loss_skips_the_step_and_stops_after_the_limit(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, max_steps=5, max_consecutive_bad_steps=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    original = trainer.episodes.advantages
    monkeypatch.setattr(trainer.episodes, "advantages",
                        lambda rollout, rewards: original(rollout, rewards) * float("nan"))
    with pytest.raises(TrainingStopped):
        trainer.train()
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed on a NaN step"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped"] for r in rows] == [True, True]


def test_grpo_method_uses_the_gold_answer_reward(tmp_path):
    trainer = make_trainer(tmp_path, method="grpo")
    assert trainer.episodes.reward_weights == {"math_answer": 1.0, "self_certainty": 0.0}


def test_checkpoint_round_trip_keeps_token_ids(tmp_path):
    """transformers 5 would reload a qwen2-typed tokenizer as Qwen2Tokenizer (other ids)."""
    from selftaught.models import load_model

    trainer = make_trainer(tmp_path, max_steps=1)
    trainer.train()
    _, reloaded = load_model(str(tmp_path / "checkpoints" / "step-1"))
    text = ["Q: What is 13 + 4?\nA: 17 apples", "def f(a):\n    return a"]
    assert reloaded(text, add_special_tokens=False)["input_ids"] == \
        trainer.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_completion_tags_log_the_share_of_completions_that_match(tmp_path):
    trainer = make_trainer(tmp_path, completion_tags={"anything": "", "never": "zz-never-written-zz"})
    history = trainer.train()
    for row in history:
        assert row["tags/anything/share"] == 1.0 and row["tags/never/share"] == 0.0


def test_a_completion_tag_that_is_not_a_regular_expression_is_one_line(tmp_path):
    from selftaught.errors import UserError

    with pytest.raises(UserError, match=r"completion_tags.bad: '\(' is not a regular expression"):
        build_config(tiny_overrides(tmp_path, completion_tags={"bad": "("}))


def test_a_reward_read_from_the_update_forward_carries_no_gradient(tmp_path):
    """With μ = 1 the scoring forward is the update's (`Trainer._score_step`): the token-entropy
    reward it yields must be a plain number, or the advantages would join the graph (and turning
    them into metrics warns in the user's log)."""
    import warnings

    from selftaught.config import set_all_dotted
    from selftaught.recipes import load_recipe

    recipe = set_all_dotted(load_recipe("token_entropy_tiny_ramble.yaml"),
                            {"output_dir": str(tmp_path), "max_steps": 1, "save_steps": 1, "progress_bar": False,
                             "report_to": "none"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        history = Trainer(build_config(recipe)).train()
    assert history[0]["advantage/abs_mean"] > 0
