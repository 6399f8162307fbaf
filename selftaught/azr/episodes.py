"""Absolute Zero self-play as an episode source for the shared trainer (docs/reference.md §3).

One `collect` is one self-play step:

    propose ──► validate ──► learnability rollouts ──► buffers ──► solve
    (B prompts per type:     (executor:       (n solver samples per     (valid       (B tasks per type
     K references, or a       parse, f,        valid proposal → r̄ →     proposals    sampled from its
     program for induction)   safety, runs)    r_propose)                enter)       buffer → r_solve)

The returned rollout holds the trained samples only: the B proposer responses and
the B solver responses of every task type (6 groups of B for three types), with
one `TrainedRow` per row in `rollout.extras["azr"]` (what the executor found: valid,
r̄, correct). The learnability rollouts only estimate r̄ and are not trained on; the
solve batch is sampled from the buffers (this step's new tasks included), as AZR's
code does. `rewards()` turns the rows into the format-aware rewards (`rewards.py`),
advantages are TRR++ (one baseline per (task type, role)), and both roles share one
update.

The first `collect` runs the seeding phase: proposals without updates until every
buffer holds `seed_proposals` tasks (or `seed_rounds` batches were tried).

Model-written code runs only in the sandboxed `PythonExecutor` (one per episode
source, started on first use, closed by `close()` or at exit); parsing here builds
syntax trees at most. No model output can raise, and none writes into the log: the
warnings Python gives about model-written source are silenced, and those that point
at a likely bug (`x is 1`, `1(2)`) are counted per step as `azr/code_warnings/<kind>`.

Several processes (`set_processes`): B is the *global* batch per (type, role). Every
rank builds the same B proposer prompts and samples the same B solve tasks per type
(same seeded `rng`, same buffers) and keeps its contiguous share; the valid
proposals of all ranks are gathered and added to every rank's buffers in rank
order, so there is one global buffer, identical on every rank (rank 0's checkpoint
is everyone's). Each rank runs its own executor on its own share; counters and
timings are summed (timings: the slowest rank) before they are logged.
"""

from __future__ import annotations

import ast
import atexit
import functools
import math
import random
import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..advantages import task_relative_advantages
from ..distributed import Processes
from ..episodes import EpisodeSource, tag_share
from ..errors import UserError
from ..executor.checks import model_code_warnings
from ..rollout import Rollout
from .buffers import TaskBuffer
from .checking import check_answers
from .parsing import parse_answer, parse_proposal
from .prompts import proposer_prompt, solver_prompt, wrap_prompt
from .rewards import proposer_reward, solve_rate, solver_reward
from .tasks import TASK_TYPE_SPECS, TASK_TYPES, Task, seed_task

ROLES = ("propose", "solve")
# Induction programs come from the buffers of the types whose proposer writes programs.
PROGRAM_SOURCES = tuple(t for t, spec in TASK_TYPE_SPECS.items() if "python" in spec.proposer_writes)


@dataclass
class ProposerRequest:
    task_type: str
    prompt: str
    program: str | None = None  # induction: the program the proposer writes inputs for


@dataclass
class ProposalOutcome:
    valid: bool
    reason: str | None = None
    task: Task | None = None
    excluded: bool = False  # a valid task whose program is one of azr.exclude_programs


@dataclass(frozen=True)
class TrainedRow:
    """What self-play found about one trained row; `AZREpisodes.rewards` turns it into R(y)."""

    task_type: str
    role: str  # "propose" or "solve"
    valid: bool  # propose: the task passed validation; solve: the answer parsed (well formed)
    reason: str | None  # why it is not valid
    program_chars: int | None  # the task's program length (valid proposals and every solved task)
    solve_rate: float | None = None  # propose, valid: r̄ over the n learnability rollouts
    correct: bool | None = None  # solve: the answer checked right
    excluded: bool = False  # propose: a program self-play must not train on (azr.exclude_programs)


