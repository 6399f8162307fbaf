"""The demo report (report.md, report.png) from a summary with one math and one program section."""

from selftaught.demo_report import markdown, math_targets, program_targets, verdict, write_report
from selftaught.evaluate import Accuracy


def _figure(correct, n):
    low, high = Accuracy(correct, n).wilson_interval()
    return {"value": correct / n, "low": low, "high": high, "n": n}


def _additions(pass1, procedure=_figure(40, 200)):
    return {"additions": {"pass@1": pass1, "procedure share": procedure}}


def _run(after_pass1, reward="self_certainty"):
    return {"steps": 3, "seconds_per_step": 0.5, "reward": reward,
            "config": {"rewards": [{"name": reward, "weight": 1.0}]}, "after": _additions(after_pass1),
            "curves": {"reward/mean": [0.1, 0.2, 0.3], "self_certainty/mean": [1.0, 1.1, 1.3],
                       "completion_length/mean": [20.0, 19.0, 18.0]}}


def _math_section(after_pass1, others=None):
    return {"kind": "math", "model": "tiny-math", "base": _additions(_figure(70, 200)),
            "eval": {"n": 200, "samples": 8, "temperature": 1.0},
            "auroc": {"self_certainty": {"value": 0.1, "low": 0.05, "high": 0.15, "pairs": 300,
                                         "verdict": "likely to hurt"}},
            "runs": {"intuitor": _run(after_pass1), **(others or {})}}


def _program_section(deduction_after):
    def programs(deduction):
        return {"deduction": {"pass@1": deduction, "procedure share": _figure(20, 60)},
                "abduction": {"pass@1": _figure(10, 60), "procedure share": _figure(5, 60)}}

    azr = {"steps": 10, "seconds_per_step": 2.0, "config": {}, "excluded_proposals": 3,
           "after": {**programs(deduction_after), **_additions(_figure(70, 200))},
           "curves": {"reward/mean": [0.0, 0.1], "azr/deduction/propose/valid_rate": [0.5] * 5 + [0.25] * 5,
                      "azr/deduction/solve/solve_rate": [0.0] * 5 + [0.25] * 5,
                      "azr/deduction/solve/tags/procedure": [0.2] * 5 + [0.6] * 5}}
    return {"kind": "programs", "model": "tiny", "base": {**programs(_figure(10, 60)), **_additions(_figure(70, 200))},
            "eval": {"programs_n": 60, "samples": 8, "math_n": 200}, "runs": {"azr": azr}}


def _summary(after_pass1, others=None, deduction_after=_figure(12, 60)):
    return {"runtime_s": 12.0, "quick": False,
            "sections": {"tiny-math": _math_section(after_pass1, others), "tiny": _program_section(deduction_after)}}


def test_verdict_needs_disjoint_intervals():
    base = _figure(70, 200)
    assert verdict(base, _figure(75, 200)) == "no measurable change"
    assert verdict(base, _figure(130, 200)) == "better"
    assert verdict(base, _figure(20, 200)) == "worse"


def test_markdown_reports_what_was_measured():
    text = markdown(_summary(_figure(75, 200)))
    assert "| + intuitor, 3 steps | additions | 0.375 [" in text
    assert "| + azr, 10 steps | deduction | 0.200 [" in text
    assert "additions pass@1: no measurable change (0.350 → 0.375)" in text
    assert "self-certainty 1.000 → 1.300" in text
    assert "azr/deduction/solve/solve_rate 0.00 → 0.25" in text
    improved = markdown(_summary(_figure(130, 200)))
    assert "additions pass@1: better (0.350 → 0.650)" in improved
    assert "| self_certainty | 0.100 [0.05, 0.15] (likely to hurt) | — |" in text


def test_math_targets_are_met_only_with_the_gain_and_disjoint_intervals():
    label_free = {"majority_vote": _run(_figure(100, 200), "majority_vote"),
                  "token_entropy": _run(_figure(76, 200), "token_entropy")}
    lines = math_targets("tiny-math", _math_section(_figure(75, 200), {"grpo": _run(_figure(110, 200), "math_answer"),
                                                                        **label_free}))
    assert lines[0].startswith("- GRPO (gold answers) ≥ +0.15 pass@1: met — +0.200")
    assert "MISSED (1 of 2)" in lines[1] and "token_entropy +0.030 (intervals overlap)" in lines[1]
    assert "Intuitor ≥ +0.10 pass@1: MISSED" in lines[2] and "AUROC 0.10" in lines[2]
    assert "not met" in lines[3]
    small = math_targets("tiny-math", _math_section(_figure(75, 200), {"grpo": _run(_figure(95, 200), "math_answer")}))
    assert "MISSED — +0.125" in small[0]


def test_random_control_must_stay_inside_the_noise():
    inside = math_targets("tiny-math", _math_section(_figure(75, 200), {"random": _run(_figure(72, 200), "random")}))
    assert any("random-reward control inside the noise" in line and ": yes" in line for line in inside)
    outside = math_targets("tiny-math", _math_section(_figure(75, 200), {"random": _run(_figure(10, 200), "random")}))
    assert any("random-reward control inside the noise" in line and ": NO" in line for line in outside)


def test_program_targets_judge_azr_on_held_out_deduction():
    missed = program_targets(_program_section(_figure(12, 60)))
    assert missed[0].startswith("- AZR: held-out deduction pass@1 ≥ +0.10, intervals apart: MISSED — +0.033")
    met = program_targets(_program_section(_figure(40, 60)))
    assert met[0].startswith("- AZR: held-out deduction pass@1 ≥ +0.10, intervals apart: met — +0.500")
    assert any("works step by step more often over the run: yes" in line and "first 5 steps 0.20 → last 0.60" in line
               for line in met)
    assert any("valid-proposal rates do not fall" in line and ": NO" in line for line in met)
    assert any("dropped from training): 3" in line for line in met)
    assert any(line.startswith("- transfer, programs → additions") for line in met)


def test_write_report_draws_a_png(tmp_path):
    write_report(_summary(_figure(75, 200)), tmp_path)
    assert (tmp_path / "report.md").exists()
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
