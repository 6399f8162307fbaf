"""Every mistake a user can make ends in one clear line and exit code 2, no traceback."""

import subprocess
import sys

import pytest
import yaml

from conftest import tiny_overrides


def run_train(tmp_path, raw=None, *extra, config_text=None):
    config = tmp_path / "config.yaml"
    config.write_text(config_text if config_text is not None else yaml.safe_dump(raw))
    return subprocess.run([sys.executable, "-m", "selftaught", "train", "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


CASES = {
    "unknown key": (dict(lerning_rate=1e-3), ["'lerning_rate'", "learning_rate"]),
    "unknown nested key": ({"model.nmae": "x"}, ["'model.nmae'", "name_or_path"]),
    "wrong type": (dict(temperature="hot"), ["temperature"]),
    "one generation": (dict(num_generations=1), ["num_generations"]),
    "batch not divisible into groups": (dict(per_device_train_batch_size=3), ["num_generations"]),
    "missing model path": ({"model.name_or_path": "/no/such/model"}, ["/no/such/model"]),
    "missing data file": ({"data.source": "/no/such/data.jsonl"}, ["/no/such/data.jsonl"]),
    "bad loss type": (dict(loss_type="sum"), ["loss_type"]),
}


@pytest.mark.parametrize("case", CASES)
def test_config_mistakes(tmp_path, case):
    overrides, needles = CASES[case]
    assert_one_line_error(run_train(tmp_path, tiny_overrides(tmp_path / "out", **overrides)), *needles)


def test_rows_without_prompt(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ['{"prompt": "1+1?", "answer": "2"}', '{"question": "2+2?"}'])
    result = run_train(tmp_path, tiny_overrides(tmp_path / "out", **{"data.source": data}))
    assert_one_line_error(result, "d.jsonl:2", "'prompt'")


def test_row_that_is_not_json(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ['{"prompt": "1+1?"}', '{"prompt": '])
    assert_one_line_error(run_train(tmp_path, tiny_overrides(tmp_path / "out", **{"data.source": data})),
                          "d.jsonl:2", "JSON")


def test_empty_dataset(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [""])
    assert_one_line_error(run_train(tmp_path, tiny_overrides(tmp_path / "out", **{"data.source": data})), "empty")


def test_gold_reward_without_answers(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ['{"prompt": "say hi"}'])
    raw = tiny_overrides(tmp_path / "out", method="grpo", **{"data.source": data})
    assert_one_line_error(run_train(tmp_path, raw), "math_answer", "answer")


def test_missing_config_file(tmp_path):
    result = subprocess.run([sys.executable, "-m", "selftaught", "train", "--config", str(tmp_path / "nope.yaml")],
                            capture_output=True, text=True)
    assert_one_line_error(result, "nope.yaml")


def test_config_that_is_not_yaml(tmp_path):
    assert_one_line_error(run_train(tmp_path, config_text="max_steps: [1,\n"), "YAML")


def test_bad_set_override(tmp_path):
    assert_one_line_error(run_train(tmp_path, tiny_overrides(tmp_path / "out"), "--set", "max_steps"), "key=value")
    assert_one_line_error(run_train(tmp_path, tiny_overrides(tmp_path / "out"), "--set", "max_steps=0"),
                          "max_steps")


def test_set_overrides_nested_and_top_level_keys(tmp_path):
    from selftaught.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_overrides(tmp_path / "out")))
    config = load_config(path, ["max_steps=7", "output_dir=/tmp/x", "model.dtype=bfloat16", "beta=1e-3"])
    assert (config.max_steps, config.output_dir, config.model.dtype, config.beta) == (7, "/tmp/x", "bfloat16", 1e-3)
