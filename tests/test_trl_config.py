"""`selftaught train --trl-config`: a TRL GRPOConfig read as selftaught settings.

The mapping, the refusals and the warnings run everywhere; the tests marked `needs_trl` run where
TRL is installed (`make test-trl`, .venv-trl, SELFTAUGHT_REQUIRE_TRL=1: missing TRL fails there):
the defaults table is the installed TRL's, and a GRPOConfig written by TRL's own `to_dict()`
trains 3 steps on tiny-math through `--trl-config`.
"""

import importlib.util
import json
import math
import os

import pytest
import torch
import yaml

from conftest import ROOT, tiny_overrides
from selftaught.cli import main
from selftaught.config import TrainConfig, build_config
from selftaught.errors import UserError
from selftaught.trl_config import (DECIDED_BY_SELFTAUGHT, SAME_NAME, TRANSLATIONS, Deferred,
                                   from_trl_config, translate, trl_defaults)

REQUIRE_TRL = os.environ.get("SELFTAUGHT_REQUIRE_TRL") == "1"
needs_trl = pytest.mark.skipif(importlib.util.find_spec("trl") is None and not REQUIRE_TRL,
                               reason="TRL is not installed here (`make test-trl` runs this test in .venv-trl)")


def test_every_field_at_trl_default_passes_silently():
    settings, unsupported = translate(trl_defaults())
    assert unsupported == []
    config = from_trl_config(trl_defaults(), tiny_overrides("runs/unused"))
    # TRL's defaults, where they are not selftaught's, reach the run
    assert (config.loss_type, config.seed, config.learning_rate, config.num_generations) == ("dapo", 42, 1e-6, 8)
    assert (config.lr_scheduler_type, config.warmup_ratio, config.bf16, config.gradient_checkpointing) == \
        ("linear", 0.0, True, True)
    assert (config.temperature, config.max_completion_length, config.use_bias_correction_kl) == (1.0, 512, True)
    assert config.multi_objective_aggregation == "sum_then_normalize" and config.report_to == []
    correction = config.importance_correction()
    assert (correction.mode, correction.clip_min, correction.clip_max) == ("sequence_mask", None, 3.0)
    assert config.max_steps == 2  # TRL's max_steps = -1 (epochs): the recipe's stays


def test_every_mapped_field_names_a_selftaught_key():
    valid = TrainConfig.model_fields
    for name in SAME_NAME:
        assert name in valid and name in trl_defaults(), name
    for name, translate_field in TRANSLATIONS.items():
        try:
            produced = translate_field(trl_defaults().get(name), trl_defaults())
        except Exception:  # some refuse TRL's declared default (e.g. a value only meaningful at run time)
            continue
        for key in produced:
            section, _, leaf = key.rpartition(".")
            assert (valid[section].annotation.model_fields if section else valid).get(leaf), (name, key)
    assert not set(DECIDED_BY_SELFTAUGHT) & set(TRANSLATIONS)


