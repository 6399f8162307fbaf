"""The built-in program world (selftaught.data.programs): splits by content, inversions that work."""

import pytest

from selftaught.data import programs


def test_splits_are_decided_by_the_program_text_and_are_disjoint():
    world = programs.all_programs()
    by_split = {split: {p for _, _, p in programs.all_programs(split)} for split in programs.SPLITS}
    assert sum(len(v) for v in by_split.values()) == len(world) == len({p for _, _, p in world})
    assert not (by_split["pretrain"] & by_split["dev"]) and not (by_split["pretrain"] & by_split["heldout"])
    assert not by_split["dev"] & by_split["heldout"]
    assert len(by_split["heldout"]) >= 200  # the demo measures 200 distinct held-out programs
    for _, _, program in world[:50]:
        assert programs.split_of(program) == programs.split_of("\n" + program + "  \n")  # layout-blind ends


@pytest.mark.parametrize("split", programs.SPLITS)
def test_generate_draws_distinct_programs_of_its_split_only(split):
    items = programs.generate(150, split=split, seed=1, examples=3)
    assert len({item.program for item in items}) == len(items) == min(150, len(programs.all_programs(split)))
    assert all(programs.split_of(item.program) == split for item in items)
    assert all(len(set(item.inputs)) == len(item.inputs) for item in items)
    assert programs.generate(150, split=split, seed=1, examples=3) == items  # seeded
    assert {item.family for item in items} == set(programs.FAMILIES)


def test_every_inversion_gives_an_input_that_produces_the_output():
    # The obviously-correct check: run the program on the input the worked steps found.
    checked = 0
    for split in programs.SPLITS:
        for item in programs.generate(1000, split=split, seed=7, examples=4):
            for example, output in enumerate(item.outputs):
                steps, found = programs.inversion(item, example)  # raises if it does not reproduce the output
                assert steps and programs.run_program(item.program, [found]) == [output]
                checked += 1
    assert checked > 2000


def test_held_out_programs_are_the_held_out_split():
    held_out = programs.heldout_programs()
    assert held_out == {p.strip() for _, _, p in programs.all_programs("heldout")}
    assert not held_out & {p.strip() for _, _, p in programs.all_programs("pretrain")}