def reason_key(reason: str | None) -> str:
    """A rejection reason as a short metric-name piece ('error: KeyError' → 'error_KeyError')."""
    head, _, detail = (reason or "unknown").partition(":")
    head, detail = head.strip(), detail.strip()
    if detail and head in ("error", "missing_block", "duplicate_block", "empty_block", "unparsable"):
        head = f"{head}_{detail}"
    return re.sub(r"\W+", "_", head)[:48] or "unknown"


def program_key(program: str) -> str:
    """A program's text up to layout (`ast.unparse` of its parse; the stripped text if it does not
    parse): proposals that differ only in spacing or comments are the same program."""
    try:
        with warnings.catch_warnings():  # model-written code: its SyntaxWarnings are not the user's
            warnings.simplefilter("ignore")
            return ast.unparse(ast.parse(program))
    except Exception:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        return program.strip()


def excluded_programs(setting: str | None) -> frozenset[str]:
    """The `program_key`s of azr.exclude_programs: `builtin` = the programs the built-in measurements
    draw (the template world's dev and held-out programs; the first `chains.MEASURED_PROGRAMS` dev
    and held-out chains at `chains.MEASURED_SEED`); a path = a JSONL file's `program` fields."""
    if setting is None:
        return frozenset()
    if setting == "builtin":
        from ..data import chains, programs

        texts = [program for split in ("dev", "heldout") for _, _, program in programs.all_programs(split)]
        texts += [item.program for split in ("dev", "heldout")
                  for item in chains.generate(chains.MEASURED_PROGRAMS, split, seed=chains.MEASURED_SEED)]
    else:
        from ..data import read_jsonl

        texts = []
        for _, where, record in read_jsonl(Path(setting), "azr.exclude_programs file"):
            if not isinstance(record, dict) or not isinstance(record.get("program"), str):
                raise UserError(f"{where}: azr.exclude_programs rows need a string 'program' field")
            texts.append(record["program"])
    return frozenset(program_key(text) for text in texts)


def counted_programs(setting: str | None) -> frozenset[str]:
    """Programs self-play trains on but counts (`azr/<type>/propose/held_out_split`): with `builtin`,
    every dev and held-out chain (those it must not train on are `excluded_programs`); none otherwise."""
    return held_out_chains() if setting == "builtin" else frozenset()


@functools.lru_cache(maxsize=1)
def held_out_chains() -> frozenset[str]:
    """Every chain of the dev and held-out splits (chains are written in `program_key`'s form: a test checks)."""
    from ..data import chains, programs

    return frozenset(c for c in chains.all_chains() if programs.split_of(c) in ("dev", "heldout"))


def min_induction_pairs(num_inputs: int) -> int:
    """Valid inputs an induction proposal needs: half of N, and at least one shown + one held out."""
    return max(2, math.ceil(num_inputs / 2))


