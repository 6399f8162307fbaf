"""Scoring with every token-level reward source on vs self-certainty alone, Qwen2.5-1.5B sizes, CPU.

    python benchmarks/bench_scoring_sources.py                  # hidden 1536, V 151,936, [2, 1024] tokens, fp32
    python benchmarks/bench_scoring_sources.py --tokens 256     # a quick look

The trainer's no-grad scoring pass (`scoring.score_rollout`) gets the lm_head input
h [B, T, H] from the model's one forward and computes every per-token quantity from
it with `fused_token_statistics`, one [C, V] fp32 chunk at a time. This script times
that computation (the forward itself is the same in both variants, and not repeated:
see tests/rewards/test_label_free.py::test_all_token_sources_come_from_one_forward_per_micro_batch):

  self_certainty   fused_token_statistics(entropy=False) → π_old log-probs, sc_t;
                   the self_certainty reward (mean sc_t per completion)
  all_sources      fused_token_statistics(entropy=True) → also H(p_t); the
                   self_certainty, token_entropy and trajectory_logprob rewards
  second_pass      (context) what a separate entropy pass would cost: the
                   self_certainty variant, then a second fused pass for H

A fake h and W (random, seeded) stand in for the model; 1/8 of the rows are padding.
Each variant runs in a fresh child process; peak memory = the child's peak RSS
(getrusage) minus its RSS once the inputs exist; time = the child's CPU time
(process_time; one thread, so it is the work done, whatever else the shared machine
runs — wall time is printed too), median over `--rounds` alternating rounds. The
parent checks the variants' common outputs agree.

Prints `RESULT scoring_all_sources_vs_sc time_ratio=... mem_ratio=...` (lower is better; 1.0 = free).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import peak_rss_bytes, rss_bytes  # noqa: E402  (one definition of the probes)

TEMPERATURE = 0.9
VARIANTS = ("self_certainty", "all_sources", "second_pass")


def child(args) -> None:
    import torch

    from selftaught.fused_logprobs import fused_token_statistics
    from selftaught.ops import sequence_mean
    from selftaught.rewards import Scores, SelfCertaintyReward, TokenEntropyReward, TrajectoryLogprobReward

    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    B, T, H, V = args.batch, args.tokens, args.hidden, args.vocab
    weight = torch.randn(V, H).mul_(0.02).to(dtype)
    hidden = torch.randn(B, T, H).to(dtype)
    targets = torch.randint(0, V, (B, T))
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[:, T - T // 8:] = False  # padding after an early EOS
    small = torch.randn(64, H).to(dtype) @ weight[:4096].t()  # warm up the BLAS threads
    del small
    before = rss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.no_grad():
        entropy = args.child == "all_sources"
        stats = fused_token_statistics(hidden, weight, targets, mask, TEMPERATURE, args.chunk_size, entropy=entropy)
        token_entropy = stats.entropy
        if args.child == "second_pass":
            token_entropy = fused_token_statistics(hidden, weight, targets, mask, TEMPERATURE, args.chunk_size,
                                                   entropy=True).entropy
        scores = Scores(old_logprobs=stats.logprobs, self_certainty=sequence_mean(stats.self_certainty, mask),
                        token_entropy=token_entropy, completion_mask=mask)
        rewards = {"self_certainty": SelfCertaintyReward()([""] * B, {}, scores)}
        if args.child != "self_certainty":
            rewards["token_entropy"] = TokenEntropyReward()([""] * B, {}, scores)
            rewards["trajectory_logprob"] = TrajectoryLogprobReward()([""] * B, {}, scores)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = peak_rss_bytes()
    if args.save:
        torch.save({"logp": stats.logprobs, "rewards": rewards}, args.save)
    print(json.dumps({"variant": args.child, "seconds": cpu, "wall_seconds": seconds, "peak_delta": peak - before,
                      "threads": torch.get_num_threads()}))


def run_child(variant: str, args, save: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--hidden", str(args.hidden), "--vocab", str(args.vocab),
           "--tokens", str(args.tokens), "--batch", str(args.batch), *(["--chunk-size", str(args.chunk_size)] if args.chunk_size else []),
           "--dtype", args.dtype]
    if save:
        cmd += ["--save", save]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {variant:15s} {result['seconds']:7.2f} s CPU ({result['wall_seconds']:.2f} s wall, "
          f"{result['threads']} thread(s))   peak +{result['peak_delta'] / 2**30:6.2f} GiB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="rows per [C, V] chunk (default: the library's, from its byte budget)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import torch

    print(f"no-grad scoring from h: hidden {args.hidden}, V {args.vocab}, [{args.batch}, {args.tokens}] tokens, "
          f"{args.dtype}, chunk {args.chunk_size or 'default'} rows, {os.cpu_count()} CPUs", flush=True)
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        files = {v: str(Path(tmp) / f"{v}.pt") for v in VARIANTS}
        for r in range(args.rounds):
            for v in VARIANTS:
                results[v].append(run_child(v, args, files[v] if r == 0 else None))
        saved = {v: torch.load(files[v]) for v in VARIANTS}
    for v in ("all_sources", "second_pass"):  # the shared outputs are the same numbers
        assert torch.equal(saved[v]["logp"], saved["self_certainty"]["logp"])
        assert torch.equal(saved[v]["rewards"]["self_certainty"], saved["self_certainty"]["rewards"]["self_certainty"])
    torch.testing.assert_close(saved["all_sources"]["rewards"]["token_entropy"],
                               saved["second_pass"]["rewards"]["token_entropy"])

    def median(v, key):
        return statistics.median(x[key] for x in results[v])

    base_s, base_m = median("self_certainty", "seconds"), median("self_certainty", "peak_delta")
    print(f"\n{'variant':15s} {'CPU s':>8s} {'× sc':>6s} {'peak GiB':>9s} {'× sc':>6s}")
    for v in VARIANTS:
        s, m = median(v, "seconds"), median(v, "peak_delta")
        print(f"{v:15s} {s:8.2f} {s / base_s:6.2f} {m / 2**30:9.2f} {m / base_m:6.2f}")
    s, m = median("all_sources", "seconds"), median("all_sources", "peak_delta")
    s2, m2 = median("second_pass", "seconds"), median("second_pass", "peak_delta")
    print(f"RESULT scoring_all_sources_vs_sc time_ratio={s / base_s:.3f} mem_ratio={m / base_m:.3f} "
          f"all_s={s:.2f} sc_s={base_s:.2f} all_gib={m / 2**30:.2f} sc_gib={base_m / 2**30:.2f} forwards=1")
    print(f"RESULT scoring_second_pass_vs_sc time_ratio={s2 / base_s:.3f} mem_ratio={m2 / base_m:.3f}")


if __name__ == "__main__":
    main()
