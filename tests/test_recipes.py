"""The tiny recipes live in configs/ only: each states what differs from the defaults with
its reason, the demo runs exactly those files plus visible overrides, and `base:` lets a
family share a block."""

from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from selftaught import demo
from selftaught.azr.config import AZRConfig
from selftaught.azr.tasks import TASK_TYPE_SPECS, TASK_TYPES
from selftaught.cli import main
from selftaught.config import TrainConfig, apply_overrides, build_config, load_config, read_recipe, set_dotted
from selftaught.errors import UserError
from selftaught.tiny import competence
from selftaught.tiny.addition_corpus import ANSWER_CONTEXT
from selftaught.recipes import RECIPES_DIR, load_recipe
from selftaught import demo_report

CONFIGS = ROOT / "configs"
TINY = sorted(CONFIGS.glob("*_tiny.yaml"))
TINY_RAMBLE = sorted(CONFIGS.glob("*tiny_ramble*.yaml"))
SMOLLM2_ARITH = sorted(CONFIGS.glob("*smollm2_arith*.yaml"))
"""The SmolLM2 arithmetic recipes benchmarks/bench_smollm2_label_free.py trains (README "A real model")."""
TINY_FAMILY = [*TINY, CONFIGS / "tiny_math_base.yaml", CONFIGS / "grpo_tiny_additions.yaml", *TINY_RAMBLE,
               *SMOLLM2_ARITH]
SECTIONS = ("model", "data", "azr")


def _leaves(raw: dict, prefix: str = ""):
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            yield from _leaves(value, f"{key}.")
        else:
            yield prefix + key, value


