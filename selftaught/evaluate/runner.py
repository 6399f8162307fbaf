"""`selftaught eval`: sample K completions per item, check them, report pass@k.

One model load, one sandbox for every benchmark of the run. Prompts go through
the model's chat template when it has one (the user message is the item's
`chat_prompt`) and are used as they are otherwise (`plain_prompt`). Items are
generated in batches sorted by prompt length (less padding), K completions per
prompt in one `generate` call; greedy when the temperature is 0.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from ..console import silence_library_bars_in_logs
from ..prompting import format_prompt, uses_chat_template
from . import Accuracy
from .benchmarks import Benchmark, Item, load_benchmark, needs_executor
from .config import EvalConfig, eval_config
from .passk import mean_pass_at_k, report_ks

CHAT_TEMPLATE_FLAG = "--chat-template"


def _prompt(tokenizer, item: Item, use_chat_template: str) -> str:
    if uses_chat_template(tokenizer, use_chat_template, CHAT_TEMPLATE_FLAG):
        return format_prompt(tokenizer, item.chat_prompt, system_prompt=item.system_prompt,
                             use_chat_template=use_chat_template)
    return item.plain_prompt


def check_responses(bench: Benchmark, responses: list[list[str]], executor) -> tuple[list[list[bool]], list[list]]:
    """Per item, per sample: correct or not, and what was extracted from the response."""
    from ..rewards.math_answer import answers_match, extract_answer

    flat = [(item, text) for item, texts in zip(bench.items, responses) for text in texts]
    extracted: list = []
    correct: list[bool] = []
    kind = bench.items[0].kind if bench.items else "math"
    if kind == "math":
        extracted = [extract_answer(text) for _, text in flat]
        correct = [answers_match(answer, item.gold) for (item, _), answer in zip(flat, extracted)]
    elif kind == "humaneval":
        from .humaneval import check_many, extract_completion

        extracted = [extract_completion(item.data["problem"], text) for item, text in flat]
        correct = check_many([(item.data["problem"], c) for (item, _), c in zip(flat, extracted)], executor)
    else:
        from .code_reasoning import extract_code_answer, score_predictions

        extracted = [extract_code_answer(text, item.kind) for item, text in flat]
        correct = score_predictions([(item.kind, item.data["triplet"], answer)
                                     for (item, _), answer in zip(flat, extracted)], executor)
    per_item = [len(texts) for texts in responses]
    out_correct, out_extracted, start = [], [], 0
    for n in per_item:
        out_correct.append(correct[start:start + n])
        out_extracted.append(extracted[start:start + n])
        start += n
    return out_correct, out_extracted


def _generate(sampler, prompts: list[str], samples: int, greedy: bool, batch_size: int, label: str,
              log_every: int = 1) -> list[list[str]]:
    """K completions per prompt, batched by prompt length; results in the original order.
    A progress line on stderr every `log_every` batches and after the last (0 = none)."""
    lengths = [len(sampler.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    per_call = max(1, batch_size // samples)
    responses: list[list[str] | None] = [None] * len(prompts)
    started = time.perf_counter()
    for batch, start in enumerate(range(0, len(order), per_call), 1):
        chunk = order[start:start + per_call]
        rollout = sampler.sample([prompts[i] for i in chunk], num_generations=samples, greedy=greedy)
        for j, i in enumerate(chunk):
            responses[i] = rollout.completions[j * samples:(j + 1) * samples]
        done = min(start + per_call, len(order))
        if log_every and (batch % log_every == 0 or done == len(order)):
            print(f"  {label}: {done}/{len(order)} prompts, {time.perf_counter() - started:.0f}s", file=sys.stderr,
                  flush=True)
    return responses


def _summary(bench: Benchmark, correct: list[list[bool]], samples: int) -> dict:
    counts = [(len(c), sum(c)) for c in correct]
    ks = report_ks(samples)
    pass_at = {str(k): mean_pass_at_k(counts, k) for k in ks}
    summary = {
        "metric": "accuracy" if samples == 1 else "pass@k",
        "n": len(bench.items), "samples_per_item": samples,
        "correct_samples": sum(c for _, c in counts), "total_samples": sum(n for n, _ in counts),
        "pass@1": pass_at["1"], "pass@k": pass_at,
    }
    if samples == 1:
        summary.update(Accuracy(sum(c for _, c in counts), len(counts)).as_dict())
    kinds = sorted({item.kind for item in bench.items})
    if len(kinds) > 1:  # e.g. codeio: output and input prediction reported apart
        summary["by_kind"] = {}
        for kind in kinds:
            sub = [cnt for cnt, item in zip(counts, bench.items) if item.kind == kind]
            summary["by_kind"][kind] = {"n": len(sub), "pass@1": mean_pass_at_k(sub, 1)}
    return summary


def evaluate(model: str, benchmarks: list[str] | str, **settings) -> dict:
    """Evaluate `model` on `benchmarks`; write `output_dir/results.json` and return the same dict.
    `settings` are `EvalConfig`'s (limit, samples, temperature, top_p, max_new_tokens, batch_size,
    seed, output_dir, dtype, use_chat_template, data, max_prompt_length, executor_workers, log_every),
    validated there; `data=config.data` asks a .jsonl benchmark in a training recipe's format."""
    return run_eval(eval_config(model=model, benchmarks=benchmarks, **settings))


