"""The chain-program world (selftaught.data.chains): bounds, splits, traces, and its corpus."""

import re

from selftaught.data import chains
from selftaught.data.programs import run_program, split_of
from selftaught.data.trace import worked_trace
from selftaught.tiny.corpus import STEP_MARK, chain_documents, chain_tasks


def _all_inputs(program: str) -> list[str]:
    if program.startswith("def f(a, b)"):
        return [f"{a}, {b}" for a in range(10) for b in range(10)]
    return [str(a) for a in range(10)]


def test_enumeration_is_distinct_and_generate_draws_from_it():
    everything = chains.all_chains()
    assert len(everything) == len(set(everything)) == 98_666
    assert {i.program for i in chains.generate(500, split="heldout", seed=5)} <= set(everything)


def test_every_value_of_every_trace_stays_in_bounds_for_every_input():
    # Brute force over a spread sample of the world: every statement's value on every input 0-9,
    # read from the worked trace (which itself is checked against the real call).
    everything = chains.all_chains()
    for program in everything[:: len(everything) // 150]:
        for arguments in _all_inputs(program):
            trace = worked_trace(program, arguments)
            assert trace is not None, (program, arguments)
            for line in trace.splitlines()[1:]:
                value = int(line.rsplit("=", 1)[1])
                assert chains.LOWEST <= value <= chains.HIGHEST, (program, arguments, line)
            assert re.search(r"= (-?\d+)$", trace).group(1) == run_program(program, [arguments])[0]


def test_generate_keeps_to_its_split_with_distinct_programs_and_inputs():
    drawn = {split: chains.generate(300, split=split, seed=3, examples=4) for split in ("pretrain", "dev", "heldout")}
    for split, items in drawn.items():
        assert len(items) == 300 and len({i.program for i in items}) == 300
        assert all(split_of(i.program) == split for i in items)
        assert all(len(set(i.inputs)) == len(i.inputs) == 4 for i in items)
        assert all(run_program(i.program, i.inputs) == i.outputs for i in items)
    programs = [{i.program for i in items} for items in drawn.values()]
    assert not (programs[0] & programs[1]) and not (programs[0] & programs[2]) and not (programs[1] & programs[2])
    # one seed gives prefixes of one sequence: what the study excludes from self-play covers what it measures
    assert [i.program for i in chains.generate(50, split="dev", seed=3, examples=4)] == [i.program for i in drawn["dev"][:50]]


def test_generate_ends_when_a_split_runs_out():
    items = chains.generate(200_000, split="dev", seed=0)
    assert len(items) == len({i.program for i in items}) == sum(split_of(p) == "dev" for p in chains.all_chains())


def test_chain_corpus_is_pretrain_only_and_its_worked_answers_are_right():
    items = chains.generate(60, split="pretrain", seed=0, examples=2)
    documents = chain_documents(items, seed=0, step_share=0.3, wrong_share=0.5, cue_share=0.5, proposer_share=0.5)
    measured = {t.program for t in chain_tasks(300, seed=0, split="heldout")["deduction"]}
    measured |= {t.program for t in chain_tasks(300, seed=0, split="dev")["deduction"]}
    assert not any(program in document.context + document.continuation
                   for document in documents for program in measured)
    worked = [d for d in documents if d.continuation.lstrip().startswith(STEP_MARK)]
    assert worked
    for document in worked:  # the trace's last value is the answer the document gives
        trace_value = re.search(r"= (-?\d+)\n</think>", document.continuation).group(1)
        assert f"```output\n{trace_value}\n```" in document.continuation
    assert any("propose a new deduction" in d.context for d in documents)


def test_inversion_reaches_an_input_for_most_outputs_and_every_input_it_gives_is_right():
    import random

    rng = random.Random(0)
    everything = chains.all_chains()
    reached = 0
    for program in rng.sample(everything, 3000):
        arguments = rng.choice(_all_inputs(program))
        output = int(run_program(program, [arguments])[0])
        inverted = chains.inversion(program, output)
        if inverted is None:
            continue
        steps, found = inverted
        reached += 1
        assert run_program(program, [found]) == [str(output)], (program, output, steps)
        assert len(steps) == program.count("\n")  # one step per program line, the last line first
        assert steps[0].startswith(program.splitlines()[-1].strip().removeprefix("return "))
    assert 0.93 <= reached / 3000 < 1.0  # 95% by the docstring's rule; the rest stop rather than search


def test_chain_abduction_documents_answer_with_an_input_that_gives_the_output():
    items = chains.generate(60, split="pretrain", seed=1, examples=2)
    documents = chain_documents(items, seed=0, step_share=0.5, wrong_share=0.5, cue_share=0.5, proposer_share=0.5,
                                task_types=("deduction", "abduction"))
    worked = [d for d in documents if "```input\n" in d.continuation and STEP_MARK in d.continuation]
    assert len(worked) > 20
    for document in worked:
        program = re.search(r"```python\n(.*?)\n```", document.context, re.S).group(1)
        output = re.findall(r"```output\n(.*?)\n```", document.context, re.S)[-1]
        found = re.search(r"```input\n(.*?)\n```", document.continuation, re.S).group(1)
        assert run_program(program, [found]) == [output], document.continuation
    assert any("propose a new abduction" in d.context for d in documents)


def test_builtin_exclusion_drops_the_measured_chains_and_knows_every_other_held_out_one():
    from selftaught.azr.episodes import excluded_programs, held_out_chains, program_key

    every = chains.all_chains()
    assert all(program_key(program) == program for program in every[::9])  # every ninth: all of them take ~5 s
    excluded = excluded_programs("builtin")
    for split in ("dev", "heldout"):  # what the model card and the demo measure: a prefix of these
        for item in chains.generate(chains.MEASURED_PROGRAMS, split=split, seed=chains.MEASURED_SEED):
            assert program_key(item.program) in excluded and item.program in held_out_chains()
        others = [item.program for item in chains.generate(300, split=split, seed=5)]
        assert all(program in held_out_chains() for program in others)  # counted when trained on
    assert not any(item.program in excluded or item.program in held_out_chains()
                   for item in chains.generate(300, split="pretrain", seed=5))
    proposal = "def f(a):\n    x = a + 4\n    return x - 3"  # spelled with extra spaces, still one key
    assert program_key(proposal.replace("a + 4", "a  +  4")) == program_key(proposal)
