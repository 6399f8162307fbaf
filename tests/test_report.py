"""The demo report (report.md, report.png) from a summary."""

from selftaught.evaluate import Accuracy
from selftaught.report import markdown, target_lines, verdict, write_report


def _figure(correct, n):
    low, high = Accuracy(correct, n).wilson_interval()
    return {"value": correct / n, "low": low, "high": high, "n": n}


def _run(after_pass1, reward="self_certainty"):
    return {"steps": 3, "seconds_per_step": 0.5, "config": {"rewards": [{"name": reward, "weight": 1.0}]},
            "after": {"pass@1": after_pass1, "program/deduction": _figure(11, 60)},
            "curves": {"reward/mean": [0.1, 0.2, 0.3], "self_certainty/mean": [1.0, 1.1, 1.3],
                       "completion_length/mean": [20.0, 19.0, 18.0]}}


def _summary(after_pass1, others=None):
    base = {"pass@1": _figure(70, 200), "program/deduction": _figure(10, 60)}
    azr = {"steps": 2, "seconds_per_step": 2.0, "config": {}, "after": {"program/deduction": _figure(12, 60)},
           "curves": {"reward/mean": [0.0, 0.1], "azr/deduction/propose/valid_rate": [0.25, 0.5],
                      "azr/deduction/solve/solve_rate": [0.0, 0.25]}}
    return {"models": {"math": "tiny-math", "programs": "tiny"}, "runtime_s": 12.0, "quick": False, "base": base,
            "eval": {"math_n": 200, "programs_n": 60, "samples": 8, "temperature": 1.0},
            "auroc": {"self_certainty": {"value": 0.1, "low": 0.05, "high": 0.15, "pairs": 300,
                                         "verdict": "likely to hurt"}},
            "runs": {"intuitor": _run(after_pass1), **(others or {}), "azr": azr}}


def test_verdict_needs_disjoint_intervals():
    base = _figure(70, 200)
    assert verdict(base, _figure(75, 200)) == "no measurable change"
    assert verdict(base, _figure(130, 200)) == "better"
    assert verdict(base, _figure(20, 200)) == "worse"


def test_markdown_reports_what_was_measured():
    text = markdown(_summary(_figure(75, 200)))
    assert "| + intuitor, 3 steps | 0.375 [" in text
    assert "| + azr, 2 steps | — | 0.200 [" in text
    assert "pass@1: no measurable change (0.350 → 0.375)" in text
    assert "self-certainty 1.000 → 1.300" in text and "azr/deduction/solve/solve_rate 0.00 → 0.25" in text
    improved = markdown(_summary(_figure(130, 200)))
    assert "pass@1: better (0.350 → 0.650)" in improved
    assert "| self_certainty | 0.100 [0.05, 0.15] (likely to hurt) | — |" in text


def test_targets_are_met_only_with_the_gain_and_disjoint_intervals():
    label_free = {"majority_vote": _run(_figure(100, 200), "majority_vote"),
                  "token_entropy": _run(_figure(76, 200), "token_entropy")}
    lines = target_lines(_summary(_figure(75, 200), {"grpo": _run(_figure(110, 200), "math_answer"),
                                                      **label_free}))
    assert lines[0].startswith("- GRPO (gold answers) ≥ +0.15 pass@1: met — grpo +0.200")
    assert "MISSED (1 of 2)" in lines[1] and "token_entropy +0.030 (intervals overlap)" in lines[1]
    assert "Intuitor ≥ +0.10 pass@1: MISSED" in lines[2] and "AUROC 0.10" in lines[2]
    assert "not met" in lines[3]
    small = target_lines(_summary(_figure(75, 200), {"grpo": _run(_figure(95, 200), "math_answer")}))
    assert "MISSED — grpo +0.125" in small[0]


def test_write_report_draws_a_png(tmp_path):
    write_report(_summary(_figure(75, 200)), tmp_path)
    assert (tmp_path / "report.md").exists()
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