def run_eval(config: EvalConfig) -> dict:
    """`evaluate` with validated settings (what `selftaught eval` builds from its flags)."""
    from ..models import load_model, resolve_model_name
    from ..rollout import SelftaughtSampler

    started = time.perf_counter()
    preloaded = {}  # user files, read once: fail on a bad file before the model loads
    for name in config.benchmarks:
        if name.endswith(".jsonl"):
            preloaded[name] = load_benchmark(name, config.limit, data=config.data)

    silence_library_bars_in_logs()
    resolved = resolve_model_name(config.model)
    policy, tokenizer = load_model(config.model, config.dtype)
    policy.eval()
    settings = {"samples": config.samples, "temperature": config.temperature, "greedy": config.greedy,
                "top_p": config.top_p, "seed": config.seed, "limit": config.limit, "batch_size": config.batch_size,
                "max_new_tokens": config.max_new_tokens,
                "chat_template": uses_chat_template(tokenizer, config.use_chat_template, CHAT_TEMPLATE_FLAG),
                "data": None if config.data is None else config.data.model_dump()}
    results = {"model": config.model, "resolved_model": resolved, "settings": settings, "benchmarks": {}}
    executor = None
    try:
        if any(needs_executor(name) for name in config.benchmarks):
            from ..executor import PythonExecutor

            executor = PythonExecutor(workers=config.executor_workers, timeout_s=10.0, memory_mb=512)
        for name in config.benchmarks:
            t0 = time.perf_counter()
            bench = preloaded.get(name) or load_benchmark(name, config.limit, executor, config.data)
            new_tokens = config.max_new_tokens or bench.max_new_tokens
            sampler = SelftaughtSampler(policy, tokenizer, max_prompt_length=config.max_prompt_length,
                                        max_completion_length=new_tokens, temperature=config.temperature or 1.0,
                                        top_p=config.top_p, generation_batch_size=config.batch_size)
            prompts = [_prompt(tokenizer, item, config.use_chat_template) for item in bench.items]
            torch.manual_seed(config.seed)
            responses = _generate(sampler, prompts, config.samples, config.greedy, config.batch_size, bench.name,
                                  config.log_every)
            correct, extracted = check_responses(bench, responses, executor)
            summary = _summary(bench, correct, config.samples)
            summary.update(seconds=time.perf_counter() - t0, max_new_tokens=new_tokens, **bench.notes)
            summary["items"] = [
                {"id": item.id, "kind": item.kind, "gold": item.gold, "prompt": prompt,
                 "responses": texts, "extracted": [None if e is None else str(e) for e in ex], "correct": c}
                for item, prompt, texts, ex, c in zip(bench.items, prompts, responses, extracted, correct)]
            results["benchmarks"][bench.name] = summary
            if config.output_dir:
                _write(results, config.output_dir)
    finally:
        if executor is not None:
            executor.close()
    results["seconds"] = time.perf_counter() - started
    if config.output_dir:
        _write(results, config.output_dir)
    return results


def _write(results: dict, output_dir: str) -> Path:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    tmp.replace(path)
    return path


def format_table(results: dict) -> str:
    """The human-readable summary `selftaught eval` prints."""
    s = results["settings"]
    mode = "greedy" if s["greedy"] else f"T={s['temperature']}, {s['samples']} samples"
    lines = [f"model {results['model']} ({mode})",
             f"{'benchmark':<16} {'n':>5} {'pass@1':>7} {'95% CI':>15}  {'pass@k':<28} {'time':>6}"]
    for name, b in results["benchmarks"].items():
        ci = f"[{b['ci95'][0]:.3f}, {b['ci95'][1]:.3f}]" if "ci95" in b else ""
        more = " ".join(f"@{k}={v:.3f}" for k, v in b["pass@k"].items() if k != "1")
        lines.append(f"{name:<16} {b['n']:>5} {b['pass@1']:>7.3f} {ci:>15}  {more:<28} {b['seconds']:>5.0f}s")
        for kind, sub in b.get("by_kind", {}).items():
            lines.append(f"  {kind:<14} {sub['n']:>5} {sub['pass@1']:>7.3f}")
    return "\n".join(lines)
