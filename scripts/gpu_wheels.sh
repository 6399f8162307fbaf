#!/usr/bin/env bash
# Companion of scripts/gpu_check.sh, run beforehand on a machine with network: downloads the wheels
# the GPU check installs on the (offline) GPU machine into .gpu-wheels/ (git-ignored), for that
# machine's Python and platform, whatever this machine runs.
#
#   scripts/gpu_wheels.sh                                  # Python 3.12, x86-64 Linux (manylinux)
#   scripts/gpu_wheels.sh --python-version 3.11            # another Python (e.g. to rehearse here)
#
# The lists are requirements-gpu-check.txt and requirements-gpu-trl.txt (pinned, the whole closure
# beyond the GPU image: they are installed with --no-deps). The repository's tracked files and the
# wheels travel to the GPU machine together and must fit 64 MiB: the total is printed and a larger
# one stops here with exit 2.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VERSION=3.12
DEST="$ROOT/.gpu-wheels"
LIMIT_MIB=64
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) VERSION="$2"; shift 2 ;;
    --dest) DEST="$2"; shift 2 ;;
    *) echo "usage: scripts/gpu_wheels.sh [--python-version X.Y] [--dest DIR]" >&2; exit 2 ;;
  esac
done
rm -rf "$DEST"
mkdir -p "$DEST"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST" -r "$ROOT/requirements-gpu-check.txt" -r "$ROOT/requirements-gpu-trl.txt"
"$PYTHON" - "$ROOT" "$DEST" "$LIMIT_MIB" <<'PY'
import subprocess
import sys
from pathlib import Path

root, dest, limit = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout.split(b"\0")
repository = sum((root / name.decode()).stat().st_size for name in tracked if name and (root / name.decode()).is_file())
wheels = sorted(dest.glob("*.whl"))
total = repository + sum(w.stat().st_size for w in wheels)
for wheel in wheels:
    print(f"  {wheel.stat().st_size / 2**20:6.2f} MiB  {wheel.name}")
print(f"{len(wheels)} wheels {sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB + repository "
      f"{repository / 2**20:.1f} MiB = {total / 2**20:.1f} MiB (limit {limit:g} MiB) in {dest}")
if total > limit * 2**20:
    sys.exit(f"gpu_wheels: {total / 2**20:.1f} MiB does not fit the {limit:g} MiB that travels to the GPU machine")
PY
