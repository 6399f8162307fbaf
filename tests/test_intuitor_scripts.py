"""The measuring scripts of the Intuitor designs: the anatomy's split of self-certainty (and its
top-k variant) against a brute-force reference, and the recipe families the sweeps train."""

import math
import runpy
from pathlib import Path

import pytest
import torch

from selftaught.config import build_config
from selftaught.models import load_model
from selftaught.rollout import SelftaughtSampler

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def anatomy():
    return runpy.run_path(str(SCRIPTS / "self_certainty_anatomy.py"))  # no __main__: functions only


def _reference(model, rollout, row: int, temperature: float, head_k: int) -> dict[str, float]:
    """One completion's statistics the slow way: the model run on that sequence alone (no padding),
    then explicit loops over its real completion tokens and over the whole vocabulary."""
    prompt = rollout.prompt_ids[row][rollout.prompt_mask[row].bool()].tolist()
    tokens = rollout.completion_ids[row][rollout.completion_mask[row].bool()].tolist()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + tokens])).logits[0].double()
    totals = {"sc": 0.0, "sc_head": 0.0, "sc_tail": 0.0, "sc_topk": 0.0, "entropy": 0.0, "logprob": 0.0}
    for t, token in enumerate(tokens):
        z = [float(v) / temperature for v in logits[len(prompt) - 1 + t]]
        V = len(z)
        log_norm = math.log(sum(math.exp(v) for v in z))
        logp = [v - log_norm for v in z]
        top = sorted(range(V), key=lambda j: -logp[j])[:head_k]
        terms = [-(logp[j] + math.log(V)) / V for j in range(V)]  # KL(U ‖ p) = Σ_j (1/V) log((1/V) / p_j)
        totals["sc"] += sum(terms)
        totals["sc_head"] += sum(terms[j] for j in top)
        totals["sc_tail"] += sum(terms[j] for j in range(V) if j not in top)
        top_mass = sum(math.exp(logp[j]) for j in top)
        totals["sc_topk"] += sum(math.log((1 / head_k) / (math.exp(logp[j]) / top_mass)) / head_k for j in top)
        totals["entropy"] -= sum(math.exp(v) * v for v in logp)
        totals["logprob"] += logp[token]
    return {key: value / len(tokens) for key, value in totals.items()}


def test_anatomy_splits_self_certainty_as_the_brute_force_reference(anatomy):
    model, tokenizer = load_model("tiny-random")
    model.eval()
    torch.manual_seed(0)
    temperature, head_k = 0.7, 5
    sampler = SelftaughtSampler(model, tokenizer, max_prompt_length=32, max_completion_length=6, temperature=temperature)
    rollout = sampler.sample(["What is 2 + 3?", "Add 41 and 7, then double it."], 3)  # prompts of unequal length
    assert (~rollout.prompt_mask.bool()).any()  # left padding is exercised
    rollout.completion_mask[0, 3:] = 0  # as if row 0 had ended at its third token: masked positions must not count
    statistics = anatomy["token_statistics"](model, rollout, temperature, head_k)
    for row in range(len(rollout)):
        expected = _reference(model, rollout, row, temperature, head_k)
        for key, value in expected.items():
            assert statistics[key][row].item() == pytest.approx(value, rel=1e-6, abs=1e-7), (row, key)
        assert statistics["sc_head"][row] + statistics["sc_tail"][row] == pytest.approx(statistics["sc"][row])


def test_the_sweeps_train_each_familys_recipes_with_visible_overrides(tmp_path):
    sweep = runpy.run_path(str(SCRIPTS / "demo_dev_sweep.py"))
    assert sweep["family_methods"]("tiny_ramble") == ["grpo", "intuitor", "majority_vote", "answer_agreement",
                                                     "token_entropy", "trajectory_logprob", "random"]
    assert set(sweep["family_methods"]("tiny")) >= {"grpo", "intuitor", "random"}
    recipe = sweep["family_recipe"]("tiny_ramble", "intuitor", tmp_path / "run", 3, ["seed=2"])
    config = build_config(recipe)
    assert (config.model.name_or_path, config.max_steps, config.save_steps, config.seed) == ("tiny-ramble", 3, 3, 2)
    assert config.output_dir == str(tmp_path / "run")
