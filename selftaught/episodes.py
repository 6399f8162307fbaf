"""Episode sources: where a training step's completions and rewards come from.

The trainer's loop is the same for every method (rollout → score → rewards →
advantages → update); an episode source supplies the method-specific parts.
`EpisodeSource` is the whole contract: the trainer calls exactly its methods and
reads exactly its attributes, and every optional one has a documented no-op default.
Adding a method means writing an `EpisodeSource` subclass (and its reward sources),
nothing else.

Under several processes `collect` returns this rank's rows only, while
`advantages` and `metrics` receive the whole step's batch (gathered by the
trainer, rank order) and must not depend on which rank holds which row beyond
that order. A source keeps every rank's state identical (same seeded draws), so
rank 0's `state_dict()` is everyone's.

`PromptEpisodes` is Intuitor and GRPO: prompts from a data set, G completions per
prompt, group-normalised rewards. Absolute Zero is `azr.episodes.AZREpisodes`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

import torch

from .advantages import combine_advantages, weighted_total
from .config import RewardSpec, TrainConfig
from .data import PromptStream, load_described_rows
from .distributed import Processes
from .errors import UserError
from .prompting import format_described_prompt
from .rewards import Scores, build_reward, reward_class
from .rewards.entropy import harmonic_entropy
from .rewards.user import UserReward
from .rewards.math_answer import answer_check_budget, extract_answer
from .rollout import Rollout, RolloutSampler


def tag_share(completions: list[str], pattern: str) -> float:
    """The share of `completions` that match `pattern` at their start (config.completion_tags)."""
    matcher = re.compile(pattern)
    return sum(bool(matcher.match(text.lstrip())) for text in completions) / max(len(completions), 1)


class EpisodeSource(ABC):
    """What the trainer asks of a method. Subclass it and write the three abstract methods.

    Required (a subclass without one of the three methods cannot be built: Python names it):
    - `collect(sampler, num_completions)` → `Rollout`: this step's completions (this rank's rows);
    - `rewards(rollout, scores)` → {name: [N] float32}: every reward of every row (NaN = none),
      computed here and nowhere else;
    - `advantages(rollout, rewards)` → [N]: what the update weights each row by;
    - `reward_weights`: {name: w}: each reward's weight; 0 or absent = logged only. The logged
      `reward/mean` is the mean of `total_reward(rewards)` = Σ_s w_s r^s over the same
      sources the advantages use (`PromptEpisodes` normalises each source in its group
      before weighting, AZR normalises the total per task; both count the same sources).

    Optional, with the defaults below:
    - `needs_reference` / `needs_token_entropy`: what the scoring pass must add — the reference
      model's scores, H(p_t) — (default: neither; `PromptEpisodes` asks what its reward sources
      declare);
    - `set_processes(processes)`: this rank's share of the batch (default: accepts one process,
      refuses more with one line);
    - `metrics(rollout, rewards)`: method-specific figures for metrics.jsonl (default: none);
    - `state_dict()` / `load_state_dict(state)`: what a checkpoint must hold to resume exactly
      (default: nothing);
    - `export(output_dir, step)`: files for people to read, written with each checkpoint
      (default: none);
    - `close()`: release processes or files, called once when training ends, also on error
      (default: nothing to release).
    The trainer calls these and `total_reward`, and nothing else.
    """

    reward_weights: Mapping[str, float] = MappingProxyType({})  # read-only: a subclass sets its own
    needs_reference: bool = False  # e.g. offline self-certainty: score the reference model too
    needs_token_entropy: bool = False  # a reward reads H(p_t): the scoring pass returns it (same forward)

    @abstractmethod
    def collect(self, sampler: RolloutSampler, num_completions: int) -> Rollout:
        """This step's completions: `num_completions` rows (whole groups) for this rank."""

    @abstractmethod
    def rewards(self, rollout: Rollout, scores: Scores) -> dict[str, torch.Tensor]:
        """name → [N] float32 reward of every row (NaN = none); at least one."""

    @abstractmethod
    def advantages(self, rollout: Rollout, rewards: dict[str, torch.Tensor]) -> torch.Tensor:
        """[N] advantages of the whole step's batch (every rank's rows, rank order)."""

    def total_reward(self, rewards: dict[str, torch.Tensor]) -> torch.Tensor:
        """[N] Σ_s w_s r^s: the reward this source trains on (`advantages.weighted_total`)."""
        return weighted_total(rewards, self.reward_weights)

    def set_processes(self, processes: Processes) -> None:
        if processes.world > 1:
            raise UserError(f"{type(self).__name__} does not support multiple processes; run one process")

    def metrics(self, rollout: Rollout, rewards: dict[str, torch.Tensor]) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def export(self, output_dir, step: int) -> None:
        pass

    def close(self) -> None:
        pass


