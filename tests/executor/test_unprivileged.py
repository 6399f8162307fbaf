"""The executor started by an ordinary user (not root): user-namespace containment.

Run as root, this test makes a private mount namespace where the interpreter is
visible to uid 65534, then runs a script as that user. The script's executor must
find a user namespace, and with it the same boundaries as under root.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from capabilities import unavailable

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from selftaught.executor import PythonExecutor
victim = subprocess.Popen(["sleep", "30"])  # same uid as the sandbox: only namespaces protect it
out = {"uid": os.getuid()}
with PythonExecutor(workers=1, timeout_s=2.0, audit_hook=False) as ex:
    out["containment"] = ex.containment
    run = lambda p, i="1": ex.run(p, i)
    out["add"] = run("def f(a, b):\n    return a + b", "1, 2").output
    out["passwd"] = run("def f(p):\n    return open(p).read()", "'/etc/passwd'").output
    out["fork"] = run("import os\ndef f(a):\n    return os.fork()").ok
    out["net"] = run("import socket\ndef f(a):\n    return socket.create_connection(('127.0.0.1', 22), timeout=1)").ok
    run("import os\ndef f(pid):\n    os.kill(pid, 9)", str(victim.pid))
    run("import os\ndef f(a):\n    os.kill(-1, 9)")
    run("import os\ndef f(a):\n    os.kill(os.getppid(), 9)")
    out["write_stdlib"] = run("import os\ndef f(a):\n    open(os.path.dirname(os.__file__) + '/x.py', 'w')").ok
    out["setuid"] = run("import os\ndef f(a):\n    os.setuid(1)\n    return os.getuid()").ok
    out["after"] = run("def f(a, b):\n    return a * b", "6, 7").output
    time.sleep(0.1)
    out["victim_alive"] = victim.poll() is None
victim.kill()
print(json.dumps(out))
'''


def test_unprivileged_user_gets_namespaces(tmp_path):
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")) or not os.path.isdir("/mnt"):
        unavailable("needs root (to become another user), unshare, setpriv and /mnt")
    prefix = Path(sys.base_prefix).resolve()
    python = Path(os.path.realpath(sys.executable)).relative_to(prefix) if \
        os.path.realpath(sys.executable).startswith(str(prefix)) else None
    if python is None:
        unavailable("the interpreter does not live under sys.base_prefix")
    script = Path("/dev/shm") / f"selftaught-unpriv-{os.getpid()}.py"
    script.write_text(SCRIPT)
    script.chmod(0o644)
    shell = (f"mount -t tmpfs none /mnt && mkdir /mnt/py && mount --bind {prefix} /mnt/py && "
             f"exec setpriv --reuid=65534 --regid=65534 --clear-groups /mnt/py/{python} -s {script} {ROOT}")
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True, timeout=120)
    finally:
        script.unlink()
    if proc.returncode != 0 and ("ModuleNotFoundError" in proc.stderr or "Permission denied" in proc.stderr):
        unavailable(f"the project is not readable by an ordinary user here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["uid"] == 65534
    c = out["containment"]
    if not c["user_namespace"]:
        unavailable(f"this kernel refuses unprivileged user namespaces: {c['notes']}")
    assert {"user", "net", "pid", "mount"} <= set(c["namespaces"]) and c["filesystem"] == "jail"
    assert out["add"] == "3" and out["after"] == "42"
    assert out["passwd"] is None          # no host filesystem
    assert out["fork"] is False           # RLIMIT_NPROC = 0 holds for an ordinary uid
    assert out["net"] is False            # no network
    assert out["write_stdlib"] is False   # the standard library is mounted read-only
    assert out["setuid"] is False         # capabilities dropped inside the user namespace
    assert out["victim_alive"] is True    # the same uid, yet out of reach (PID namespace)