@pytest.mark.parametrize("fields,expected", [
    ({"lr_scheduler_type": "constant", "warmup_steps": 5}, {"lr_scheduler_type": "constant", "warmup_ratio": 0.0}),
    ({"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 5}, {"lr_scheduler_type": "constant",
                                                                         "warmup_ratio": 0.25}),
    ({"lr_scheduler_type": "cosine", "warmup_steps": 0.1}, {"lr_scheduler_type": "cosine", "warmup_ratio": 0.1}),
    ({"warmup_steps": 0.12}, {"warmup_ratio": 0.15}),  # transformers rounds the warm-up steps up: ceil(2.4) = 3
    ({"warmup_ratio": 0.05}, {"warmup_ratio": 0.05}),  # transformers 4's name
    ({"save_strategy": "no", "save_steps": 3}, {"save_steps": 20}),
    ({"save_steps": 0.25}, {"save_steps": 5}),
    ({"logging_strategy": "no"}, {"log_every": 0}), ({"logging_steps": 2}, {"log_every": 2}),
    ({"report_to": "all"}, {}), ({"report_to": "none"}, {"report_to": []}), ({"report_to": ["wandb"]},
                                                                             {"report_to": ["wandb"]}),
    ({"bf16": None, "fp16": False}, {"bf16": True}), ({"bf16": False}, {"bf16": False}),
    ({"gradient_checkpointing": True, "activation_checkpointing": False}, {"gradient_checkpointing": False}),
    ({"disable_tqdm": True}, {"progress_bar": False}),
    ({"scale_rewards": True}, {"scale_rewards": "group"}), ({"scale_rewards": False}, {"scale_rewards": "none"}),
    ({"model_init_kwargs": {"dtype": "torch.bfloat16"}}, {"model": {"dtype": "bfloat16"}}),
    ({"model_init_kwargs": '{"torch_dtype": "float32"}'}, {"model": {"dtype": "float32"}}),
    ({"trust_remote_code": True, "shuffle_dataset": False}, {"model": {"trust_remote_code": True},
                                                             "data": {"shuffle": False}}),
    ({"use_vllm": True, "vllm_mode": "colocate"}, {"rollout_backend": "vllm"}),
    ({"loss_type": "cispo", "epsilon": 0.3}, {"loss_type": "cispo", "epsilon_high": 0.3}),  # TRL's effective cap
    ({"vllm_importance_sampling_correction": True, "vllm_importance_sampling_mode": "token_mask",
      "vllm_importance_sampling_clip_max": None, "vllm_importance_sampling_clip_min": 0.5},
     {"vllm_importance_sampling_correction": True, "vllm_importance_sampling_mode": "token_mask",
      "vllm_importance_sampling_clip_max": math.inf, "vllm_importance_sampling_clip_min": 0.5}),
    ({"vllm_importance_sampling_cap": 4.0, "vllm_importance_sampling_clip_max": 3.0},
     {"vllm_importance_sampling_clip_max": 4.0}),  # TRL: the deprecated cap overrides clip_max
    ({"vllm_importance_sampling_correction": False, "vllm_importance_sampling_mode": "sequence_mask"},
     {"vllm_importance_sampling_correction": False}),
    ({"steps_per_generation": 2, "gradient_accumulation_steps": 2, "generation_batch_size": 32},
     {"gradient_accumulation_steps": 2}),
    ({"max_steps": 20, "num_train_epochs": 7}, {"max_steps": 20}),
    ({"local_rank": 3, "dataloader_num_workers": 8, "log_level": "debug", "hub_token": "<HUB_TOKEN>"}, {}),
])
def test_fields_map_to_selftaught_settings(fields, expected):
    recipe = tiny_overrides("runs/unused", max_steps=20)
    config = from_trl_config(fields, recipe)
    dumped = config.model_dump()
    for key, value in expected.items():
        if isinstance(value, dict):
            for leaf, inner in value.items():
                assert dumped[key][leaf] == inner, (key, leaf)
        else:
            assert dumped[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert translate(fields)[1] == []


def test_recipe_then_trl_config_then_set_and_the_run_length_follows_set(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_overrides(tmp_path / "run", max_steps=10, learning_rate=5e-3,
                                                    temperature=0.5)))
    config = from_trl_config({"learning_rate": 1e-3, "warmup_steps": 2, "save_steps": 0.5}, recipe,
                             ["learning_rate=2e-3", "max_steps=40"])
    assert config.learning_rate == 2e-3  # --set wins
    assert config.temperature == 0.5  # a field the TRL config left out keeps the recipe's value
    assert config.warmup_ratio == pytest.approx(2 / 40) and config.save_steps == 20  # computed at the final length
    explicit = from_trl_config({"warmup_steps": 2}, recipe, ["warmup_ratio=0.5"])
    assert explicit.warmup_ratio == 0.5


def test_unsupported_fields_are_one_line_exit_2_naming_each(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_overrides(tmp_path / "run")))
    trl = tmp_path / "grpo.json"
    trl.write_text(json.dumps({**trl_defaults(), "fp16": True, "vllm_mode": "server", "push_to_hub": True,
                               "lr_scheduler_type": "polynomial", "model_name_or_path": "Qwen/Qwen2.5-1.5B",
                               "steps_per_generation": 4, "sync_ref_model": True,
                               # at TRL's default, unsupported fields pass silently
                               "ref_model_mixup_alpha": 0.6, "torch_compile": False}))
    assert main(["train", "--config", str(recipe), "--trl-config", str(trl)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    for field in ("fp16=True", "vllm_mode='server'", "push_to_hub=True", "lr_scheduler_type='polynomial'",
                  "model_name_or_path=", "steps_per_generation=4", "sync_ref_model=True", "--ignore-unsupported"):
        assert field in error, field
    assert "ref_model_mixup_alpha" not in error and "torch_compile" not in error
    assert not (tmp_path / "run").exists()  # nothing was loaded or written


def test_ignore_unsupported_warns_once_per_field_and_trains(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_overrides(tmp_path / "run", max_steps=1)))
    trl = tmp_path / "grpo.yaml"
    trl.write_text(yaml.safe_dump({"fp16": True, "torch_compile": True, "num_generations": 2, "loss_type": "bnpo",
                                   "per_device_train_batch_size": 4, "report_to": "none"}))
    assert main(["train", "--config", str(recipe), "--trl-config", str(trl), "--ignore-unsupported", "--quiet"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "--trl-config" in line]
    assert warnings == ["selftaught: warning: --trl-config: ignoring fp16=True (selftaught has bf16 autocast (bf16) "
                        "or fp32, not fp16 mixed precision)",
                        "selftaught: warning: --trl-config: ignoring torch_compile=True (not supported by selftaught)"]
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-1" / "trainer_state.pt", weights_only=False)
    assert state["config"]["loss_type"] == "bnpo"


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"), ("[1, 2]", "expected a mapping"),
])
def test_a_bad_trl_config_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "grpo.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        from_trl_config(path)
    with pytest.raises(UserError, match="not found"):
        from_trl_config(tmp_path / "missing.yaml")