class PromptEpisodes(EpisodeSource):
    """Intuitor / GRPO: data-set prompts, G samples each, weighted group advantages."""

    def __init__(self, config: TrainConfig, tokenizer, rewards=None):
        """`rewards`: reward callables (TRL's signature, `rewards.user`), or (callable, weight)
        pairs, trained with the configured ones; when `config.rewards` is empty they replace
        the method's default main reward (the gold-answer check is still logged, weight 0)."""
        self.config = config
        data = config.data
        rows = load_described_rows(data, seed=config.seed)
        self.prompts = PromptStream(rows, seed=config.seed, shuffle=data.shuffle)
        self.texts = {row.prompt: format_described_prompt(tokenizer, row.prompt, data) for row in rows}
        self.specs = config.reward_specs()
        callables = [r if isinstance(r, tuple) else (r, 1.0) for r in (rewards or [])]
        if callables and not config.rewards:
            self.specs = [RewardSpec(name="math_answer", weight=0.0)]
        if not any(row.answer is not None for row in rows):
            for spec in self.specs:
                if reward_class(spec.name).needs_answers and spec.weight != 0:
                    raise UserError(f"reward {spec.name} needs gold answers, but data set {data.source!r} has no "
                                    f"{data.answer_field!r} field; use method: intuitor or add answers")
            # A gold-answer reward over data without answers would only log zeros.
            self.specs = [spec for spec in self.specs if not reward_class(spec.name).needs_answers]
        self.sources = {spec.name: build_reward(spec.name, spec.mode, group_size=config.num_generations,
                                                tokenizer=tokenizer, answer_only=spec.answer_only)
                        for spec in self.specs}
        self.reward_weights = {spec.name: spec.weight for spec in self.specs}
        for function, weight in callables:
            source = UserReward(function)
            if not callable(function) or source.name in self.sources:
                raise UserError(f"Trainer(rewards=...): {source.name!r} is not a callable or is named twice")
            self.sources[source.name], self.reward_weights[source.name] = source, float(weight)
        # Data-set columns for user functions: every key any row has (None where a row lacks it),
        # so all ranks' extras have the same keys.
        # "answer" is the gold string already; the signature's own names cannot be columns.
        self.columns = sorted({key for row in rows for key in row.columns}
                              - {"answer", "prompts", "completions", "completion_ids"})
        self.processes = Processes.single()

    @property
    def needs_token_entropy(self) -> bool:
        """Whether the scoring pass must also return H(p_t) (same forward)."""
        return any(source.needs_token_entropy for source in self.sources.values())

    def set_processes(self, processes: Processes) -> None:
        self.processes = processes

    @property
    def needs_reference(self) -> bool:
        """Whether the scoring pass must also score the frozen reference model."""
        return any(source.needs_reference for source in self.sources.values())

    def collect(self, sampler: RolloutSampler, num_completions: int) -> Rollout:
        """`num_completions` (this rank's, whole groups) for this rank's prompts.

        Every rank draws the global prompt list from the same seeded stream (so the
        stream's position is the same everywhere) and keeps its contiguous slice.
        """
        G = self.config.num_generations
        prompts_here = num_completions // G
        rows = self.prompts.take(prompts_here * self.processes.world)
        rows = rows[self.processes.rank * prompts_here:(self.processes.rank + 1) * prompts_here]
        extras = {"answer": [row.answer for row in rows],
                  **{key: [row.columns.get(key) for row in rows] for key in self.columns}}
        return sampler.sample([self.texts[row.prompt] for row in rows], num_generations=G, extras=extras)

    def rewards(self, rollout: Rollout, scores: Scores) -> dict[str, torch.Tensor]:
        with answer_check_budget():  # one budget for the step's answer checks, every source's together
            return {name: source(rollout.completions, rollout.extras, scores, rollout=rollout)
                    for name, source in self.sources.items()}

    def advantages(self, rollout: Rollout, rewards: dict[str, torch.Tensor]) -> torch.Tensor:
        return combine_advantages(rewards, self.reward_weights, self.config.num_generations,
                                  self.config.scale_rewards, self.config.advantage_epsilon,
                                  self.config.multi_objective_aggregation)

    def metrics(self, rollout: Rollout, rewards: dict[str, torch.Tensor]) -> dict[str, float]:
        """Answer diversity per group (harmonic entropy, docs/reference.md §4): a collapse diagnostic."""
        G = self.config.num_generations
        answers = [extract_answer(text) for text in rollout.completions]
        groups = [answers[i:i + G] for i in range(0, len(answers), G)]
        extracted = sum(a is not None for a in answers) / max(len(answers), 1)
        top_share = [Counter(g).most_common(1)[0][1] / len(g) for g in groups]
        metrics = {
            "answer_entropy/mean": sum(harmonic_entropy(g) for g in groups) / len(groups),
            "answer_agreement/mean": sum(top_share) / len(top_share),
            "answer_extracted/frac": extracted,
        }
        for name, pattern in self.config.completion_tags.items():
            metrics[f"tags/{name}/share"] = tag_share(rollout.completions, pattern)
        if "majority_vote" in rewards:  # the majority's share of its group (TTRL): the mean of its 0/1 rewards
            metrics["majority_vote/agreement"] = float(rewards["majority_vote"].float().mean())
        for name, source in self.sources.items():  # e.g. math_answer's refused or timed-out checks (scored 0)
            metrics.update({f"rewards/{name}/{key}": value for key, value in source.metrics().items()})
        return metrics

    def state_dict(self) -> dict:
        return {"prompts": self.prompts.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.prompts.load_state_dict(state["prompts"])
