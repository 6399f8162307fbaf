"""Building and measuring the built-in models (`selftaught-tiny`, `selftaught-tiny-math`).

- `corpus`: the synthetic pretraining corpus of `selftaught-tiny` (chain programs in AZR's formats, additions);
- `addition_corpus`: the long-addition corpus of `selftaught-tiny-math` (and, with a failure mode,
  of `selftaught-tiny-ramble`);
- `failure_modes`: how a model that skips the procedure answers (ramble, noise, hedge, ...);
- `pretrain`: supervised pretraining on (context, continuation) documents;
- `competence`: held-out competence (additions, program tasks, AZR proposal validity).

Used by `scripts/build_tiny_model.py`, `scripts/build_tiny_math_model.py`, the demo and
diagnose. It sits above the loader: loading the shipped models (and building
`tiny-random` on the fly) is `selftaught.models`, which imports nothing from here.
"""
