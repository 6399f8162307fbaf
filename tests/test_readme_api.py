"""The README's Python API examples run as written (with fewer steps), so they cannot rot."""

import re

from conftest import ROOT


def readme_examples() -> list[str]:
    """The ```python blocks of README.md's "## Python API" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def readme_example() -> str:
    """The first ```python block of README.md's "## Python API" section."""
    return readme_examples()[0]


def _shrunk(code: str, out, replacements=(("max_steps=20", "max_steps=2"), ("limit=50", "limit=4"))) -> str:
    for old, new in (*replacements, ("runs/api", str(out))):
        assert old in code, f"the README example no longer contains {old!r}; update this test"
        code = code.replace(old, new)
    return code


def test_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the example names configs/intuitor_tiny.yaml relative to the repository
    out = tmp_path / "api"
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(_shrunk(readme_example(), out), "README.md (Python API)", "exec"), namespace)

    history = namespace["history"]
    assert [row["step"] for row in history] == [1, 2]
    for row in history:  # the user's reward was computed, logged and weighted into training
        assert 0.0 <= row["rewards/short_answers/mean"] <= 1.0
    assert "rewards/short_answers/mean" in (out / "metrics.jsonl").read_text()
    results = namespace["results"]
    assert results["benchmarks"]["arith"]["n"] == 4
    assert (out / "eval" / "results.json").exists()
    printed = capsys.readouterr().out
    assert "arith" in printed and f"{history[-1]['reward/mean']}" in printed

    # The subclass form, continuing the first block in its namespace (its shrunk config included).
    exec(compile(_shrunk(readme_examples()[1], out, replacements=()), "README.md (Python API, subclass)", "exec"),
         namespace)
    assert [row["step"] for row in namespace["history"]] == [1, 2]
    assert all(0.0 <= row["rewards/short_answers/mean"] <= 1.0 for row in namespace["history"])
    assert "rewards/short_answers/mean" in (tmp_path / "api_episodes" / "metrics.jsonl").read_text()
