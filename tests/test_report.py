"""The demo report (report.md, report.png) from a summary."""

from selftaught.evaluate import Accuracy
from selftaught.report import markdown, verdict, write_report


def _figure(correct, n):
    return Accuracy(correct, n).as_dict()


def _summary(after_arith):
    base = {"arithmetic": _figure(70, 200), "program/deduction": _figure(10, 60)}
    run = {"steps": 3, "seconds_per_step": 0.5, "after": {"arithmetic": after_arith,
                                                          "program/deduction": _figure(11, 60)},
           "curves": {"reward/mean": [0.1, 0.2, 0.3], "self_certainty/mean": [1.0, 1.1, 1.3],
                      "completion_length/mean": [20.0, 19.0, 18.0]}}
    azr = {"steps": 2, "seconds_per_step": 2.0, "after": {"program/deduction": _figure(12, 60)},
           "curves": {"reward/mean": [0.0, 0.1], "azr/deduction/propose/valid_rate": [0.25, 0.5],
                      "azr/deduction/solve/solve_rate": [0.0, 0.25]}}
    return {"model": "tiny", "runtime_s": 12.0, "quick": False, "base": base,
            "runs": {"intuitor": run, "azr": azr}}


def test_verdict_needs_disjoint_intervals():
    base = _figure(70, 200)
    assert verdict(base, _figure(75, 200)) == "no measurable change"
    assert verdict(base, _figure(130, 200)) == "better"
    assert verdict(base, _figure(20, 200)) == "worse"


def test_markdown_reports_what_was_measured():
    text = markdown(_summary(_figure(75, 200)))
    assert "| + intuitor, 3 steps | 0.375 (75/200;" in text
    assert "| + azr, 2 steps | — | 0.200 (12/60;" in text
    assert "arithmetic: no measurable change (0.350 → 0.375)" in text
    assert "No method measurably improved this model" in text
    assert "self-certainty 1.000 → 1.300" in text and "azr/deduction/solve/solve_rate 0.00 → 0.25" in text
    improved = markdown(_summary(_figure(130, 200)))
    assert "arithmetic: better (0.350 → 0.650)" in improved
    assert "No method measurably improved" not in improved


def test_write_report_draws_a_png(tmp_path):
    write_report(_summary(_figure(75, 200)), tmp_path)
    assert (tmp_path / "report.md").exists()
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_auroc_matches_counting_pairs():
    import itertools

    import torch

    from selftaught.demo import auroc

    right = torch.tensor([3.0, 1.0, 2.0, 2.0])
    wrong = torch.tensor([2.0, 0.5, 4.0])
    pairs = list(itertools.product(right.tolist(), wrong.tolist()))
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert abs(auroc(right, wrong) - expected) < 1e-12
    assert auroc(torch.tensor([1.0]), torch.tensor([])) != auroc(torch.tensor([1.0]), torch.tensor([]))  # nan


def test_markdown_states_the_self_certainty_diagnostic():
    summary = _summary(_figure(75, 200))
    summary["self_certainty_vs_correct"] = {"auroc": 0.512, "n": 400, "correct": 140,
                                           "self_certainty_right": 12.7, "self_certainty_wrong": 12.6}
    assert "AUROC 0.512 over 400 sampled training-prompt completions (140 right" in markdown(summary)


def test_png_survives_zero_and_perfect_scores(tmp_path):
    # The Wilson bounds at 0/n and n/n are off by rounding (a "negative" error bar).
    summary = _summary(_figure(0, 11))
    summary["runs"]["azr"]["after"]["program/deduction"] = _figure(6, 6)
    write_report(summary, tmp_path)
    assert (tmp_path / "report.png").stat().st_size > 0
