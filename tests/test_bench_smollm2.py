"""benchmarks/bench_smollm2_label_free.py end to end at toy size (the built-in random model in
place of SmolLM2, one step per method), so the slow benchmark cannot rot between its runs."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_smollm2_label_free.py"


def test_the_benchmark_trains_both_recipes_and_measures_every_model_on_the_same_problems(tmp_path):
    toy = ["model.name_or_path=tiny-random", "max_steps=1", "max_completion_length=8", "num_generations=2",
           "per_device_train_batch_size=4"]
    run = subprocess.run([sys.executable, str(SCRIPT), "--n", "3", "--samples", "2", "--split", "train",
                          "--output", str(tmp_path), *(arg for item in toy for arg in ("--set", item))],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads((tmp_path / "results.json").read_text())
    assert set(record["runs"]) == {"intuitor/seed0", "majority_vote/seed0"}
    for figures in (record["base"], *(trained["after"] for trained in record["runs"].values())):
        assert figures["n"] == 3 and figures["samples"] == 2
        assert 0 <= figures["pass@1"]["low"] <= figures["pass@1"]["value"] <= figures["pass@1"]["high"] <= 1
    curves = [trained["curve"] for trained in record["runs"].values()]
    assert all(len(curve) == 1 and "reward/mean" in curve[0] for curve in curves)
    assert {trained["learning_rate"] for trained in record["runs"].values()} <= {1e-4, 3e-4}  # the recipes' own rates
    assert "| + intuitor" in run.stdout and "| + majority_vote" in run.stdout