def _get(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


LOSS_RECIPES = ("gspo", "dapo")
"""The tiny-math recipes of TRL's GRPO variants (README "GSPO and DAPO"), not part of the demo."""


def test_the_tiny_recipes_exist():
    assert {p.name for p in TINY} == {f"{m}_tiny.yaml" for m in (*demo.METHODS, "azr", *LOSS_RECIPES)}
    assert all((CONFIGS / recipe).is_file() for _, recipe in demo.PROGRAMS.additions_recipes)
    ramble_methods = ("intuitor", "grpo", "random", "majority_vote", "answer_agreement", "token_entropy",
                      "trajectory_logprob")  # the demo runs the first three; the seed spread all seven
    assert {p.name for p in TINY_RAMBLE} == {"tiny_ramble_base.yaml", *(f"{m}_tiny_ramble.yaml" for m in ramble_methods)}
    assert {p.name for p in SMOLLM2_ARITH} == {"smollm2_arith_base.yaml", "intuitor_smollm2_arith.yaml",
                                               "majority_vote_smollm2_arith.yaml"}
    assert (ROOT / "selftaught" / "configs").is_symlink() and RECIPES_DIR.resolve() == CONFIGS.resolve()  # one copy


@pytest.mark.parametrize("path", TINY_FAMILY, ids=lambda p: p.name)
def test_a_tiny_recipe_builds_and_states_only_what_differs(path):
    config = load_config(path)  # validates, base included
    assert isinstance(config, TrainConfig)
    own = yaml.safe_load(path.read_text())
    base = read_recipe(path.parent / own["base"]) if "base" in own else {}
    defaults = TrainConfig().model_dump()
    for key, value in _leaves({k: v for k, v in own.items() if k != "base"}):
        inherited = _get(base, key)
        without_line = _get(defaults, key) if inherited is KeyError else inherited
        if key == "rewards":
            without_line = [dict(r) for r in without_line]
        assert value != without_line, f"{path.name}: {key}: {value!r} is what it would be without the line"


@pytest.mark.parametrize("path", TINY_FAMILY, ids=lambda p: p.name)
def test_every_line_of_a_tiny_recipe_gives_its_reason(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#") or (text.endswith(":") and text[:-1] in (*SECTIONS, "rewards")):
            continue
        assert " # " in line, f"{path.name}:{number}: {text!r} has no comment giving its reason"


def test_the_shared_math_block_is_written_once():
    for method in demo.METHODS:
        own = yaml.safe_load((CONFIGS / f"{method}_tiny.yaml").read_text())
        assert own["base"] == "tiny_math_base.yaml"
        assert set(own) <= {"base", "method", "output_dir", "learning_rate", "rewards"}, method
    assert competence.tiny_math_config().data.prompt_template == ANSWER_CONTEXT  # the context tiny-math was pretrained in


def test_demo_recipes_are_the_files_plus_the_visible_overrides(tmp_path):
    for method in demo.METHODS:
        expected = read_recipe(CONFIGS / f"{method}_tiny.yaml")
        expected.update(output_dir=str(tmp_path / method), max_steps=3, save_steps=3)
        assert demo.math_recipe(method, tmp_path / method, 3) == expected, method
        assert demo.method_reward(expected) == expected["rewards"][0]["name"]
    expected = read_recipe(CONFIGS / "azr_tiny.yaml")
    groups = 2 * len(expected["azr"]["task_types"])  # (type, role) groups of 2 rows each
    expected.update(output_dir=str(tmp_path / "azr"), max_steps=3, save_steps=3, per_device_train_batch_size=2 * groups)
    expected["azr"].update(tasks_per_type_role=2, seed_proposals=2)
    assert demo.azr_recipe(tmp_path / "azr", 3, 2) == expected
    with pytest.raises(UserError, match="unknown method 'ppo' for tiny-math"):
        demo.math_recipe("ppo", tmp_path, 3)


def test_competence_measures_with_the_azr_recipes_settings():
    recipe = build_config(load_recipe("azr_tiny.yaml"))
    from selftaught.models import load_model

    sampler = competence.program_sampler(*load_model("tiny-random"))
    assert (sampler.temperature, sampler.max_completion_length, sampler.max_prompt_length) == (
        recipe.temperature, recipe.max_completion_length, recipe.max_prompt_length)
    assert competence.tiny_azr_config() == recipe


def test_task_type_names_are_defined_once():
    assert tuple(TASK_TYPE_SPECS) == TASK_TYPES
    assert all(spec.name == name for name, spec in TASK_TYPE_SPECS.items())
    assert AZRConfig().task_types == list(TASK_TYPES) and not hasattr(demo_report, "AZR_TYPES")
    with pytest.raises(UserError, match="azr.task_types"):
        build_config({"method": "azr", "azr": {"task_types": ["deduction", "translation"]}})


# ---------------------------------------------------------------- base: and dotted keys


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_merges_sections_and_replaces_other_values(tmp_path):
    _write(tmp_path / "shared" / "root.yaml",
           "model: {name_or_path: tiny}\ndata: {num_examples: 64, difficulty: 2}\nlearning_rate: 1.0e-3\n"
           "rewards: [{name: majority_vote}, {name: math_answer, weight: 0.0}]\n")
    _write(tmp_path / "shared" / "middle.yaml", "base: root.yaml\ndata: {difficulty: 3}\nmax_steps: 7\n")
    leaf = _write(tmp_path / "leaf.yaml", "base: shared/middle.yaml\nlearning_rate: 2.0e-3\n"
                                          "rewards: [{name: token_entropy}]\n")
    raw = read_recipe(leaf)  # each base relative to the file naming it
    assert raw == {"model": {"name_or_path": "tiny"}, "data": {"num_examples": 64, "difficulty": 3},
                   "learning_rate": 2e-3, "max_steps": 7, "rewards": [{"name": "token_entropy"}]}
    config = load_config(leaf, ["data.difficulty=4"])  # --set applies after the bases
    assert config.data.difficulty == 4 and config.data.num_examples == 64 and config.max_steps == 7


@pytest.mark.parametrize("files,message", [
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, "a.yaml: its base chain loops: a.yaml -> b.yaml -> a.yaml"),
    ({"a.yaml": "base: a.yaml\n"}, "its base chain loops: a.yaml -> a.yaml"),
    ({"a.yaml": "base: nowhere.yaml\n"}, "base recipe not found"),
    ({"a.yaml": "base: [b.yaml]\n"}, "base must be the path of another recipe"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "- not a mapping\n"}, "expected a mapping"),
])
def test_bad_bases_are_one_line_exit_2(tmp_path, capsys, files, message):
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(UserError, match="loops|not found|base must|mapping") as error:
        load_config(tmp_path / "a.yaml")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert main(["train", "--config", str(tmp_path / "a.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_set_dotted_creates_sections_and_refuses_to_descend_into_values():
    raw = {"max_steps": 3}
    assert set_dotted(raw, "azr.seed_rounds", 2) == {"max_steps": 3, "azr": {"seed_rounds": 2}}
    with pytest.raises(UserError, match="'max_steps' is not a section"):
        set_dotted(raw, "max_steps.value", 1)
    assert apply_overrides({}, ["model.name_or_path=tiny", "beta=0.01"]) == {"model": {"name_or_path": "tiny"},
                                                                           "beta": 0.01}


def test_without_the_repositorys_configs_the_demo_is_one_line_exit_2(tmp_path):
    """A copy of the package that lost its recipes says so in one line, not a traceback."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "selftaught", tmp_path / "selftaught",
                    ignore=shutil.ignore_patterns("assets", "__pycache__", "configs"))
    done = subprocess.run([sys.executable, "-m", "selftaught", "demo", "--quick", "--output-dir", str(tmp_path / "o")],
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "configs" in done.stderr and "is missing" in done.stderr and len(done.stderr.strip().splitlines()) == 1
