"""scripts/chain_model_study.py end to end at toy size (a few pretraining and self-play steps), so the
study behind docs/program_model.md's design D6 cannot rot between its runs."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chain_model_study.py"


def test_the_study_builds_measures_plays_and_measures_again_for_both_types(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--output", str(tmp_path), "--steps", "5", "--programs", "80",
                          "--examples", "2", "--eval-n", "6", "--eval-samples", "2", "--azr-steps", "2",
                          "--azr-tasks", "2", "--additions", "40"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["build"]["steps"] == 5 and study["build"]["settings"]["programs"] == 80
    assert study["build"]["settings"]["additions"] == 40
    assert study["build"]["settings"]["task_types"] == ["deduction", "abduction"]
    for figures in (study[when][task_type] for when in ("base", "after") for task_type in ("deduction", "abduction")):
        assert figures["n"] == 6 and figures["samples"] == 2
        pass1 = figures["accuracy"]["pass@1"]
        assert 0 <= pass1["low"] <= pass1["value"] <= pass1["high"] <= 1
    assert len(study["curves"]) == 6 and all(len(values) == 2 for values in study["curves"].values())
    excluded = (tmp_path / "azr" / "excluded_programs.jsonl").read_text().splitlines()
    assert len(excluded) == 2000  # every measured dev and held-out program, kept out of self-play
    assert "deduction: + AZR self-play, 2 steps" in run.stdout and "abduction: + AZR self-play, 2 steps" in run.stdout
