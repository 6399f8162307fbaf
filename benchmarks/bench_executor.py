"""Validation throughput: our contained executor against an AZR-style baseline.

Both validate the same 1,000 generated programs (ordinary functions, a few slow
ones, a few that raise), each with two runs for the determinism check:

- ours: PythonExecutor(workers=2).validate_many(...): static checks, two runs in
  contained worker processes, round-trip and determinism checks. The executor is
  started before the clock starts (a trainer starts it once); its start-up time is
  printed on its own line.
- baseline: what AZR's executor does: `exec` of the program inside a process pool
  of one worker (concurrent.futures, the platform's default start method), the
  pool created afresh for each batch, where a batch is one program's two
  determinism runs (AZR creates a pool per call; one pool per program is the
  kinder reading for the baseline).

The two alternate over 10 chunks of the program list, so both meet the same
machine load (shared machines vary a lot over seconds); each total is the sum
of its chunks.

Prints one line:
    RESULT executor_throughput ratio=<ours/baseline> ours=<programs/s> baseline=<programs/s>

Run:  .venv/bin/python benchmarks/bench_executor.py [--n 1000] [--workers 2] [--chunks 10]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from selftaught.executor import PythonExecutor, values_equal  # noqa: E402

ORDINARY = [
    ("def f(xs, k):\n    return sorted(x * k for x in xs if x % 2 == 0)", "{xs}, {k}"),
    ("def f(s):\n    out = []\n    for ch in s:\n        out.append(ch.upper() if ch in 'aeiou' else ch)\n"
     "    return ''.join(out)", "{s!r}"),
    ("def f(xs):\n    counts = {{}}\n    for x in xs:\n        counts[x % {m}] = counts.get(x % {m}, 0) + 1\n"
     "    return counts", "{xs}"),
    ("def f(n):\n    def fib(k):\n        a, b = 0, 1\n        for _ in range(k):\n            a, b = b, a + b\n"
     "        return a\n    return [fib(i) for i in range(n)]", "{n}"),
    ("from collections import Counter\n\ndef f(s):\n    return Counter(s).most_common({k})", "{s!r}"),
    ("import math\n\ndef f(xs):\n    return round(math.sqrt(sum(x * x for x in xs)), 6)", "{xs}"),
    ("def f(a, b):\n    return {{'sum': a + b, 'prod': a * b, 'pair': (a, b)}}", "{n}, {k}"),
    ("def f(words):\n    return {{w: len(w) for w in words}}", "{words}"),
    ("def f(n):\n    def rec(k):\n        return 1 if k <= 1 else k * rec(k - 1)\n    return rec(n)", "{n}"),
    ("class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n"
     "        self.items.append(x)\n\ndef f(xs):\n    s = Stack()\n    for x in xs:\n        s.push(x * {k})\n"
     "    return s.items[::-1]", "{xs}"),
    ("def f(m):\n    return [[m[j][i] for j in range(len(m))] for i in range(len(m[0]))]", "{matrix}"),
    ("def f(s, t):\n    return sorted(set(s) & set(t))", "{s!r}, {t!r}"),
]
SLOW = ("def f(n):\n    total = 0\n    for i in range(n):\n        total = (total + i * i) % 1000003\n"
        "    return total", "{big}")
FAILING = [
    ("def f(xs):\n    return xs[len(xs) + {k}]", "{xs}"),
    ("def f(a):\n    return a / (a - a)", "{n}"),
    ("def f(d):\n    return d['missing']", "{{'a': {k}}}"),
    ("def f(s):\n    return int(s)", "{s!r}"),
]


def make_programs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, program, inputs): ~90% ordinary, 2% slow (~5 ms each), 8% failing."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = rng.random()
        kind = "slow" if r < 0.02 else "failing" if r < 0.10 else "ordinary"
        template = SLOW if kind == "slow" else rng.choice(FAILING if kind == "failing" else ORDINARY)
        letters = "abcdefghij"
        fill = {
            "xs": [rng.randint(-50, 50) for _ in range(rng.randint(3, 12))],
            "k": rng.randint(1, 5), "m": rng.randint(2, 5), "n": rng.randint(2, 12),
            "s": "".join(rng.choice(letters) for _ in range(rng.randint(3, 15))),
            "t": "".join(rng.choice(letters) for _ in range(rng.randint(3, 15))),
            "words": ["".join(rng.choice(letters) for _ in range(rng.randint(1, 6))) for _ in range(4)],
            "matrix": [[rng.randint(0, 9) for _ in range(3)] for _ in range(3)],
            "big": rng.randint(60_000, 100_000),
        }
        program, inputs = template
        out.append((kind, program.format(**fill), inputs.format(**fill)))
    return out


# ---------------------------------------------------------------- baseline

def _baseline_exec(program: str, inputs: str) -> str:
    namespace: dict = {}
    exec(program, namespace)  # what AZR does: exec in the pool's worker process
    return repr(eval(f"f({inputs})", namespace))


def baseline_validate(program: str, inputs: str, timeout_s: float) -> tuple[bool, str | None]:
    with cf.ProcessPoolExecutor(max_workers=1) as pool:  # afresh for each batch
        try:
            first = pool.submit(_baseline_exec, program, inputs).result(timeout=timeout_s)
            second = pool.submit(_baseline_exec, program, inputs).result(timeout=timeout_s)
        except Exception:
            return False, None
    return first == second, first


# ---------------------------------------------------------------- CPU time

def _tree_cpu_s(roots: list[int]) -> float:
    """CPU seconds (user + system, including reaped children) of `roots` and all
    their live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += sum(int(x) for x in stats[pid][11:15])
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def _cpu_now(ex) -> tuple[float, float, float]:
    """(this process, its reaped children, the executor's processes) CPU seconds."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system, _tree_cpu_s(ex.process_ids())


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--chunks", type=int, default=10, help="alternate ours and the baseline this many times")
    args = ap.parse_args()
    programs = make_programs(args.n)
    pairs = [(p, i) for _, p, i in programs]

    t0 = time.perf_counter()
    ex = PythonExecutor(workers=args.workers, timeout_s=args.timeout, memory_mb=512)
    startup = time.perf_counter() - t0
    ex.validate_many(pairs[:20])  # warm the workers, as a running trainer has them
    ours, base, ours_s, base_s = [], [], 0.0, 0.0
    ours_cpu = base_cpu = 0.0  # CPU seconds, all processes of each side (less sensitive to load)
    step = max(1, len(pairs) // args.chunks)
    for start in range(0, len(pairs), step):
        chunk = pairs[start:start + step]
        c0, t0 = _cpu_now(ex), time.perf_counter()
        ours += ex.validate_many(chunk)
        ours_s += time.perf_counter() - t0
        c1 = _cpu_now(ex)
        ours_cpu += (c1[0] - c0[0]) + (c1[2] - c0[2])
        t0 = time.perf_counter()
        base += [baseline_validate(p, i, args.timeout) for p, i in chunk]
        base_s += time.perf_counter() - t0
        c2 = _cpu_now(ex)
        base_cpu += (c2[0] - c1[0]) + (c2[1] - c1[1])
    ex.close()

    agree = sum((v.ok == b[0]) and (not v.ok or values_equal(v.output, b[1])) for v, b in zip(ours, base))
    kinds = {k: sum(1 for kk, _, _ in programs if kk == k) for k in ("ordinary", "slow", "failing")}
    print(f"programs={len(pairs)} {kinds} valid_ours={sum(v.ok for v in ours)} "
          f"valid_baseline={sum(b[0] for b in base)} agree={agree} "
          f"ours_s={ours_s:.2f} baseline_s={base_s:.2f} startup_s={startup:.2f} "
          f"containment={ex.containment['filesystem']},{'+'.join(ex.containment['namespaces']) or 'none'}")
    n = len(pairs)
    print(f"cpu_ms_per_program ours={ours_cpu / n * 1e3:.2f} baseline={base_cpu / n * 1e3:.2f} "
          f"cpu_ratio={base_cpu / max(ours_cpu, 1e-9):.1f} (CPU time of every process of each side; "
          f"load average {os.getloadavg()[0]:.1f})")
    ours_rate, base_rate = n / ours_s, n / base_s
    print(f"RESULT executor_throughput ratio={ours_rate / base_rate:.1f} "
          f"ours={ours_rate:.0f} baseline={base_rate:.0f}")


if __name__ == "__main__":
    main()
