"""docs/reference.md, the project's algorithm reference: its citations resolve, and its §4 figures are true.

(1) Every "docs/reference.md §N" (and any "REFERENCE §N" left) in the repository's
    .py/.md/.yaml files names a section heading of docs/reference.md, and no file
    points to the spec that used to live above the repository root.
(2) §4.1's table of estimator biases is recomputed exactly: every multinomial count
    vector of n = 8 draws is enumerated, each estimator is evaluated on it (the
    library's `harmonic_entropy` / `plugin_entropy`, and the self-counting form by an
    explicit per-sample loop), and the probability-weighted mean minus the true
    entropy must equal, to 3 decimals, the figures the page prints.
"""

import math
import os
import re
from pathlib import Path

import pytest

from selftaught.rewards.entropy import harmonic_entropy, harmonic_number, plugin_entropy

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reference.md"
SUFFIXES = {".py", ".md", ".yaml", ".yml"}
SKIP_DIRS = {"runs", "node_modules", "build", "dist", "__pycache__"}
CITATION = re.compile(r"(docs/reference\.md|REFERENCE)\s*§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", re.M)
OLD_SPEC = re.compile(r"\.\./shared|shared/REFERENCE")


def repository_files():
    """The repository's text files of interest; hidden directories (.venv, .git) are not entered."""
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = sorted(d for d in subdirectories
                                   if not (d.startswith(".") or d in SKIP_DIRS or d.endswith(".egg-info")))
        for name in sorted(files):
            path = Path(directory) / name
            if path.suffix in SUFFIXES:
                yield path


def doc_sections() -> set[str]:
    return set(HEADING.findall(DOC.read_text()))


def test_doc_has_the_seven_sections_of_the_spec():
    sections = doc_sections()
    assert {str(n) for n in range(1, 8)} <= sections, sorted(sections)


def test_every_citation_names_an_existing_section():
    sections = doc_sections()
    broken, cited = [], 0
    for path in repository_files():
        text = path.read_text(errors="replace")
        for match in CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            cited += match.group(1) == "docs/reference.md"
            if match.group(2) not in sections:
                broken.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not broken, "citations of missing sections:\n" + "\n".join(broken)
    assert cited >= 15, f"only {cited} 'docs/reference.md §N' citations found: is the pattern still right?"


def test_no_file_points_above_the_repository():
    this = Path(__file__).resolve()
    offenders = []
    for path in repository_files():
        if path.resolve() == this:
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OLD_SPEC.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "files still point at the spec outside the repository:\n" + "\n".join(offenders)


# ---------------------------------------------------------------- §4: exact biases at n = 8


def count_vectors(n: int, k: int):
    """Every (m_1..m_k) of non-negative integers summing to n."""
    if k == 1:
        yield (n,)
        return
    for first in range(n + 1):
        for rest in count_vectors(n - first, k - 1):
            yield (first, *rest)


def multinomial_probability(counts, p) -> float:
    coefficient = math.factorial(sum(counts))
    for m in counts:
        coefficient //= math.factorial(m)
    return coefficient * math.prod(q ** m for q, m in zip(p, counts))


def self_counting_entropy(samples) -> float:
    """J(n) − (1/n) Σ_s J(m(x_s)), m counting s itself: a loop over the samples."""
    n = len(samples)
    return harmonic_number(n) - sum(harmonic_number(sum(t == s for t in samples)) for s in samples) / n


def exact_biases(p, n: int) -> dict[str, float]:
    """E[estimate] − H for the three estimators, by enumerating all count vectors."""
    assert math.isclose(sum(p), 1.0)
    H = -sum(q * math.log(q) for q in p)
    expectation = {"plug-in": 0.0, "self-counting": 0.0, "leave-one-out": 0.0}
    total_probability = 0.0
    for counts in count_vectors(n, len(p)):
        prob = multinomial_probability(counts, p)
        total_probability += prob
        samples = [x for x, m in enumerate(counts) for _ in range(m)]
        loo, selfc = harmonic_entropy(samples), self_counting_entropy(samples)
        distinct = sum(m > 0 for m in counts)
        assert selfc - loo == pytest.approx((1 - distinct) / n, abs=1e-12)  # the identity §4.1 states
        expectation["plug-in"] += prob * plugin_entropy(samples)
        expectation["self-counting"] += prob * selfc
        expectation["leave-one-out"] += prob * loo
    assert total_probability == pytest.approx(1.0, abs=1e-12)
    return {"H": H, **{name: value - H for name, value in expectation.items()}}


def _number(cell: str) -> float:
    return float(cell.strip().replace("−", "-"))


def doc_bias_table() -> tuple[list[tuple[float, ...]], dict[str, list[float]]]:
    """The distributions of §4.1's table header and its bias cells, per estimator."""
    lines = DOC.read_text().split("### 4.1", 1)[1].split("\n### ", 1)[0].splitlines()
    header = next(line for line in lines if line.startswith("| estimator |"))
    distributions = [tuple(float(v) for v in group.split(","))
                     for group in re.findall(r"p = \(([^)]*)\)", header)]
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in ("plug-in", "self-counting", "leave-one-out"):
            rows[cells[0]] = [_number(c) for c in cells[-len(distributions):]]
    return distributions, rows


def test_leave_one_out_bias_matches_its_closed_form():
    # E[Ĥ] − H = −Σ_x p_x Σ_{j≥n} (1 − p_x)^j / j   (§4)
    p, n = (0.7, 0.2, 0.1), 8
    closed = -sum(q * sum((1 - q) ** j / j for j in range(n, 4000)) for q in p)
    assert exact_biases(p, n)["leave-one-out"] == pytest.approx(closed, abs=1e-10)


def test_doc_bias_table_is_what_exact_enumeration_gives():
    distributions, rows = doc_bias_table()
    assert distributions and distributions[0] == (0.7, 0.2, 0.1), distributions
    assert set(rows) == {"plug-in", "self-counting", "leave-one-out"}, rows
    text = DOC.read_text()
    for column, p in enumerate(distributions):
        biases = exact_biases(p, 8)
        for name in rows:
            assert round(biases[name], 3) == rows[name][column], (p, name, biases[name], rows[name][column])
        # the ordering the page states: |leave-one-out| < |plug-in| < |self-counting|
        assert abs(biases["leave-one-out"]) < abs(biases["plug-in"]) < abs(biases["self-counting"]), biases
        assert all(biases[name] < 0 for name in rows), biases
        assert f"{biases['H']:.3f}" in text, f"true entropy {biases['H']:.3f} of {p} is not on the page"
    assert "|leave-one-out| < |plug-in| < |self-counting|" in text