def test_a_translated_value_selftaught_refuses_names_its_key():
    with pytest.raises(UserError, match="luspo.*importance_sampling_level"):
        from_trl_config({"loss_type": "luspo"})  # TRL only warns; the combination makes no sense


def test_deferred_values_wait_for_the_run_length():
    settings, _ = translate({"warmup_steps": 4, "save_steps": 0.1})
    assert isinstance(settings["warmup_ratio"], Deferred) and settings["warmup_ratio"].of({"max_steps": 8}) == 0.5
    assert settings["save_steps"].of({"max_steps": 30}) == 3


# ------------------------------------------------------------------ with TRL itself


@needs_trl
def test_the_defaults_table_is_the_installed_trls():
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from write_trl_defaults import table

    assert json.loads((ROOT / "selftaught" / "trl_grpo_defaults.json").read_text()) == table()


@needs_trl
def test_a_default_grpo_config_written_by_trl_passes_silently():
    from trl import GRPOConfig

    assert translate(GRPOConfig(output_dir="unused", use_cpu=True).to_dict())[1] == []


@needs_trl
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_trl_round_trip_trains_three_steps_on_tiny_math(tmp_path, suffix):
    """A GRPOConfig written by TRL's own to_dict(), read by --trl-config, trains 3 steps on tiny-math."""
    from trl import GRPOConfig

    args = GRPOConfig(output_dir=str(tmp_path / "run"), use_cpu=True, max_steps=3, learning_rate=1e-4,
                      per_device_train_batch_size=16, num_generations=8, max_completion_length=32, temperature=0.9,
                      loss_type="grpo", importance_sampling_level="sequence", epsilon=0.1, epsilon_high=0.15,
                      num_iterations=1, mask_truncated_completions=True, top_entropy_quantile=0.5,
                      entropy_coef=0.01, lr_scheduler_type="cosine", warmup_steps=1, save_steps=2, logging_steps=1,
                      report_to="none", seed=3)
    fields = args.to_dict()
    path = tmp_path / f"grpo{suffix}"
    path.write_text(json.dumps(fields) if suffix == ".json" else yaml.safe_dump(fields))
    assert main(["train", "--config", str(ROOT / "configs" / "grpo_tiny.yaml"), "--trl-config", str(path),
                 "--quiet"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(math.isfinite(r["loss"]) for r in rows)
    assert all(0 < r["top_entropy/kept_frac"] < 1 for r in rows)
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-3" / "trainer_state.pt", weights_only=False)
    config = build_config(state["config"])
    assert config.model.name_or_path == "tiny-math" and config.method == "grpo"  # from the recipe
    assert (config.loss_type, config.importance_sampling_level, config.epsilon_high, config.seed) == \
        ("grpo", "sequence", 0.15, 3)  # from TRL's file
    assert (config.bf16, config.gradient_checkpointing, config.use_cpu, config.lr_scheduler_type) == \
        (True, True, True, "cosine")  # TRL's resolved defaults and TrainingArguments
    assert config.warmup_ratio == pytest.approx(1 / 3) and config.save_steps == 2
    assert config.save_total_limit is None and (tmp_path / "run" / "checkpoints" / "step-2").is_dir()  # TRL's: keep all


def test_train_without_a_recipe_or_a_trl_config_is_one_line(capsys):
    assert main(["train"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--config" in error and "--trl-config" in error
