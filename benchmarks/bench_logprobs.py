"""Fused log-probs + self-certainty vs the straightforward path, at Qwen2.5-1.5B sizes, on CPU,
and the chunked op's memory on bf16 logits; all at the chunk size users get by default.

    python benchmarks/bench_logprobs.py                      # hidden 1536, V 151,936, T 4096, fp32
    python benchmarks/bench_logprobs.py --tokens 512         # a quick look

Default chunk: the library's (`ops.chunk_rows`): the chunked op on logits takes the byte
budget (`ops.DEFAULT_CHUNK_BYTES` = 64 MiB of fp32 logits, 110 rows at V = 151,936); the
fused path at least H / 4 rows (a quarter of the fp32 weight gradient, 384 rows at
H = 1536); `--chunk-size N` measures N rows for both instead.

Chunked op (`ops.token_logprobs_and_self_certainty`) on bf16 logits [1, 2048, V]:
the forward (the trainer's no-grad scoring pass) at the default chunk and at the
old fixed default of 2048 rows; target: peak growth <= the input's own size. Its
forward + backward is printed too, less the [1, 2048, V] logits gradient that any
path must produce (it is the input's size by definition).

Both paths compute per-token log p(y_t) and self-certainty at τ = 0.9 from the
final hidden states h [1, T, H] and the output weight W [V, H], then backpropagate
a random upstream gradient into h and W:

  straightforward  logits = h Wᵀ; logp_all = log_softmax(logits / τ); gather;
                   sc = −mean(logp_all) − log V (no grad); autograd does the rest
  fused            selftaught.fused_logprobs: row chunks of `--chunk-size`, one
                   [C, V] fp32 buffer, backward recomputes each chunk's logits

Memory: each variant runs in a fresh child process. Peak memory = the child's peak
resident set size (VmHWM in /proc/self/status, which sees every allocation, torch's
included — tracemalloc does not), reset just before the measured work (writing 5 to
/proc/self/clear_refs, so building the inputs cannot hide a lower peak), minus
its resident size at that moment, i.e. after the inputs exist. It includes the gradients (∂h, and
∂W, which alone is 0.87 GiB in fp32 and is produced by both paths; a second
RESULT line subtracts it from both, leaving the memory the computation itself needs).
Time: wall time of forward + backward in the child; variants alternate for
`--rounds` rounds and the median is used (the machine may be shared).
Values: the first round of each variant saves logp, sc, ∂h, ∂W; the parent
compares them: max |fused − straightforward| ≤ 1e-5 · max(1, max |straightforward|).

Prints `RESULT <name> ratio=<x> ...` lines (fused / straightforward; lower is better).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPERATURE = 0.9


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # Linux >= 4.0: VmHWM := VmRSS
        f.write("5")


def straightforward(hidden, weight, targets, temperature):
    import torch

    logits = hidden @ weight.t()  # [1, T, V] fp32
    logp_all = torch.log_softmax(logits / temperature, dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        sc = -logp_all.mean(-1) - math.log(weight.shape[0])
    return logp, sc


def fused(hidden, weight, targets, temperature, chunk_size):
    from selftaught.fused_logprobs import fused_token_logprobs_and_self_certainty

    return fused_token_logprobs_and_self_certainty(hidden, weight, targets, None, temperature, chunk_size)


def logits_then_chunked_ops(hidden, weight, targets, temperature, chunk_size):
    """The project's previous path: the model's full logits, then the chunked ops (for reference)."""
    from selftaught.ops import token_logprobs_and_self_certainty

    return token_logprobs_and_self_certainty(hidden @ weight.t(), targets, None, temperature, chunk_size)


def chunked_child(args) -> None:
    """The chunked op on bf16 logits [1, T, V]: forward only, or forward + backward."""
    import torch

    from selftaught.ops import chunk_rows, token_logprobs_and_self_certainty

    torch.manual_seed(0)
    T, V = args.chunked_tokens, args.vocab
    backward = args.child == "chunked_fwd_bwd"
    logits = torch.randn(1, T, V, dtype=torch.bfloat16).requires_grad_(backward)  # no fp32 temporary
    targets = torch.randint(0, V, (1, T))
    token_logprobs_and_self_certainty(logits.detach()[:, :4], targets[:, :4], None, TEMPERATURE, 1)  # warm-up
    before = _rss_bytes()
    _reset_peak()
    start = time.perf_counter()
    with torch.set_grad_enabled(backward):
        logp, sc = token_logprobs_and_self_certainty(logits, targets, None, TEMPERATURE, args.chunk_size)
        if backward:
            logp.sum().backward()
    seconds = time.perf_counter() - start
    peak = _peak_rss_bytes()
    print(json.dumps({"variant": args.child, "seconds": seconds, "peak_delta": peak - before,
                      "input_bytes": logits.numel() * logits.element_size(),
                      "grad_bytes": 0 if logits.grad is None else logits.grad.numel() * logits.grad.element_size(),
                      "rows": chunk_rows(V, args.chunk_size)}))


def child(args) -> None:
    import torch

    if args.child.startswith("chunked_"):
        chunked_child(args)
        return
    torch.manual_seed(0)
    H, V, T = args.hidden, args.vocab, args.tokens
    # In place (mul_), so building the inputs never needs a second W-sized tensor.
    weight = torch.randn(V, H).mul_(0.02).requires_grad_(True)
    hidden = torch.randn(1, T, H).requires_grad_(True)
    targets = torch.randint(0, V, (1, T))
    upstream = torch.randn(1, T)
    run = {"straightforward": lambda: straightforward(hidden, weight, targets, TEMPERATURE),
           "fused": lambda: fused(hidden, weight, targets, TEMPERATURE, args.chunk_size),
           "logits+chunked_ops": lambda: logits_then_chunked_ops(hidden, weight, targets, TEMPERATURE,
                                                                 args.chunk_size)}[args.child]
    # Warm up MKL / OpenMP on a small case so start-up costs are not timed.
    small = torch.randn(64, H) @ weight.detach()[:4096].t()
    del small
    before = _rss_bytes()
    _reset_peak()
    start = time.perf_counter()
    logp, sc = run()
    (logp * upstream).sum().backward()
    seconds = time.perf_counter() - start
    peak = _peak_rss_bytes()
    if args.save:
        torch.save({"logp": logp.detach(), "sc": sc, "grad_h": hidden.grad, "grad_w": weight.grad}, args.save)
    print(json.dumps({"variant": args.child, "seconds": seconds, "peak_delta": peak - before,
                      "threads": torch.get_num_threads()}))


def run_child(variant: str, args, save: str | None, chunk_size: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--hidden", str(args.hidden), "--vocab", str(args.vocab),
           "--tokens", str(args.tokens), "--chunked-tokens", str(args.chunked_tokens)]
    chunk_size = args.chunk_size if chunk_size is None else chunk_size
    if chunk_size is not None:
        cmd += ["--chunk-size", str(chunk_size)]
    if save:
        cmd += ["--save", save]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {variant:20s} {result['seconds']:7.2f} s   peak +{result['peak_delta'] / 2**30:6.2f} GiB", flush=True)
    return result


def compare(fused_file: str, straight_file: str) -> dict:
    import torch

    a, b = torch.load(fused_file), torch.load(straight_file)
    worst = {}
    for key in ("logp", "sc", "grad_h", "grad_w"):
        diff = float((a[key] - b[key]).abs().max())
        scale = max(1.0, float(b[key].abs().max()))
        worst[key] = (diff, diff / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="rows per [C, V] chunk (default: the library's, from its byte budget)")
    parser.add_argument("--chunked-tokens", type=int, default=2048, help="T of the chunked op's bf16 logits")
    parser.add_argument("--old-chunk-size", type=int, default=2048,
                        help="the chunked op also at this many rows (the old fixed default), for comparison")
    parser.add_argument("--skip-fused", action="store_true", help="only the chunked op's memory")
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs per variant (median is used)")
    parser.add_argument("--with-logits-path", action="store_true",
                        help="also time the project's previous path (full logits, then chunked ops)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from selftaught.ops import DEFAULT_CHUNK_BYTES, chunk_rows

    rows = chunk_rows(args.vocab, args.chunk_size)
    fused_rows = chunk_rows(args.vocab, args.chunk_size, hidden_size=args.hidden)
    print(f"chunk: {rows} rows on logits, {fused_rows} fused "
          f"({'explicit' if args.chunk_size else f'{DEFAULT_CHUNK_BYTES >> 20} MiB fp32 budget, fused >= H / 4'}), "
          f"V {args.vocab}, H {args.hidden}, {os.cpu_count()} CPUs", flush=True)
    print(f"chunked op on bf16 logits [1, {args.chunked_tokens}, {args.vocab}]:", flush=True)
    forward = run_child("chunked_forward", args, None)
    old = run_child("chunked_forward", args, None, chunk_size=args.old_chunk_size)
    both = run_child("chunked_fwd_bwd", args, None)
    size = forward["input_bytes"]
    print(f"RESULT chunked_op_forward_peak_vs_input ratio={forward['peak_delta'] / size:.3f} "
          f"peak_mib={forward['peak_delta'] / 2**20:.0f} input_mib={size / 2**20:.0f} rows={forward['rows']} "
          f"target<=1 met={forward['peak_delta'] <= size}")
    print(f"RESULT chunked_op_forward_peak_default_vs_{args.old_chunk_size}_rows "
          f"ratio={forward['peak_delta'] / old['peak_delta']:.3f} default_mib={forward['peak_delta'] / 2**20:.0f} "
          f"rows{args.old_chunk_size}_mib={old['peak_delta'] / 2**20:.0f} "
          f"rows{args.old_chunk_size}_vs_input={old['peak_delta'] / size:.3f}")
    extra = both["peak_delta"] - both["grad_bytes"]
    print(f"RESULT chunked_op_fwd_bwd_peak_excl_logits_grad_vs_input ratio={extra / size:.3f} "
          f"peak_mib={both['peak_delta'] / 2**20:.0f} logits_grad_mib={both['grad_bytes'] / 2**20:.0f} "
          f"time_s={both['seconds']:.2f}")
    if args.skip_fused:
        return

    print(f"log-probs + self-certainty, fwd+bwd: hidden {args.hidden}, V {args.vocab}, T {args.tokens}, fp32, "
          f"fused chunk {fused_rows} rows", flush=True)
    variants = ["straightforward", "fused"] + (["logits+chunked_ops"] if args.with_logits_path else [])
    results: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        files = {v: str(Path(tmp) / f"{v}.pt") for v in ("straightforward", "fused")}
        for r in range(args.rounds):
            for v in variants:
                results[v].append(run_child(v, args, files.get(v) if r == 0 else None))
        worst = compare(files["fused"], files["straightforward"])

    def median(v, key):
        return statistics.median(x[key] for x in results[v])

    base_mem, base_s = median("straightforward", "peak_delta"), median("straightforward", "seconds")
    mem, s = median("fused", "peak_delta"), median("fused", "seconds")
    print(f"RESULT logprobs_peak_memory ratio={mem / base_mem:.3f} fused_gib={mem / 2**30:.2f} "
          f"straightforward_gib={base_mem / 2**30:.2f} target<=0.125 met={mem / base_mem <= 0.125}")
    grad_w = args.vocab * args.hidden * 4  # ∂W in fp32: produced by both paths, the same bytes
    excl = (mem - grad_w) / (base_mem - grad_w)
    print(f"RESULT logprobs_peak_memory_excl_weight_grad ratio={excl:.3f} "
          f"fused_gib={(mem - grad_w) / 2**30:.2f} straightforward_gib={(base_mem - grad_w) / 2**30:.2f} "
          f"weight_grad_gib={grad_w / 2**30:.2f} target<=0.125 met={excl <= 0.125}")
    print(f"RESULT logprobs_time ratio={s / base_s:.3f} fused_s={s:.2f} straightforward_s={base_s:.2f} "
          f"target<=1.2 met={s / base_s <= 1.2}")
    max_rel = max(rel for _, rel in worst.values())
    detail = " ".join(f"{k}_maxdiff={d:.2e}" for k, (d, _) in worst.items())
    print(f"RESULT logprobs_max_rel_diff ratio={max_rel:.2e} {detail} target<=1e-5 met={max_rel <= 1e-5}")
    if args.with_logits_path:
        m2, s2 = median("logits+chunked_ops", "peak_delta"), median("logits+chunked_ops", "seconds")
        print(f"RESULT logits_path_vs_straightforward mem_ratio={m2 / base_mem:.3f} "
              f"time_ratio={s2 / base_s:.3f} gib={m2 / 2**30:.2f} s={s2:.2f}")


if __name__ == "__main__":
    main()
