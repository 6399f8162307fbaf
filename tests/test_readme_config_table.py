"""The README's config table is the one the docstrings make, so the two cannot disagree; every key
has a meaning; `selftaught train --help-config` prints every key."""

from pathlib import Path

from selftaught.cli import main
from selftaught.config import TrainConfig, config_table, field_reference

ROOT = Path(__file__).resolve().parents[1]


def test_readme_holds_the_generated_config_table():
    text = ROOT.joinpath("README.md").read_text()
    table = text.split("<!-- config table: generated from the docstrings -->\n", 1)[1].split("\n<!--", 1)[0]
    assert table == config_table(), "README's config table is stale: regenerate it (see the README)"


def test_every_key_is_documented_and_every_field_listed():
    rows = field_reference()
    assert all(meaning.strip() for _, _, meaning in rows), [key for key, _, meaning in rows if not meaning.strip()]
    keys = {key for key, _, _ in rows}
    assert set(TrainConfig.model_fields) <= keys
    assert {"azr.tasks_per_type_role", "data.prompt_field", "lora.r", "model.name_or_path"} <= keys
    assert dict((k, d) for k, d, _ in rows)["num_generations"] == str(TrainConfig.model_fields["num_generations"].default)


def test_help_config_prints_every_key(capsys):
    assert main(["train", "--help-config"]) == 0
    out = capsys.readouterr().out
    for key, default, _ in field_reference():
        assert f"{key} = {default}" in out if default else f"\n{key}\n" in f"\n{out}"
