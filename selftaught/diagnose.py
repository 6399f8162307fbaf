"""`selftaught diagnose`: will label-free RL help *this* model on *this* data?

On N prompts with gold answers, K sampled completions each (temperature τ, the
trainer's sampler), scored by the trainer's own no-grad pass (`scoring.score_rollout`):

- accuracy: pass@1 (mean over all N·K samples), pass@K (a group has a right one),
  majority@K (the group's majority answer, by math-verify equivalence, is right)
  and greedy accuracy, each with a 95% bootstrap interval over prompts;
- for every label-free reward source (the registry's built-ins, plus user
  functions): the within-group AUROC — over all (right, wrong) pairs of
  completions of the *same* prompt, P(score_right > score_wrong) + ½·P(tie) —
  with a 95% bootstrap interval over prompts. Pooled: Σ wins / Σ pairs over groups,
  so a group counts by its number of pairs. Prompts whose K answers are all right
  or all wrong give no pairs (and no training signal to a group-normalised reward
  that tracks correctness either);
- a verdict per source: AUROC ≥ 0.60 "likely to help", ≤ 0.45 "likely to hurt",
  in between "neutral"; fewer than 20 pairs: "unknown". (docs/reference.md §6: above
  ~0.6 a signal can help, near 0.5 it is noise, below 0.5 it teaches the wrong
  answers; 0.45 leaves room for the noise of a few hundred pairs.)

A group-normalised reward pushes a group's completions by their *rank* within
the group, so the within-group ranking (not the global one) is what decides
whether training on it moves pass@1 toward the right answers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import UserError
from .prompting import DATA_CHAT_TEMPLATE_KEY, format_described_prompt, uses_chat_template

if TYPE_CHECKING:
    from .config import TrainConfig

HELPS_AT = 0.60  # within-group AUROC at or above: likely to help
HURTS_AT = 0.45  # at or below: likely to hurt
MIN_PAIRS = 20  # fewer (right, wrong) pairs: no verdict
BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95


# ------------------------------------------------------------------ statistics


def group_pair_counts(scores, correct, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (wins, pairs) over its (right, wrong) pairs, wins = #[s_r > s_w] + ½ #[s_r = s_w].

    Rows whose score is NaN (a user function's None) take part in no pair.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, group_size)
    correct = np.asarray(correct, dtype=bool).reshape(-1, group_size)
    wins, pairs = np.zeros(len(scores)), np.zeros(len(scores))
    for g, (s, c) in enumerate(zip(scores, correct)):
        known = ~np.isnan(s)
        right, wrong = s[c & known], s[~c & known]
        if len(right) and len(wrong):
            diff = right[:, None] - wrong[None, :]
            wins[g] = (diff > 0).sum() + 0.5 * (diff == 0).sum()
            pairs[g] = diff.size
    return wins, pairs


def ratio_with_interval(numerators, denominators, *, samples: int = BOOTSTRAP_SAMPLES, level: float = LEVEL,
                        seed: int = 0) -> dict:
    """Σ num / Σ den over groups, with a percentile bootstrap interval (groups resampled with
    replacement). value/low/high are None when Σ den = 0."""
    num, den = np.asarray(numerators, dtype=np.float64), np.asarray(denominators, dtype=np.float64)
    if den.sum() == 0:
        return {"value": None, "low": None, "high": None}
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(num), size=(samples, len(num)))
    totals = den[index].sum(axis=1)
    kept = totals > 0
    stats = num[index].sum(axis=1)[kept] / totals[kept]
    tail = (1 - level) / 2 * 100
    return {"value": float(num.sum() / den.sum()), "low": float(np.percentile(stats, tail)),
            "high": float(np.percentile(stats, 100 - tail))}


def within_group_auroc(scores, correct, group_size: int, seed: int = 0) -> dict:
    """{"value", "low", "high", "pairs"}: pooled within-group AUROC with its bootstrap interval."""
    wins, pairs = group_pair_counts(scores, correct, group_size)
    return {**ratio_with_interval(wins, pairs, seed=seed), "pairs": int(pairs.sum())}


def verdict(auroc: float | None, pairs: int) -> str:
    if auroc is None or pairs < MIN_PAIRS:
        return "unknown"
    if auroc >= HELPS_AT:
        return "likely to help"
    if auroc <= HURTS_AT:
        return "likely to hurt"
    return "neutral"


def verdict_line(name: str, result: dict) -> str:
    """One line for `result` (a within-group AUROC with its `verdict` already decided)."""
    pairs = result["pairs"]
    if result["verdict"] == "unknown":
        return f"{name}: unknown — only {pairs} right/wrong pairs within groups (need {MIN_PAIRS})"
    rule = {"likely to help": f"≥ {HELPS_AT:.2f}", "likely to hurt": f"≤ {HURTS_AT:.2f}",
            "neutral": f"between {HURTS_AT:.2f} and {HELPS_AT:.2f}"}[result["verdict"]]
    return (f"{name}: {result['verdict']} — within-group AUROC {result['value']:.2f} "
            f"[{result['low']:.2f}, {result['high']:.2f}] over {pairs} pairs ({rule})")


# ------------------------------------------------------------------- the run


def default_prompt_template(tokenizer, use_chat_template: str) -> str:
    """Inside a chat template: the eval's math instruction. Without one (e.g. the built-in
    `tiny`): "Question: {prompt}\\nAnswer:", the format the built-in model was trained on."""
    from .evaluate.benchmarks import MATH_INSTRUCTION, MATH_PLAIN

    if uses_chat_template(tokenizer, use_chat_template, DATA_CHAT_TEMPLATE_KEY):
        return MATH_INSTRUCTION.format(prompt="{prompt}")
    return MATH_PLAIN


def _rows_with_answers(data, n: int, seed: int):
    from .data import load_described_rows

    rows = [row for row in load_described_rows(data, seed=seed, num_examples=n) if row.answer is not None][:n]
    if not rows:
        raise UserError(f"diagnose needs gold answers, but data set {data.source!r} has no "
                        f"{data.answer_field!r} field")
    return rows


def run_diagnose(config: TrainConfig, *, n: int = 40, samples: int = 8, rewards: list[str] = (),
                 batch_size: int = 32, output_dir: str = "runs/diagnose", default_template: bool = False,
                 chunk_size: int | None = None, tags: dict | None = None) -> dict:
    """Run the diagnostic of a training recipe and write `output_dir/diagnose.json`; returns the same record.

    From `config`: the model (`model.name_or_path`, `model.dtype`), the data set and the format
    its prompts are asked in (`data`, as train reads it), the sampling temperature, the prompt and
    completion lengths, the seed, and the user reward functions among its `rewards`, ranked with
    the ones named in `rewards` here. `default_template`: ask in diagnose's default
    format for the model (`default_prompt_template`) instead of `data.prompt_template`, for a
    model and data set named without a recipe that says how the model is prompted.

    `tags`: name → predicate on a completion's text (e.g. "takes the column procedure"):
    the record gains, per tag, the share of sampled completions it holds for
    (`tags`) and the accuracy of those it holds and does not hold for
    (`tag_accuracy`), with the same bootstrap intervals over prompts."""
    from .models import load_model
    from .rewards import MathAnswerReward, build_reward, is_user_function, label_free_rewards
    from .rollout import SelftaughtSampler
    from .scoring import score_rollout

    if n < 1 or samples < 2:
        raise UserError("diagnose needs --n >= 1 and --samples >= 2 (AUROC compares completions within a group)")
    started = time.perf_counter()
    data, seed, temperature = config.data, config.seed, config.temperature
    torch.manual_seed(seed)
    rows = _rows_with_answers(data, n, seed)
    # User functions are imported before the model loads: a typo fails in a second, not a minute.
    user_functions = [spec.name for spec in config.rewards if is_user_function(spec.name)] + list(rewards)
    sources = {name: build_reward(name, group_size=samples) for name in user_functions}
    policy, tokenizer = load_model(config.model.name_or_path, config.model.dtype)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    policy = policy.to(device).eval()
    if default_template:
        data = data.model_copy(update={"prompt_template": default_prompt_template(tokenizer, data.use_chat_template)})
    texts = [format_described_prompt(tokenizer, row.prompt, data) for row in rows]
    extras = {"answer": [row.answer for row in rows]}
    sampler = SelftaughtSampler(policy, tokenizer, max_prompt_length=config.max_prompt_length,
                                max_completion_length=config.max_completion_length,
                                temperature=temperature, top_p=1.0, top_k=0, generation_batch_size=batch_size)
    rollout = sampler.sample(texts, samples, extras=extras)
    greedy = sampler.sample(texts, 1, greedy=True, extras=extras)
    sampled_s = time.perf_counter() - started
    scores = score_rollout(policy, rollout, temperature=temperature, chunk_size=chunk_size, batch_size=batch_size,
                           device=device, entropy=True)

    gold = MathAnswerReward()
    correct = gold(rollout.completions, rollout.extras, None).numpy().astype(bool)
    greedy_correct = gold(greedy.completions, greedy.extras, None).numpy().astype(bool)
    by_group = correct.reshape(-1, samples)

    for name in label_free_rewards():
        if name not in sources:
            sources[name] = build_reward(name, group_size=samples, tokenizer=tokenizer)
    results, values_of = {}, {}
    for name, source in sources.items():
        values = values_of[name] = source(rollout.completions, rollout.extras, scores, rollout=rollout).double().numpy()
        result = within_group_auroc(values, correct, samples, seed=seed)
        known = ~np.isnan(values)
        result.update(verdict=verdict(result["value"], result["pairs"]),
                      mean_right=float(values[correct & known].mean()) if (correct & known).any() else None,
                      mean_wrong=float(values[~correct & known].mean()) if (~correct & known).any() else None)
        result["line"] = verdict_line(name, result)
        results[name] = result

    majority = values_of["majority_vote"].reshape(-1, samples).astype(bool)  # in its group's majority cluster
    majority_right = (majority & by_group).any(axis=1)  # the majority cluster is one answer: right or not
    ones = np.ones(len(rows))
    accuracy = {
        "pass@1": ratio_with_interval(by_group.sum(axis=1), ones * samples, seed=seed),
        f"pass@{samples}": ratio_with_interval(by_group.any(axis=1), ones, seed=seed),
        f"majority@{samples}": ratio_with_interval(majority_right, ones, seed=seed),
        "greedy": ratio_with_interval(greedy_correct, ones, seed=seed),
    }

    tagged = {name: np.array([bool(holds(text)) for text in rollout.completions]).reshape(-1, samples)
              for name, holds in (tags or {}).items()}
    record = {
        "tags": {name: ratio_with_interval(t.sum(axis=1), ones * samples, seed=seed) for name, t in tagged.items()},
        "tag_accuracy": {name: {
            "with": ratio_with_interval((t & by_group).sum(axis=1), t.sum(axis=1), seed=seed),
            "without": ratio_with_interval((~t & by_group).sum(axis=1), (~t).sum(axis=1), seed=seed)}
            for name, t in tagged.items()},
        "model": config.model.name_or_path, "data": data.source, "split": data.split, "n": len(rows),
        "samples": samples, "temperature": temperature, "max_new_tokens": config.max_completion_length,
        "prompt_template": data.prompt_template,
        "chat_template": uses_chat_template(tokenizer, data.use_chat_template, DATA_CHAT_TEMPLATE_KEY),
        "seed": seed, "accuracy": accuracy, "sources": results,
        "groups_with_pairs": int((by_group.any(axis=1) & ~by_group.all(axis=1)).sum()),
        "thresholds": {"helps_at": HELPS_AT, "hurts_at": HURTS_AT, "min_pairs": MIN_PAIRS,
                       "bootstrap_samples": BOOTSTRAP_SAMPLES, "level": LEVEL},
        "seconds": {"sampling": sampled_s, "total": time.perf_counter() - started},
        "examples": [{"prompt": rollout.prompts[i], "completion": rollout.completions[i], "gold": rollout.extras[
            "answer"][i], "correct": bool(correct[i])} for i in range(min(4, len(rollout)))],
    }
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "diagnose.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _interval(result: dict) -> str:
    if result["value"] is None:
        return "—"
    return f"{result['value']:.2f} [{result['low']:.2f}, {result['high']:.2f}]"


def format_report(record: dict) -> str:
    """The tables `selftaught diagnose` prints (and the README shows)."""
    lines = [f"{record['model']} on {record['data']} ({record['split']} split): {record['n']} prompts × "
             f"{record['samples']} samples at τ={record['temperature']}, {record['seconds']['total']:.0f} s",
             "", "| accuracy | value [95% interval] |", "|---|---|"]
    lines += [f"| {name} | {_interval(result)} |" for name, result in record["accuracy"].items()]
    lines += ["", "| signal | within-group AUROC [95% interval] | pairs | verdict |", "|---|---|---|---|"]
    for name, result in record["sources"].items():
        lines.append(f"| {name} | {_interval(result)} | {result['pairs']} | {result['verdict']} |")
    lines += [""] + [result["line"] for result in record["sources"].values()]
    return "\n".join(lines)
