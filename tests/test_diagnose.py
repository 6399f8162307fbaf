"""`selftaught diagnose`: within-group AUROC against brute-force pairs, bootstrap intervals,
verdicts, and an end-to-end run on the built-in tiny model (diagnose.json)."""

import itertools
import json
import math

import numpy as np
import pytest

from selftaught.diagnose import (HELPS_AT, HURTS_AT, MIN_PAIRS, group_pair_counts, ratio_with_interval, verdict,
                                 within_group_auroc)


def brute_within_group_auroc(scores, correct, G):
    wins = pairs = 0.0
    for g in range(0, len(scores), G):
        for i, j in itertools.product(range(g, g + G), repeat=2):
            if correct[i] and not correct[j] and not (math.isnan(scores[i]) or math.isnan(scores[j])):
                pairs += 1
                wins += 1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0
    return wins / pairs if pairs else None, pairs


def test_within_group_auroc_matches_explicit_pairs_with_ties_and_missing_scores():
    rng = np.random.default_rng(0)
    G = 4
    scores = rng.integers(0, 3, size=40).astype(float)  # many ties
    scores[[3, 17]] = np.nan  # a user function's None rows
    correct = rng.random(40) < 0.5
    correct[:4] = True  # an all-right group: no pairs
    result = within_group_auroc(scores, correct, G)
    expected, pairs = brute_within_group_auroc(scores, correct, G)
    assert result["value"] == pytest.approx(expected) and result["pairs"] == pairs
    assert result["low"] <= result["value"] <= result["high"]


def test_within_group_ignores_cross_group_pairs():
    """Group 1 scores everything high, group 2 low; within each group the wrong one scores higher."""
    scores = [10.0, 11.0, 0.0, 1.0]
    correct = [True, False, True, False]
    assert within_group_auroc(scores, correct, 2)["value"] == 0.0  # a pooled AUROC would say 0.25
    wins, pairs = group_pair_counts(scores, correct, 2)
    assert wins.tolist() == [0.0, 0.0] and pairs.tolist() == [1.0, 1.0]


def test_bootstrap_interval_is_over_groups_and_degenerate_cases():
    constant = ratio_with_interval([1, 1, 1], [2, 2, 2])
    assert constant == {"value": 0.5, "low": 0.5, "high": 0.5}
    assert ratio_with_interval([0, 0], [0, 0])["value"] is None
    spread = ratio_with_interval([0, 1] * 20, [1] * 40)
    assert spread["low"] < 0.5 < spread["high"] and spread["high"] - spread["low"] < 0.4


def test_verdict_thresholds():
    assert verdict(HELPS_AT, MIN_PAIRS) == "likely to help"
    assert verdict(HURTS_AT, MIN_PAIRS) == "likely to hurt"
    assert verdict(0.5, 1000) == "neutral"
    assert verdict(0.9, MIN_PAIRS - 1) == "unknown" and verdict(None, 0) == "unknown"


def test_diagnose_cli_on_tiny_writes_diagnose_json(tmp_path, capsys):
    from selftaught.cli import main

    reward = tmp_path / "mine.py"
    reward.write_text("def short(prompts, completions, completion_ids, **columns):\n"
                      "    return [-float(len(ids)) for ids in completion_ids]\n")
    assert main(["diagnose", "--model", "tiny", "--data", "arithmetic", "--n", "6", "--samples", "4",
                 "--max-new-tokens", "16", "--reward", f"{reward}:short", "--output-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "diagnose.json").read_text())
    assert record["n"] == 6 and record["samples"] == 4 and record["split"] == "train"
    assert record["prompt_template"] == "Question: {prompt}\nAnswer:"  # tiny has no chat template
    assert set(record["accuracy"]) == {"pass@1", "pass@4", "majority@4", "greedy"}
    for result in record["accuracy"].values():
        assert 0.0 <= result["value"] <= 1.0
    assert record["accuracy"]["pass@1"]["value"] <= record["accuracy"]["pass@4"]["value"]
    assert set(record["sources"]) == {"self_certainty", "majority_vote", "answer_agreement", "token_entropy",
                                      "trajectory_logprob", "random", f"{reward}:short"}
    for name, result in record["sources"].items():
        assert result["verdict"] in ("likely to help", "neutral", "likely to hurt", "unknown")
        assert result["line"].startswith(name)
    out = capsys.readouterr().out
    assert "| trajectory_logprob |" in out and "diagnose.json" in out


def test_diagnose_needs_answers_and_two_samples(tmp_path):
    from selftaught.cli import main

    data = tmp_path / "q.jsonl"
    data.write_text('{"prompt": "hi"}\n')
    assert main(["diagnose", "--model", "tiny-random", "--data", str(data), "--output-dir", str(tmp_path)]) == 2
    assert main(["diagnose", "--model", "tiny-random", "--data", "arithmetic", "--samples", "1"]) == 2
    assert main(["diagnose", "--data", "arithmetic"]) == 2


def test_diagnose_takes_a_recipes_settings_and_flags_override_them(tmp_path):
    """--config: the recipe's model, data (fields, prompt format), τ, lengths, seed and user
    rewards, as train reads them; a flag that names a key (--max-new-tokens) overrides it."""
    import yaml

    from selftaught.cli import main

    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "solution": str(i + 1)}) + "\n"
                            for i in range(4)))
    reward = tmp_path / "mine.py"
    reward.write_text("def short(completions, **columns):\n    return [-float(len(c)) for c in completions]\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name_or_path": "tiny-random"}, "temperature": 0.7, "max_completion_length": 12, "seed": 3,
        "data": {"source": str(data), "prompt_field": "question", "answer_field": "solution",
                 "prompt_template": "Q: {prompt}\nA:", "system_prompt": "Add."},
        "rewards": [{"name": "self_certainty"}, {"name": f"{reward}:short", "weight": 0.5}]}))
    assert main(["diagnose", "--config", str(recipe), "--n", "3", "--samples", "2", "--max-new-tokens", "6",
                 "--output-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "diagnose.json").read_text())
    assert (record["model"], record["data"], record["split"]) == ("tiny-random", str(data), "train")
    assert (record["temperature"], record["max_new_tokens"], record["seed"]) == (0.7, 6, 3)
    assert record["prompt_template"] == "Q: {prompt}\nA:" and record["n"] == 3
    assert record["examples"][0]["prompt"] == "Add.\n\nQ: What is 0 + 1?\nA:"  # tiny-random: no chat template
    assert f"{reward}:short" in record["sources"]


def test_diagnose_bad_keys_are_one_line_exit_2(tmp_path, capsys):
    from selftaught.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: {name_or_path: tiny-random}\n")
    for args, message in ((["--config", str(recipe), "--set", "data.sorce=x"], "unknown key 'data.sorce'"),
                          (["--model", "tiny-random", "--data", "arithmetic", "--set", "seed=1"], "give --config"),
                          (["--model", "tiny-random", "--data", "arithmetic", "--temperature", "0"], "temperature")):
        assert main(["diagnose", *args, "--output-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