class AZREpisodes(EpisodeSource):
    """Proposer and solver on deduction, abduction and induction, trained jointly."""

    def __init__(self, config, tokenizer, executor=None):
        self.config, self.azr, self.tokenizer = config, config.azr, tokenizer
        self.types = list(self.azr.task_types)
        self.rng = random.Random(config.seed)
        self.buffers = {t: TaskBuffer(t, self.azr.buffer_capacity, [seed_task(t)]) for t in TASK_TYPES}
        self.seeded = self.azr.seed_proposals == 0 or self.azr.seed_rounds == 0
        self.rollouts = 0
        self._executor, self._owns_executor = executor, executor is None
        self.reward_weights = {"azr": 1.0}
        if self.azr.self_certainty_weight > 0:
            self.reward_weights["self_certainty"] = self.azr.self_certainty_weight
        self._stats: dict[str, float] = {}
        self.processes = Processes.single()
        self.excluded_programs = excluded_programs(self.azr.exclude_programs)
        self.counted_programs = counted_programs(self.azr.exclude_programs)

    def set_processes(self, processes: Processes) -> None:
        processes.share(self.azr.tasks_per_type_role, "azr.tasks_per_type_role")  # must split evenly: fail now
        self.processes = processes

    def _mine(self, items: list, groups: int) -> list:
        """This rank's share of each of `groups` consecutive blocks of B items (all of them on one process)."""
        B = self.azr.tasks_per_type_role
        share = self.processes.share(B, "azr.tasks_per_type_role")
        return [item for g in range(groups) for item in items[g * B:(g + 1) * B][share]]

    # ------------------------------------------------------------- executor

    @property
    def executor(self):
        if self._executor is None:
            from ..executor import PythonExecutor

            self._executor = PythonExecutor(workers=self.azr.executor_workers, timeout_s=self.azr.executor_timeout_s,
                                            memory_mb=self.azr.executor_memory_mb)
            atexit.register(self.close)
        return self._executor

    def close(self) -> None:
        """Stop the executor's sandbox processes (only one this source started). Idempotent."""
        if self._executor is not None and self._owns_executor:
            self._executor.close()
            self._executor = None

    def _validate(self, items: list[tuple[str, str]]) -> list:
        if not items:
            return []
        return self.executor.validate_many(items)

    # -------------------------------------------------------------- prompts

    def _text(self, body: str) -> str:
        return wrap_prompt(body, self.tokenizer, self.azr.use_chat_template)

    def _num_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _fits(self, text: str) -> bool:
        return self._num_tokens(text) <= self.config.max_prompt_length

    def proposer_request(self, task_type: str) -> ProposerRequest:
        """A proposer prompt; references are dropped (last first) until it fits max_prompt_length."""
        spec = TASK_TYPE_SPECS[task_type]
        program, references = None, []
        if spec.given_program:
            pool = [task for source in PROGRAM_SOURCES for task in self.buffers[source].tasks()]
            program = self.rng.choice(pool).program
        if spec.uses_references:
            buffer = self.buffers[task_type]
            references = buffer.sample(min(self.azr.num_references, len(buffer)), self.rng)
        while True:
            text = self._text(proposer_prompt(task_type, references=references, program=program,
                                              num_inputs=self.azr.induction_inputs,
                                              timeout_s=self.azr.executor_timeout_s))
            fits = self._fits(text)
            if fits or not references:
                break
            references = references[:-1]
            self._count("azr/prompts/references_dropped")
        if not fits:
            self._count("azr/prompts/over_length")
        return ProposerRequest(task_type, text, program)

    def solver_text(self, task: Task) -> str:
        return self._text(solver_prompt(task))

    def _count(self, key: str, by: float = 1) -> None:
        self._stats[key] = self._stats.get(key, 0) + by

    # ------------------------------------------------------------- proposing

    def evaluate_proposals(self, requests: list[ProposerRequest], completions: list[str],
                           step: int) -> list[ProposalOutcome]:
        """Parse every proposal and validate it in the executor (one batched call)."""
        N = self.azr.induction_inputs
        outcomes: list[ProposalOutcome | None] = [None] * len(requests)
        drafts, runs = {}, []  # k → (program, message); (k, program, input)
        for k, (request, text) in enumerate(zip(requests, completions)):
            parsed = parse_proposal(text, request.task_type, N)
            if not parsed.ok:
                outcomes[k] = ProposalOutcome(False, parsed.reason)
                continue
            program = request.program if TASK_TYPE_SPECS[request.task_type].given_program else parsed.program
            drafts[k] = (program, parsed.message)
            runs += [(k, program, inputs) for inputs in parsed.inputs]
        verdicts = self._validate([(program, inputs) for _, program, inputs in runs])
        by_proposal: dict[int, list[tuple[str, object]]] = {}
        for (k, _, inputs), verdict in zip(runs, verdicts):
            by_proposal.setdefault(k, []).append((inputs, verdict))
        for k, (program, message) in drafts.items():
            task_type = requests[k].task_type
            checked = by_proposal[k]
            passed = [(i, v.output) for i, v in checked if v.ok]
            if TASK_TYPE_SPECS[task_type].many_inputs:
                if len(passed) < min_induction_pairs(N):
                    failures = Counter(reason_key(v.reason) for _, v in checked if not v.ok)
                    for why, count in failures.items():
                        self._count(f"azr/{task_type}/propose/failed_inputs/{why}", count)
                    outcomes[k] = ProposalOutcome(False, "too_few_valid_inputs")
                    continue
            elif not passed:
                outcomes[k] = ProposalOutcome(False, checked[0][1].reason)
                continue
            task = Task(task_type, program, [i for i, _ in passed], [o for _, o in passed], message, step)
            key = program_key(program)
            if key in self.excluded_programs:
                outcomes[k] = ProposalOutcome(False, "excluded_program", task, excluded=True)
                self._count(f"azr/{task_type}/propose/excluded")
                continue
            if key in self.counted_programs:
                self._count(f"azr/{task_type}/propose/held_out_split")  # trained on, but never measured: counted
            outcomes[k] = ProposalOutcome(True, None, task)
        return outcomes

    def _propose(self, sampler, task_types: list[str], step: int) -> tuple[Rollout, list[ProposalOutcome]]:
        B = self.azr.tasks_per_type_role
        requests = self._mine([self.proposer_request(t) for t in task_types for _ in range(B)], len(task_types))
        started = time.perf_counter()
        rollout = sampler.sample([r.prompt for r in requests], 1)
        generated = time.perf_counter()
        outcomes = self.evaluate_proposals(requests, rollout.completions, step)
        self._count("azr/time/propose_generate_s", generated - started)
        self._count("azr/time/validate_s", time.perf_counter() - generated)
        rollout.extras = {"task_type": [r.task_type for r in requests]}
        return rollout, outcomes

    def _add_to_buffers(self, outcomes: list[ProposalOutcome]) -> None:
        """Every rank's valid proposals enter every rank's buffers, in rank order (one global buffer)."""
        mine = [outcome.task for outcome in outcomes if outcome.valid]
        for rank, tasks in enumerate(self.processes.gather(mine)):
            for task in tasks:
                if not self.buffers[task.type].add(task) and rank == self.processes.rank:
                    self._count(f"azr/{task.type}/propose/duplicates")  # each rank counts its own

    def seed(self, sampler) -> None:
        """The seeding phase: proposals without updates until the buffers are filled."""
        started = time.perf_counter()
        rounds = 0
        for _ in range(self.azr.seed_rounds):
            short = [t for t in self.types if self.buffers[t].num_proposed < self.azr.seed_proposals]
            if not short:
                break
            rounds += 1
            rollout, outcomes = self._propose(sampler, short, step=0)
            self._add_to_buffers(outcomes)
            for task_type, outcome in zip(rollout.extras["task_type"], outcomes):
                self._count(f"azr/seed/{task_type}/proposals")
                self._count(f"azr/seed/{task_type}/valid", outcome.valid)
        self.seeded = True
        self._stats["azr/seed/rounds"] = rounds
        self._stats["azr/time/seed_s"] = time.perf_counter() - started
        for t in self.types:
            self._stats[f"azr/seed/{t}/buffer_size"] = len(self.buffers[t])

    # --------------------------------------------------------------- solving

    def solve(self, sampler, tasks: list[Task], num_generations: int,
              greedy: bool = False) -> tuple[Rollout, list, list[bool]]:
        """Sample solver responses for `tasks` (num_generations each, rows grouped by task) and check them."""
        started = time.perf_counter()
        texts = [self.solver_text(task) for task in tasks]
        self._count("azr/prompts/over_length", sum(not self._fits(t) for t in texts))
        rollout = sampler.sample(texts, num_generations, greedy=greedy)
        generated = time.perf_counter()
        row_tasks = [task for task in tasks for _ in range(num_generations)]
        answers = [parse_answer(text, task.type) for text, task in zip(rollout.completions, row_tasks)]
        correct = check_answers(self.executor, row_tasks, [a.value if a.ok else None for a in answers])
        self._count("azr/time/solve_generate_s", generated - started)
        self._count("azr/time/check_s", time.perf_counter() - generated)
        return rollout, answers, correct

    # -------------------------------------------------------------- protocol

    def _count_code_warnings(self, before: dict[str, int]) -> None:
        """Count the warnings model-written code raised since `before` (`model_code_warnings()`'s
        totals then) as `azr/code_warnings/<kind>`: they are metrics, never lines in the log."""
        for kind, total in model_code_warnings().items():
            if total > before.get(kind, 0):
                self._count(f"azr/code_warnings/{kind}", total - before.get(kind, 0))

    def collect(self, sampler, num_completions: int | None = None) -> Rollout:
        """One self-play step; `num_completions` is ignored (the batch is 2 × types × B, or types × B
        with `train_proposer: false`)."""
        self._stats = {}
        warned = model_code_warnings()
        if not self.seeded:
            self.seed(sampler)
        self.rollouts += 1
        B, n = self.azr.tasks_per_type_role, self.azr.learnability_rollouts

        proposed, outcomes = None, []
        if self.azr.train_proposer:
            proposed, outcomes = self._propose(sampler, self.types, self.rollouts)
            self._add_to_buffers(outcomes)  # the solve batch is drawn from buffers holding this step's tasks
        tasks = self._mine([task for t in self.types for task in self.buffers[t].sample(B, self.rng)],
                           len(self.types))

        # One decoding pass: n learnability rollouts per valid proposal (they estimate r̄ and are not
        # trained on), then the solve batch.
        valid = [k for k, o in enumerate(outcomes) if o.valid]
        probes = [outcomes[k].task for k in valid for _ in range(n)]
        rollout, answers, correct = self.solve(sampler, probes + tasks, 1)
        solved = rollout.rows(slice(len(probes), None))
        solved.extras = {"azr": [TrainedRow(task.type, "solve", a.ok, a.reason, len(task.program), correct=c)
                                 for task, a, c in zip(tasks, answers[len(probes):], correct[len(probes):])]}
        self._count_code_warnings(warned)
        if proposed is None:
            self._stats = self._over_ranks(self._stats)
            return solved

        rates: list[float | None] = [None] * len(outcomes)
        for j, k in enumerate(valid):
            rates[k] = solve_rate(correct[j * n:(j + 1) * n])
        proposed.extras = {"azr": [
            TrainedRow(task_type, "propose", o.valid, o.reason, len(o.task.program) if o.valid else None,
                       solve_rate=rate, excluded=o.excluded)
            for task_type, o, rate in zip(proposed.extras["task_type"], outcomes, rates)]}
        self._stats = self._over_ranks(self._stats)
        return Rollout.concat([proposed, solved], self.tokenizer.pad_token_id)

    def _over_ranks(self, stats: dict[str, float]) -> dict[str, float]:
        """Counters summed over ranks; timings and per-buffer figures (equal on every rank) their maximum."""
        if self.processes.world == 1:
            return stats

        def equal_on_every_rank(key: str) -> bool:
            return "/time/" in key or key.endswith(("/rounds", "/buffer_size"))

        counters = {key: value for key, value in stats.items() if not equal_on_every_rank(key)}
        shared = {key: value for key, value in stats.items() if equal_on_every_rank(key)}
        return {**self.processes.total(counters), **self.processes.maximum(shared)}

    def row_reward(self, row: TrainedRow) -> float:
        """R(y): format-aware, by role (`rewards.py`); NaN (no reward) for an excluded proposal."""
        if row.excluded:
            return math.nan
        if row.role == "propose":
            return proposer_reward(row.valid, row.solve_rate, self.azr.reward_style)
        return solver_reward(row.valid, bool(row.correct))

    def rewards(self, rollout: Rollout, scores) -> dict[str, torch.Tensor]:
        """`azr`: the format-aware reward; `self_certainty` (solver rows only) when weighted."""
        rows: list[TrainedRow] = rollout.extras["azr"]
        rewards = {"azr": torch.tensor([self.row_reward(row) for row in rows], dtype=torch.float32)}
        if "self_certainty" in self.reward_weights:
            solver = torch.tensor([row.role == "solve" for row in rows], dtype=torch.float32)
            rewards["self_certainty"] = scores.self_certainty.detach().float().cpu() * solver
        return rewards

    def advantages(self, rollout: Rollout, rewards: dict[str, torch.Tensor]) -> torch.Tensor:
        """TRR++: (r − μ) / (σ + ε) of the weighted total within each (task type, role) group of the batch."""
        # An excluded proposal is a group of its own: advantage 0, and no part of its task's baseline.
        keys = [("excluded", k) if row.excluded else (row.task_type, row.role)
                for k, row in enumerate(rollout.extras["azr"])]
        return task_relative_advantages(self.total_reward(rewards), keys, scale=self.config.scale_rewards != "none",
                                        eps=self.config.advantage_epsilon)

    def metrics(self, rollout: Rollout, rewards: dict[str, torch.Tensor]) -> dict[str, float]:
        """Per (task type, role): count, reward, solve rate, validity, rejection reasons; buffers."""
        all_rows: list[TrainedRow] = rollout.extras["azr"]
        reward = rewards["azr"].tolist()  # R(y) of each row, as `rewards()` computed it
        out: dict[str, float] = {}
        for task_type in self.types:
            for role in ROLES:
                indices = [k for k, row in enumerate(all_rows) if row.task_type == task_type and row.role == role]
                if not indices:
                    continue
                rows = [all_rows[k] for k in indices]
                prefix = f"azr/{task_type}/{role}"
                out[f"{prefix}/count"] = len(rows)
                rewarded = [reward[k] for k in indices if not math.isnan(reward[k])]
                if rewarded:
                    out[f"{prefix}/reward_mean"] = sum(rewarded) / len(rewarded)
                valid = [row for row in rows if row.valid]
                for name, pattern in self.config.completion_tags.items():
                    out[f"{prefix}/tags/{name}"] = tag_share([rollout.completions[k] for k in indices], pattern)
                if role == "solve":
                    out[f"{prefix}/solve_rate"] = sum(bool(row.correct) for row in rows) / len(rows)
                    out[f"{prefix}/format_error_rate"] = 1 - len(valid) / len(rows)
                else:
                    judged = [row for row in rows if not row.excluded]  # excluded ones are counted apart
                    if judged:
                        out[f"{prefix}/valid_rate"] = len(valid) / len(judged)
                    if valid:  # r̄ of this step's valid proposals: how hard the new tasks are
                        out[f"{prefix}/solve_rate"] = sum(row.solve_rate for row in valid) / len(valid)
                        out[f"{prefix}/program_chars"] = sum(row.program_chars for row in valid) / len(valid)
                    for why, count in Counter(reason_key(row.reason) for row in judged if not row.valid).items():
                        out[f"{prefix}/reject/{why}"] = count
        for task_type in self.types:
            buffer = self.buffers[task_type]
            out[f"azr/buffer/{task_type}/size"] = len(buffer)
            out[f"azr/buffer/{task_type}/program_chars"] = buffer.mean_program_chars()
        out.update(self._stats)
        return out

    def state_dict(self) -> dict:
        return {"buffers": {t: b.state_dict() for t, b in self.buffers.items()}, "rng": self.rng.getstate(),
                "seeded": self.seeded, "rollouts": self.rollouts}

    def load_state_dict(self, state: dict) -> None:
        for task_type, buffer_state in state["buffers"].items():
            self.buffers[task_type].load_state_dict(buffer_state)
        self.rng.setstate(state["rng"])
        self.seeded, self.rollouts = state["seeded"], state["rollouts"]

    def export(self, output_dir, step: int | None = None) -> None:
        """Write `output_dir/buffers/{type}.jsonl`, one task per line, for people to read."""
        for task_type, buffer in self.buffers.items():
            buffer.export(Path(output_dir) / "buffers" / f"{task_type}.jsonl")
