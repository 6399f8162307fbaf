"""`selftaught eval`'s settings are validated in one place (EvalConfig), for the CLI's flags
and for `evaluate()`'s keyword arguments alike: one line naming the flag, exit 2."""

import pytest

from selftaught.cli import main
from selftaught.errors import UserError
from selftaught.evaluate.config import DEFAULT_SAMPLING_TEMPERATURE, EvalConfig, eval_config
from selftaught.evaluate.runner import evaluate


def test_defaults_and_the_temperature_rule():
    config = eval_config(model="tiny", benchmarks="arith, gsm-symbolic,")
    assert config.benchmarks == ["arith", "gsm-symbolic"]  # comma-separated, blanks dropped
    assert config.samples == 1 and config.temperature == 0.0 and config.greedy
    sampled = eval_config(model="tiny", benchmarks=["arith", "mine.jsonl"], samples=4)
    assert sampled.temperature == DEFAULT_SAMPLING_TEMPERATURE and not sampled.greedy
    assert eval_config(model="tiny", benchmarks=["arith"], samples=4, temperature=0.5).temperature == 0.5
    assert isinstance(sampled, EvalConfig) and sampled.output_dir == "runs/eval" and sampled.log_every == 1


@pytest.mark.parametrize("settings,message", [
    ({"limit": 0}, "eval: --limit must be at least 1, got 0"),
    ({"samples": 0}, "eval: --samples must be at least 1, got 0"),
    ({"batch_size": -2}, "eval: --batch-size must be at least 1, got -2"),
    ({"max_new_tokens": 0}, "eval: --max-new-tokens must be at least 1, got 0"),
    ({"temperature": -0.1}, "eval: --temperature must be at least 0"),
    ({"top_p": 0.0}, "eval: --top-p must be more than 0"),
    ({"top_p": 1.5}, "eval: --top-p must be at most 1"),
    ({"log_every": -1}, "eval: --log-every must be at least 0, got -1"),
    ({"samples": 2, "temperature": 0}, "--samples > 1 needs --temperature > 0"),
    ({"benchmarks": ["mmlu"]}, "unknown benchmark 'mmlu'"),
    ({"benchmarks": " , "}, "name at least one benchmark"),
    ({"use_chat_template": "sometimes"}, "eval: --chat-template:"),
    ({"dtype": "int4"}, "eval: --dtype:"),
    ({"limit": "many"}, "eval: --limit:"),
    ({"sample": 3}, "eval: unknown setting 'sample'"),
])
def test_bad_settings_are_one_line(settings, message):
    with pytest.raises(UserError) as error:
        eval_config(**{"model": "tiny", "benchmarks": ["arith"], **settings})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_evaluate_keyword_arguments_go_through_the_same_validation(tmp_path):
    with pytest.raises(UserError, match="unknown setting 'sample'"):
        evaluate("tiny", ["arith"], sample=3, output_dir=str(tmp_path))
    with pytest.raises(UserError, match="--top-p must be at most 1"):
        evaluate("tiny", ["arith"], top_p=2.0, output_dir=str(tmp_path))
    assert not any(tmp_path.iterdir())  # rejected before anything loads or is written


@pytest.mark.parametrize("flags,message", [
    (["--top-p", "0"], "--top-p must be more than 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--max-new-tokens", "-1"], "--max-new-tokens must be at least 1"),
])
def test_cli_flags_are_validated_by_the_config(flags, message, tmp_path, capsys):
    assert main(["eval", "--model", "tiny", "--benchmark", "arith", *flags, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_the_eval_command_restates_no_default_evalconfig_owns_them():
    from selftaught.cli import build_parser
    from selftaught.evaluate.config import EvalConfig

    args = build_parser().parse_args(["eval", "--model", "tiny", "--benchmark", "arith"])
    unset = [key for key in EvalConfig.model_fields if hasattr(args, key) and key not in ("model", "log_every")]
    assert unset == []  # unset flags are absent, not defaulted (log_every: the shared log flags)
    given = build_parser().parse_args(["eval", "--model", "tiny", "--benchmark", "arith", "--chat-template", "never",
                                       "--top-p", "0.5"])
    assert (given.use_chat_template, given.top_p) == ("never", 0.5)
