"""The shipped selftaught-tiny: loadable the standard way, small, documented, and
its corpus never touches the held-out data the demo and model card report."""

import json
import subprocess
import sys

from transformers import AutoModelForCausalLM

from selftaught.data import addition, chains
from selftaught.models import ALIASES, TINY_ASSET, load_model
from selftaught.tiny.competence import tiny_azr_config
from selftaught.tiny.corpus import (BARE_OPENER, STEP_CONTEXT, STEP_MARK, build_corpus, chain_tasks, solver_documents,
                                    works_step_by_step)

ASSET = TINY_ASSET


def test_tiny_is_the_shipped_pretrained_model():
    assert ASSET.is_dir() and (ASSET / "config.json").is_file(), ASSET
    assert ALIASES["tiny"] == str(ASSET)


def test_weights_are_small_and_load_with_auto_model():
    weights = ASSET / "model.safetensors"
    assert weights.stat().st_size <= 20 * 2**20
    model = AutoModelForCausalLM.from_pretrained(ASSET)
    assert sum(p.numel() for p in model.parameters()) > 500_000


def test_model_card_records_the_measured_figures():
    card = (ASSET / "MODEL.md").read_text()
    build = json.loads((ASSET / "build.json").read_text())
    deduction = build["figures"]["programs"]["deduction"]
    for name, figure in deduction["accuracy"].items():
        assert figure["value"] is None or 0.0 <= figure["value"] <= 1.0, name
    assert f"{deduction['accuracy']['pass@1']['value']:.3f}" in card
    assert f"{build['figures']['additions']['accuracy']['pass@1']['value']:.3f}" in card


def test_tiny_works_additions_step_by_step_when_asked():
    model, tokenizer = load_model("tiny")
    problem = addition.generate(1, split="heldout", seed=0)[0]
    ids = tokenizer(STEP_CONTEXT.format(prompt=problem.prompt), return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=96, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert works_step_by_step(text) and "\\boxed{" in text, text


def test_corpus_is_disjoint_from_dev_and_held_out_data():
    documents = build_corpus(programs_n=400, examples=4, additions_n=300, seed=0)
    text = "\n".join(d.context + d.continuation for d in documents)
    for split in ("dev", "heldout"):
        for task in chain_tasks(1000, seed=0, split=split)["deduction"]:
            assert f"{task.program}\n```" not in text, (split, task.program)  # a whole program, not a prefix of one
    for problem in addition.generate(100, split="heldout", seed=0):
        assert problem.prompt not in text
    assert {t.program for t in chains.generate(400, "pretrain")} & {
        t.program for t in chains.generate(400, "heldout")} == set()


def test_solver_documents_work_step_by_step_or_answer_bare():
    import random

    item = chains.generate(1, "pretrain", seed=0, examples=3)[0]
    stepped = solver_documents("deduction", item, 0, step_share=1.0, wrong_share=0.0, cue=False,
                               rng=random.Random(0))[0]
    thought, answer = stepped.continuation.split("</think>")
    assert thought.strip().startswith(STEP_MARK) and thought.strip().splitlines()[-1].endswith(f" = {item.outputs[0]}")
    assert f"```output\n{item.outputs[0]}\n```" in answer
    bare = solver_documents("deduction", item, 0, step_share=0.0, wrong_share=0.0, cue=False,
                            rng=random.Random(0))[0]
    assert bare.continuation.strip().startswith(f"{BARE_OPENER} {item.outputs[0]}.")
    assert not works_step_by_step(bare.continuation)


def test_quick_demo_end_to_end(tmp_path):
    from selftaught.demo import MATH_SECTIONS, PROGRAMS, PROCEDURE

    result = subprocess.run([sys.executable, "-m", "selftaught", "demo", "--quick", "--output-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\r" not in result.stdout + result.stderr  # a redirected demo log holds no bar frames
    summary = json.loads((tmp_path / "summary.json").read_text())
    sections = summary["sections"]
    assert set(sections) == {s.model for s in MATH_SECTIONS} | {PROGRAMS.model}
    for spec in MATH_SECTIONS:  # every method ran on every math model, measured the same way
        section = sections[spec.model]
        assert set(section["runs"]) == set(spec.methods)
        assert {"pass@1", "pass@8", "majority@8", "greedy", PROCEDURE} <= set(section["base"]["additions"])
        assert {"self_certainty", "majority_vote", "random"} <= set(section["auroc"])  # the base model's diagnose
        for name, run in section["runs"].items():
            assert run["config"]["rewards"][0] == {"name": run["reward"], "weight": 1.0}, name
            assert len(run["curves"]["rewards/math_answer/mean"]) == run["steps"], name  # gold, logged
    programs = sections[PROGRAMS.model]
    assert set(programs["runs"]) == {"azr", *(name for name, _ in PROGRAMS.additions_recipes)}
    types = tiny_azr_config().azr.task_types
    assert set(programs["base"]) == {*types, "additions"}
    for run in programs["runs"].values():  # programs and additions, before and after each run: the transfer rows
        assert set(run["after"]) == set(programs["base"])
    azr = programs["runs"]["azr"]
    assert {f"azr/{t}/{what}" for t in types
            for what in ("propose/valid_rate", "solve/solve_rate", "solve/tags/procedure")} <= set(azr["curves"])
    assert azr["excluded_proposals"] >= 0 and azr["held_out_split_proposals"] >= 0
    for section in sections.values():
        for figures in [section["base"]] + [run["after"] for run in section["runs"].values()]:
            for task, values in figures.items():
                for name, figure in values.items():
                    assert 0 < figure["n"], (task, name)
                    if figure["value"] is not None:
                        assert figure["low"] <= figure["value"] <= figure["high"], (task, name)
        for name, run in section["runs"].items():
            assert run["steps"] >= 1 and run["seconds_per_step"] > 0, name
            assert run["config"]["max_steps"] == run["steps"], name
            resolved = run["resolved_config"]  # every setting, the defaults the recipe leaves out included
            assert resolved["max_steps"] == run["steps"] and {"seed", "beta", "epsilon"} <= set(resolved), name
            assert len(run["curves"]["reward/mean"]) == run["steps"], name
            assert len(run["curves"]["completion_length/mean"]) == run["steps"], name
    assert "selftaught demo" in result.stdout
    report = (tmp_path / "report.md").read_text()
    for name, section in sections.items():
        assert f"## `{name}`" in report
        for run_name, run in section["runs"].items():
            assert f"| + {run_name}, {run['steps']} steps |" in report
    assert report.count("### Targets") == len(sections)
    assert "GRPO (gold answers)" in report and "Intuitor" in report and "random-reward control" in report
    assert "AZR: held-out deduction pass@1" in report and "transfer, programs → additions" in report
    assert f"{sections['tiny-math']['base']['additions']['pass@1']['value']:.3f}" in report
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.png").stat().st_size > 10_000
