"""The shipped selftaught-tiny-ramble: loadable the standard way and small, a corpus that never
touches RL prompts, dev or held-out problems, a model card that records what the build measured,
and recipes measured with the settings they train with."""

import json
import re

from transformers import AutoModelForCausalLM

from selftaught.config import build_config
from selftaught.data import addition
from selftaught.models import ALIASES, TINY_RAMBLE_ASSET
from selftaught.recipes import load_recipe
from selftaught.tiny.addition_corpus import addition_corpus
from selftaught.tiny.competence import tiny_math_config
from selftaught.tiny.failure_modes import FAILURE_MODES

FAMILY = ("intuitor", "grpo", "random")
"""The tiny-ramble recipes: configs/<method>_tiny_ramble.yaml."""


def test_tiny_ramble_is_shipped_small_and_loads_with_auto_model():
    assert ALIASES["tiny-ramble"] == str(TINY_RAMBLE_ASSET)
    assert (TINY_RAMBLE_ASSET / "model.safetensors").stat().st_size <= 20 * 2**20
    model = AutoModelForCausalLM.from_pretrained(TINY_RAMBLE_ASSET)
    assert 500_000 < sum(p.numel() for p in model.parameters()) <= 800_000  # tiny-math's size or smaller


def test_its_corpus_never_holds_a_train_dev_or_held_out_problem():
    build = json.loads((TINY_RAMBLE_ASSET / "build.json").read_text())["args"]
    documents = addition_corpus(3000, procedure_share=build["procedure_share"], wrong_share=build["wrong_share"],
                                columns_share=build["columns_share"], seed=build["seed"],
                                failure=FAILURE_MODES["ramble"].write)
    others = {p.prompt for split in ("train", "dev", "heldout") for p in addition.generate(3000, split, seed=0)}
    for document in documents:
        question = document.context.split("\n")[0].removeprefix("Question: ")
        assert question not in others
        a, b = map(int, re.search(r"(\d+)\D+(\d+)", question).groups())
        template = next(i for i, t in enumerate(addition.TEMPLATES) if t.format(a=a, b=b) == question)
        assert addition.split_of(a, b, template) == "pretrain"


def test_model_card_records_the_measured_figures():
    card = (TINY_RAMBLE_ASSET / "MODEL.md").read_text()
    build = json.loads((TINY_RAMBLE_ASSET / "build.json").read_text())
    figures = build["figures"]
    pass1 = figures["accuracy"]["pass@1"]["value"]
    assert f"{pass1:.3f}" in card and 0.15 <= pass1 <= 0.45  # room for RL, as tiny-math
    for name, result in figures["sources"].items():
        assert f"| {name} | {result['value']:.3f}" in card
    assert figures["sources"]["self_certainty"]["value"] >= 0.70  # what the model is built for
    split = figures["self_certainty_split"]
    assert f"{split['auroc']['sc_tail']['value']:.3f}" in card
    assert "ramble" in card and "The failure mode it models, and why" in card


def test_its_recipes_train_and_measure_with_tiny_maths_settings():
    """`tiny.competence.addition_figures` measures at the tiny-math block's settings: the tiny-ramble
    recipes differ from it only in the model, their directory, their reward and their rate."""
    for method in FAMILY:
        config = build_config(load_recipe(f"{method}_tiny_ramble.yaml"))
        assert config.model.name_or_path == "tiny-ramble"
        differing = {key for key, value in config.model_dump().items() if value != tiny_math_config().model_dump()[key]}
        assert differing <= {"model", "output_dir", "rewards", "learning_rate", "method"}, (method, differing)
