"""`selftaught` command line: train | eval | diagnose | demo | export | report.

Errors a user can cause end in one line on stderr and exit code 2; a diverging
run (too many non-finite steps) exits 1; a run stopped by SIGTERM / SIGINT writes a
checkpoint first and exits 143 / 130 (`selftaught.preemption`); bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys


def _train(args) -> int:
    from .config import load_config
    from .errors import UserError
    from .trainer import Trainer

    if args.help_config:
        from .config import field_reference

        for key, default, meaning in field_reference():
            print(f"{key}" + (f" = {default}" if default else "") + f"\n    {' '.join(meaning.split())}")
        return 0
    overrides = args.set + _log_overrides(args)
    if args.trl_config:
        from .trl_config import from_trl_config

        config = from_trl_config(args.trl_config, args.config, overrides, args.ignore_unsupported)
    elif args.config:
        config = load_config(args.config, overrides)
    else:
        raise UserError("train needs --config (a recipe) and/or --trl-config (a TRL GRPOConfig)")
    trainer = Trainer(config, resume=args.resume)
    history = trainer.train()
    if history and trainer.accelerator.is_main_process:
        last = history[-1]
        print(f"done: {trainer.step} steps in {config.output_dir}; last reward/mean={last['reward/mean']:.4f} "
              f"self_certainty/mean={last['self_certainty/mean']:.4f}")
    return 0


def _eval(args) -> int:
    from .errors import UserError
    from .evaluate.config import EvalConfig, eval_config
    from .evaluate.runner import format_table, run_eval

    # The settings flags the user set (unset ones are absent: EvalConfig's defaults apply).
    given = {key: value for key, value in vars(args).items()
             if key in EvalConfig.model_fields and key not in ("model", "log_every")}
    if args.quiet or args.log_every is not None:
        given["log_every"] = 0 if args.quiet else args.log_every
    model = args.model
    if args.config or args.set:  # the recipe's data-set description, and its model unless --model names one
        recipe = _recipe(args)
        given["data"] = recipe.data
        model = model or recipe.model.name_or_path
    if model is None:
        raise UserError("eval needs --model (or --config with a training recipe)")
    config = eval_config(model=model, benchmarks=args.benchmark, **given)
    results = run_eval(config)
    print(format_table(results))
    print(f"results: {config.output_dir}/results.json")
    return 0


def _export(args) -> int:
    from .export import export_checkpoint

    kind = export_checkpoint(args.checkpoint, args.output, merge=args.merge)
    what = {"merged": "a plain Hugging Face model (LoRA adapter merged into its base)",
            "adapter": "the LoRA adapter (PEFT format; add --merge for a plain model)",
            "model": "a Hugging Face model"}[kind]
    print(f"exported {what} to {args.output}")
    return 0


def _demo(args) -> int:
    from .console import silence_library_bars_in_logs
    from .demo import run_demo

    silence_library_bars_in_logs()  # the base model's diagnose loads weights before any trainer does
    run_demo(args.output_dir, quick=args.quick, logging=_log_settings(args))
    return 0


def _report(args) -> int:
    from .run_report import report_runs

    output = report_runs(args.run_dirs, args.output)
    print(f"report: {output / 'report.md'} and {output / 'report.png'}")
    return 0


def _log_settings(args) -> dict:
    """`--quiet` / `--log-every N` as config keys (progress_bar, log_every)."""
    settings = {}
    if args.quiet:
        settings.update(progress_bar=False, log_every=0)
    elif args.log_every is not None:
        settings["log_every"] = args.log_every
    return settings


def _log_overrides(args) -> list[str]:
    return [f"{key}={str(value).lower()}" for key, value in _log_settings(args).items()]


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, got {text!r}")
    return int(text)


def _add_log_flags(command, every: str = "when stdout is not a terminal, one plain progress line every N steps "
                                          "(default 10; a terminal gets the progress bar)") -> None:
    command.add_argument("--quiet", action="store_true", help="no progress bar and no progress lines")
    command.add_argument("--log-every", type=_count, default=None, metavar="N", help=every)


DIAGNOSE_FLAG_KEYS = {"model": "model.name_or_path", "data": "data.source", "split": "data.split",
                      "prompt_template": "data.prompt_template", "chat_template": "data.use_chat_template",
                      "temperature": "temperature", "max_new_tokens": "max_completion_length",
                      "difficulty": "data.difficulty", "seed": "seed"}
"""`selftaught diagnose`'s flags that name a recipe key: a flag given sets that key, over the recipe's value."""


def _recipe(args, flag_keys: dict[str, str] | None = None):
    """The TrainConfig of `--config` (none: every key's default) with `--set` overrides, then the
    values of the flags in `flag_keys` that were given (flag attribute -> dotted config key)."""
    from .config import apply_overrides, build_config, read_recipe, set_dotted
    from .errors import UserError

    if args.set and not args.config:
        raise UserError("--set KEY=VALUE overrides a key of the --config recipe; give --config")
    raw = apply_overrides(read_recipe(args.config) if args.config else {}, args.set)
    for flag, key in (flag_keys or {}).items():
        if getattr(args, flag) is not None:
            set_dotted(raw, key, getattr(args, flag))
    return build_config(raw)


def _diagnose(args) -> int:
    from .console import silence_library_bars_in_logs
    from .diagnose import format_report, run_diagnose
    from .errors import UserError

    silence_library_bars_in_logs()
    if not args.config and (args.model is None or args.data is None):
        raise UserError("diagnose needs --model and --data (or --config with a training recipe)")
    # A recipe says how its model is prompted; a bare --model/--data gets diagnose's default format.
    default_template = not args.config and args.prompt_template is None
    record = run_diagnose(_recipe(args, DIAGNOSE_FLAG_KEYS), n=args.n, samples=args.samples, rewards=args.reward,
                          batch_size=args.batch_size, output_dir=args.output_dir, default_template=default_template)
    print(format_report(record))
    print(f"results: {args.output_dir}/diagnose.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selftaught", description="Language models that teach themselves to reason.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train with a YAML recipe (Intuitor, GRPO, ...)")
    train.add_argument("--config", help="YAML recipe, e.g. configs/intuitor_tiny.yaml")
    train.add_argument("--trl-config", metavar="FILE",
                       help="a TRL GRPOConfig as JSON or YAML (its to_dict()): its training settings over the "
                            "--config recipe's, which brings the model, data and rewards")
    train.add_argument("--ignore-unsupported", action="store_true",
                       help="with --trl-config: train without the fields selftaught does not support (one "
                            "warning each) instead of refusing them")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (dotted for nested keys), repeatable")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    train.add_argument("--help-config", action="store_true",
                       help="print every config key with its default and meaning, then exit")
    _add_log_flags(train)
    train.set_defaults(run=_train)

    ev = commands.add_parser("eval", help="score a model on benchmarks (math, HumanEval, CodeI/O, your JSONL)")
    ev.add_argument("--model",
                    help="tiny, tiny-random, smollm2, a hub id, a model directory, a .gguf file or a training "
                         "checkpoint (a run's output directory means its newest checkpoint); default with "
                         "--config: the recipe's model.name_or_path")
    ev.add_argument("--benchmark", action="append", required=True, metavar="NAME",
                    help="gsm-symbolic, arith, humaneval, codeio, codeio-o, codeio-i or a .jsonl file; "
                         "repeatable or comma-separated")
    ev.add_argument("--config", metavar="RECIPE",
                    help="a training recipe: a .jsonl math benchmark is read with its data.prompt_field / "
                         "answer_field and asked in its data.prompt_template, system_prompt and chat-template "
                         "choice, as the model was trained; built-in benchmarks keep their own prompts and "
                         "take only the chat-template choice (--chat-template overrides it)")
    ev.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a --config key")
    # Settings default to EvalConfig's (unset flags are left out, so the defaults live in one place).
    unset = argparse.SUPPRESS
    ev.add_argument("--limit", type=int, default=unset, help="evaluate only the first N items of each benchmark")
    ev.add_argument("--samples", type=int, default=unset, help="completions per item K (pass@1..K; default 1)")
    ev.add_argument("--temperature", type=float, default=unset,
                    help="0 = greedy (default with --samples 1; 0.8 with more samples)")
    ev.add_argument("--top-p", type=float, default=unset, help="nucleus sampling (default 1.0: off)")
    ev.add_argument("--max-new-tokens", type=int, default=unset, help="default: per benchmark (128 to 512)")
    ev.add_argument("--batch-size", type=int, default=unset, help="completions per generate call (default 16)")
    ev.add_argument("--seed", type=int, default=unset, help="default 0")
    ev.add_argument("--dtype", default=unset, help="auto (default), float32, bfloat16 or float16")
    ev.add_argument("--chat-template", dest="use_chat_template", default=unset,
                    help="auto (default: when the tokenizer has one), always or never: wrap prompts in the "
                         "tokenizer's chat template")
    ev.add_argument("--output-dir", default=unset, help="results.json goes here (default runs/eval)")
    _add_log_flags(ev, every="one progress line on stderr every N generate batches (default 1)")
    ev.set_defaults(run=_eval)

    diag = commands.add_parser("diagnose", help="before training: do label-free rewards rank this model's right "
                                                 "answers above its wrong ones?")
    diag.add_argument("--model", help="any model `train` accepts: tiny, smollm2, a directory, a .gguf, a hub id")
    diag.add_argument("--data", help="arithmetic or a .jsonl with prompt/answer (as train's data.source)")
    diag.add_argument("--n", type=int, default=40, help="prompts (the first N with a gold answer)")
    diag.add_argument("--samples", type=int, default=8, help="completions per prompt K (pass@K, majority@K)")
    diag.add_argument("--config", help="a training recipe: model, data, prompt template, τ, lengths and user "
                                       "rewards come from it (flags override)")
    diag.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a --config key")
    diag.add_argument("--split", default=None, help="data split (default: train — the data you would train on)")
    diag.add_argument("--prompt-template", default=None,
                      help="{prompt} is replaced; default: 'Question: {prompt}\nAnswer:' without a chat "
                           "template (the built-in tiny model's format), the eval's \boxed{} instruction inside one")
    diag.add_argument("--chat-template", default=None, choices=["auto", "always", "never"])
    diag.add_argument("--temperature", type=float, default=None, help="τ for sampling and scoring (default 0.9)")
    diag.add_argument("--max-new-tokens", type=int, default=None, help="default 64")
    diag.add_argument("--difficulty", type=int, default=None, help="built-in arithmetic only (default 1)")
    diag.add_argument("--reward", action="append", default=[], metavar="MODULE:FUNCTION",
                      help="also rank a user reward function (package.module:function or file.py:function)")
    diag.add_argument("--batch-size", type=int, default=32, help="completions per generate / scoring call")
    diag.add_argument("--seed", type=int, default=None)
    diag.add_argument("--output-dir", default="runs/diagnose", help="diagnose.json goes here")
    diag.set_defaults(run=_diagnose)

    export = commands.add_parser("export", help="write a training checkpoint as a plain model directory")
    export.add_argument("--checkpoint", required=True,
                        help="a checkpoint directory (runs/X/checkpoints/step-N) or a run directory (its newest)")
    export.add_argument("--output", required=True, help="new directory for the model")
    export.add_argument("--merge", action="store_true",
                        help="LoRA checkpoints: merge the adapter into the base weights (AutoModelForCausalLM loads "
                             "the result); without it the adapter alone is written")
    export.set_defaults(run=_export)

    demo = commands.add_parser("demo", help="train the built-in model with Intuitor and GRPO and compare")
    demo.add_argument("--output-dir", default="runs/demo")
    demo.add_argument("--quick", action="store_true", help="a shortened demo (for tests)")
    _add_log_flags(demo)
    demo.set_defaults(run=_demo)

    report = commands.add_parser("report", help="draw the curves of one or more runs' metrics.jsonl, overlaid")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="training output directories")
    report.add_argument("--output", default=None, metavar="DIR",
                        help="where report.png and report.md go (default: the first RUN_DIR)")
    report.set_defaults(run=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import Preempted, TrainingStopped, UserError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as error:
        print(f"selftaught: error: {error}", file=sys.stderr)
        return 2
    except Preempted as stop:
        if stop.main_process:
            print(f"selftaught: stopped by {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("selftaught: interrupted; `--resume` continues from the last checkpoint", file=sys.stderr)
        return 130
    except TrainingStopped as error:
        print(f"selftaught: stopped: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
