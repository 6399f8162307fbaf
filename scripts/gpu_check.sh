#!/usr/bin/env bash
# The GPU check (docs/gpu.md): one command for a CUDA machine, figures into OUT_DIR.
#
#   scripts/gpu_check.sh OUT_DIR              # on the GPU machine: ≤ 9 minutes in all
#   scripts/gpu_check.sh OUT_DIR --dry-run    # anywhere: the same parts, tiny shapes, on the CPU (CI)
#
# The GPU machine is offline and comes with Python 3.12, torch, transformers, accelerate, peft and
# tensorboard. What else the check needs comes from .gpu-wheels/, which scripts/gpu_wheels.sh fills
# on a machine with network beforehand: installed here with --no-deps into OUT_DIR/site (the image
# itself is left as it is) and put on PYTHONPATH with the repository. A dry run uses the current
# environment as it is (`PYTHON=.venv/bin/python`, as `make gpu-check-dry-run` does), unless
# GPU_WHEELS names a wheel directory: then it installs from there first, exactly as on the GPU
# machine (a rehearsal of that machine's set-up in an environment holding only its image's packages).
# Writes OUT_DIR/gpu_check.json, OUT_DIR/gpu_check.md and OUT_DIR/logs/; exit 0 when no part failed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  echo "usage: scripts/gpu_check.sh OUT_DIR [--dry-run] [--budget-s SECONDS]" >&2
  exit 2
fi
OUT="$1"
shift
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DRY=0
for arg in "$@"; do
  if [ "$arg" = "--dry-run" ]; then DRY=1; fi
done
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
if [ "$DRY" = 0 ] || [ -n "${GPU_WHEELS:-}" ]; then
  WHEELS="${GPU_WHEELS:-$ROOT/.gpu-wheels}"
  if [ ! -d "$WHEELS" ]; then
    echo "gpu_check: $WHEELS is missing: run scripts/gpu_wheels.sh on a machine with network first (docs/gpu.md)" >&2
    exit 2
  fi
  SITE="$OUT/site"
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-index --no-deps --find-links "$WHEELS" \
    --target "$SITE" -r "$ROOT/requirements-gpu-check.txt"
  # TRL's comparison is optional: its wheels may be missing, and pyarrow (not shipped) must come from the image.
  if ! "$PYTHON" -m pip install -q --disable-pip-version-check --no-index --no-deps --find-links "$WHEELS" \
      --target "$SITE" -r "$ROOT/requirements-gpu-trl.txt"; then
    echo "gpu_check: TRL's wheels did not install; its comparison will be reported skipped" >&2
  fi
  export PYTHONPATH="$ROOT:$SITE${PYTHONPATH#"$ROOT"}"
fi
if [ "$DRY" = 0 ]; then
  LIMIT="${GPU_CHECK_TIMEOUT_S:-530}"   # the parts budget themselves (500 s); this is the backstop
else
  LIMIT="${GPU_CHECK_TIMEOUT_S:-1500}"
fi
exec timeout --kill-after=15 "$LIMIT" "$PYTHON" "$ROOT/scripts/gpu_check.py" "$OUT" "$@"
