"""Containment: what model-written programs must not be able to do (docs/reference.md §5).

Every case runs a hostile program, asserts that its effect is contained, and then
asserts that the executor still serves. Each case runs twice: with the audit hook
(the default) and without it (audit_hook=False), where only the operating system
stands in the way. Targets are files, sockets and processes this test creates;
nothing real on the machine is touched even if containment failed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from capabilities import unavailable

from selftaught.executor import PythonExecutor

ADD = "def f(a, b):\n    return a + b"
SHORT = 0.5  # timeout for the cases that are meant to time out
HOME_SECRET = Path.home() / f".selftaught-test-secret-{uuid.uuid4().hex[:8]}"
PROJECT_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"


# ------------------------------------------------------------------ helpers

def process_tree(roots: list[int]) -> set[int]:
    """Host pids of `roots` and all their descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_serving(ex: PythonExecutor) -> None:
    r = ex.run(ADD, "1, 2")
    assert (r.ok, r.output) == (True, "3"), f"the executor stopped serving: {r}"
    # no process beyond zygote launcher, zygote and worker per worker slot
    assert len(process_tree(ex.process_ids())) <= 3 * ex.workers


@pytest.fixture(scope="module", params=["audit_hook", "os_only"])
def ex(request):
    executor = PythonExecutor(workers=2, timeout_s=2.0, memory_mb=256,
                              audit_hook=request.param == "audit_hook")
    executor.mode = request.param
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def home_secret():
    HOME_SECRET.write_text("top-secret-home")
    yield HOME_SECRET
    HOME_SECRET.unlink()


@pytest.fixture
def victim():
    """A process of the test's own that programs try to kill."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


# ------------------------------------------------------------------ filesystem

def test_read_etc_passwd(ex):
    r = ex.run("def f(p):\n    return open(p).read()", "'/etc/passwd'")
    assert not r.ok and "root:" not in str(r.output)
    assert_serving(ex)


def test_read_home_directory(ex, home_secret):
    r = ex.run("def f(p):\n    return open(p).read()", repr(str(home_secret)))
    assert not r.ok and "top-secret" not in str(r.output)
    r = ex.run("import os\ndef f(p):\n    return os.listdir(p)", repr(str(Path.home())))
    assert home_secret.name not in str(r.output)
    assert_serving(ex)


def test_read_project_tree(ex):
    r = ex.run("def f(p):\n    return open(p).read()", repr(str(PROJECT_FILE)))
    assert not r.ok and "selftaught" not in str(r.output)
    assert_serving(ex)


def test_relative_path_traversal(ex):
    r = ex.run("def f(p):\n    return open(p).read()", "'../../../../../../../../etc/passwd'")
    assert not r.ok and "root:" not in str(r.output)
    assert_serving(ex)


def test_symlink_out_of_scratch(ex):
    program = ("import os\ndef f(p):\n    try:\n        os.symlink(p, 'link')\n    except OSError:\n        pass\n"
               "    return open('link').read()")
    r = ex.run(program, "'/etc/passwd'")
    assert not r.ok and "root:" not in str(r.output)
    assert_serving(ex)


def test_listing_the_filesystem_shows_nothing_of_the_host(ex):
    r = ex.run("import os\ndef f(p):\n    return sorted(os.listdir(p))", "'/'")
    if r.ok:  # without the audit hook: the jail's root
        assert ex.containment["filesystem"] == "jail"
        assert not {"etc", "home", "usr", "work", "proc"} & set(eval(r.output))
    assert_serving(ex)


def test_write_outside_scratch(ex, tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("original")
    r = ex.run("def f(p):\n    with open(p, 'a') as fh:\n        fh.write('pwned')\n    return 1", repr(str(target)))
    assert not r.ok
    assert target.read_text() == "original"
    created = tmp_path / "created.txt"
    ex.run("def f(p):\n    open(p, 'w').write('x')\n    return 1", repr(str(created)))
    assert not created.exists()
    assert_serving(ex)


def test_fill_the_disk(ex):
    program = ("def f(n):\n    with open('big', 'wb') as fh:\n        for _ in range(n):\n"
               "            fh.write(b'x' * (1 << 20))\n    return n")
    r = ex.run(program, "200")  # 200 MB: over the file size limit and the jail's size
    assert not r.ok
    assert_serving(ex)


def test_files_do_not_survive_the_run(ex):
    assert ex.run("def f(a):\n    open('note.txt', 'w').write('x')\n    return a", "1").ok
    for _ in range(4):  # whichever worker serves it
        r = ex.run("import os\ndef f(a):\n    return sorted(os.listdir('.'))", "1")
        assert (r.ok, r.output) == (True, "[]")
    assert_serving(ex)


# ------------------------------------------------------------------ network

def test_tcp_connect_to_a_local_listener(ex):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.3)
        program = ("import socket\ndef f(port):\n    s = socket.create_connection(('127.0.0.1', port), timeout=1)\n"
                   "    s.sendall(b'exfiltrated')\n    return 1")
        r = ex.run(program, str(server.getsockname()[1]))
        assert not r.ok
        with pytest.raises(socket.timeout):
            server.accept()
    assert_serving(ex)


def test_udp_send(ex):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.3)
        program = ("import socket\ndef f(port):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   "    s.sendto(b'exfiltrated', ('127.0.0.1', port))\n    return 1")
        ex.run(program, str(sink.getsockname()[1]))
        with pytest.raises(socket.timeout):
            sink.recvfrom(100)
    assert_serving(ex)


def test_abstract_unix_socket(ex):
    name = f"\0selftaught-test-{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(name)
        server.listen(1)
        server.settimeout(0.3)
        program = ("import socket\ndef f(name):\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(name)\n"
                   "    return 1")
        r = ex.run(program, repr(name))
        assert not r.ok
        with pytest.raises(socket.timeout):
            server.accept()
    assert_serving(ex)


def test_name_resolution(ex):
    r = ex.run("import socket\ndef f(h):\n    return socket.gethostbyname(h)", "'localhost'")
    assert not r.ok
    assert_serving(ex)


# ------------------------------------------------------------------ processes

@pytest.mark.parametrize("program", [
    "import os\ndef f(p):\n    return os.system('touch ' + p)",
    "import subprocess\ndef f(p):\n    return subprocess.run(['touch', p]).returncode",
    "import os\ndef f(p):\n    return os.posix_spawn('/usr/bin/touch', ['touch', p], {})",
    "import os\ndef f(p):\n    return os.execv('/usr/bin/touch', ['touch', p])",
    "import pty\ndef f(p):\n    return pty.spawn(['touch', p])",
    "import multiprocessing\ndef f(p):\n    q = multiprocessing.Process(target=print)\n    q.start()\n    return 1",
], ids=["os.system", "subprocess", "posix_spawn", "execv", "pty", "multiprocessing"])
def test_start_processes(ex, tmp_path, program):
    marker = tmp_path / "pwned"
    r = ex.run(program, repr(str(marker)))
    assert not r.ok or r.output == "32512"  # os.system reports a shell that could not start
    time.sleep(0.05)
    assert not marker.exists()
    assert_serving(ex)


def test_fork(ex):
    program = ("import os\ndef f(a):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
               "    os.waitpid(pid, 0)\n    return pid")
    r = ex.run(program, "1")
    assert not r.ok
    assert_serving(ex)


def test_fork_bomb_is_bounded(ex):
    # Bounded by construction: at most 30 children, each sleeping, never forking on.
    program = ("import os, time\ndef f(n):\n    made = 0\n    for _ in range(n):\n        try:\n"
               "            pid = os.fork()\n        except OSError:\n            continue\n        if pid == 0:\n"
               "            time.sleep(30)\n            os._exit(0)\n        made += 1\n    return made")
    before = process_tree(ex.process_ids())
    r = ex.run(program, "30")
    assert not r.ok or r.output == "0"
    assert len(process_tree(ex.process_ids())) <= len(before) + 1
    assert_serving(ex)


def test_threads_cannot_be_left_running(ex):
    program = ("import threading, time\ndef f(a):\n    threading.Thread(target=time.sleep, args=(30,)).start()\n"
               "    return threading.active_count()")
    r = ex.run(program, "1")
    assert not r.ok  # RLIMIT_NPROC = 0 covers threads too
    assert_serving(ex)


# ------------------------------------------------------------------ signals

def test_signal_the_parent(ex):
    r = ex.run("import os, signal\ndef f(a):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return os.getppid()", "1")
    assert_serving(ex)
    assert all(alive(pid) for pid in ex.process_ids())


def test_signal_another_process(ex, victim):
    r = ex.run("import os, signal\ndef f(pid):\n    os.kill(pid, signal.SIGKILL)\n    return 1", str(victim.pid))
    assert not r.ok
    time.sleep(0.05)
    assert victim.poll() is None
    assert_serving(ex)


def test_signal_every_process(ex, victim):
    if ex.containment["pid_namespace"] is False and ex.mode == "os_only":
        unavailable("without a PID namespace only the audit hook refuses kill(-1)")
    r = ex.run("import os, signal\ndef f(a):\n    os.kill(-1, signal.SIGKILL)\n    return 1", "1")
    time.sleep(0.05)
    assert victim.poll() is None and alive(os.getpid())
    assert_serving(ex)


def test_kill_own_process_group(ex):
    r = ex.run("import os, signal\ndef f(a):\n    os.killpg(0, signal.SIGKILL)\n    return 1", "1")
    assert not r.ok
    assert_serving(ex)


# ------------------------------------------------------------------ resources

def test_unbounded_memory(ex):
    r = ex.run("def f(a):\n    xs = []\n    while True:\n        xs.append(' ' * (1 << 20))", "1")
    assert (r.ok, r.error) == (False, "memory")
    assert_serving(ex)


def test_one_huge_allocation(ex):
    r = ex.run("def f(a):\n    return len(bytearray(a))", str(1 << 40))
    assert (r.ok, r.error) == (False, "memory")
    assert_serving(ex)


def test_spin_forever(ex):
    t0 = time.monotonic()
    r = ex.run("def f(a):\n    while True:\n        a += 1", "1", timeout_s=SHORT)
    assert (r.ok, r.error) == (False, "timeout")
    assert time.monotonic() - t0 < SHORT + 2
    assert_serving(ex)


def test_sleep_past_the_timeout(ex):
    r = ex.run("import time\ndef f(a):\n    time.sleep(60)\n    return a", "1", timeout_s=SHORT)
    assert (r.ok, r.error) == (False, "timeout")
    assert_serving(ex)


def test_recursion_without_bound(ex):
    r = ex.run("def f(a):\n    return f(a + 1)", "1")
    assert (r.ok, r.error) == (False, "error: RecursionError")
    assert_serving(ex)


def test_recursion_with_the_limit_lifted(ex):
    program = "import sys\ndef f(a):\n    sys.setrecursionlimit(10**7)\n    def down(n):\n        return down(n + 1)\n    return down(0)"
    r = ex.run(program, "1", timeout_s=1.0)
    assert not r.ok  # memory, a crash or the timeout: the worker dies, the executor does not
    r = ex.run("import sys\ndef f(a):\n    return sys.getrecursionlimit()", "1")
    assert r.output == "1000"
    assert_serving(ex)


def test_print_gigabytes(ex):
    r = ex.run("def f(n):\n    for _ in range(n):\n        print('x' * (1 << 20))\n    return n", "3000",
               timeout_s=10)
    assert len(r.stdout) <= 10_000
    r = ex.run("import os\ndef f(n):\n    return os.write(1, b'x' * n)", str(1 << 27))
    assert len(r.stdout) <= 10_000
    assert_serving(ex)


@pytest.mark.parametrize("program", [
    "def f(a):\n    return input()",
    "import sys\ndef f(a):\n    return sys.stdin.read()",
    "import os\ndef f(a):\n    return os.read(0, 10)",
    "import sys\ndef f(a):\n    return sys.__stdin__.read()",
], ids=["input", "sys.stdin", "fd0", "__stdin__"])
def test_block_on_stdin(ex, program):
    r = ex.run(program, "1", timeout_s=SHORT)
    assert r.error != "timeout"  # end of file at once, never a wait
    assert_serving(ex)


# ------------------------------------------------------------------ import tricks

@pytest.mark.parametrize("program", [
    "def f(p):\n    return __import__('os').system('touch ' + p)",
    "import importlib\ndef f(p):\n    return importlib.import_module('subprocess').call(['touch', p])",
    "def f(p):\n    return getattr(__builtins__, '__import__')('os').system('touch ' + p)",
    "def f(p):\n    b = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)\n"
    "    return b['__import__']('os').system('touch ' + p)",
    "def f(p):\n    for c in ().__class__.__mro__[1].__subclasses__():\n        if c.__name__ == '_wrap_close':\n"
    "            return c.__init__.__globals__['system']('touch ' + p)\n    return 'not found'",
    "import ctypes\ndef f(p):\n    return ctypes.CDLL(None).system(('touch ' + p).encode())",
], ids=["__import__", "importlib", "getattr-builtins", "builtins-dict", "subclasses", "ctypes"])
def test_import_tricks(ex, tmp_path, program):
    marker = tmp_path / "pwned"
    ex.run(program, repr(str(marker)))
    time.sleep(0.05)
    assert not marker.exists()
    assert_serving(ex)


def test_ctypes_cannot_signal_the_trainer(ex, victim):
    program = "import ctypes\ndef f(pid):\n    return ctypes.CDLL(None).kill(pid, 9)"
    ex.run(program, str(victim.pid))
    time.sleep(0.05)
    assert victim.poll() is None
    assert_serving(ex)


# ------------------------------------------------------------------ process state

def test_change_directory_then_write(ex, tmp_path):
    program = "import os\ndef f(p):\n    os.chdir(p)\n    open('pwned', 'w').write('x')\n    return os.getcwd()"
    ex.run(program, repr(str(tmp_path)))
    assert not (tmp_path / "pwned").exists()
    r = ex.run("import os\ndef f(a):\n    return os.getcwd()", "1")
    assert r.ok and r.output != repr(str(tmp_path))
    assert_serving(ex)


def test_environment_secrets_are_not_visible(ex):
    r = ex.run("import os\ndef f(a):\n    return dict(os.environ)", "1")
    assert r.ok
    for key in ("HOME", "SSH_AUTH_SOCK", "AWS_SECRET_ACCESS_KEY", "PYTEST_CURRENT_TEST", "PYTHONHASHSEED"):
        assert key not in eval(r.output)
    assert_serving(ex)


def test_environment_changes_do_not_leak(ex):
    before = dict(os.environ)
    ex.run("import os\ndef f(a):\n    os.environ['LEAK'] = 'x'\n    os.putenv('LEAK2', 'y')\n    return a", "1")
    assert dict(os.environ) == before
    for _ in range(3):
        r = ex.run("import os\ndef f(a):\n    return 'LEAK' in os.environ or 'LEAK2' in os.environ", "1")
        assert r.output == "False"
    assert_serving(ex)


def test_resource_limits_cannot_be_raised(ex):
    program = ("import resource\ndef f(a):\n    inf = resource.RLIM_INFINITY\n"
               "    resource.setrlimit(resource.RLIMIT_AS, (inf, inf))\n"
               "    resource.setrlimit(resource.RLIMIT_NPROC, (100, 100))\n    return 1")
    r = ex.run(program, "1")
    assert not r.ok
    r = ex.run("def f(a):\n    return len(bytearray(a))", str(1 << 30))
    assert r.error == "memory"
    assert_serving(ex)


def test_lowered_limits_do_not_leak_into_later_runs(ex):
    program = "import resource\ndef f(a):\n    resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))\n    return a"
    ex.run(program, "1")
    for _ in range(3):
        r = ex.run("def f(a):\n    fs = [open('f%d' % i, 'w') for i in range(10)]\n    return len(fs)", "1")
        assert r.output == "10"
    assert_serving(ex)


def test_privileges_cannot_be_regained(ex):
    r = ex.run("import os\ndef f(a):\n    os.setuid(0)\n    return os.getuid()", "1")
    assert not r.ok
    r = ex.run("import os\ndef f(a):\n    return os.getuid(), os.geteuid()", "1")
    if r.ok and ex.containment["drops_to_uid"]:
        assert r.output == f"({ex.containment['run_uid']}, {ex.containment['run_uid']})"
    assert_serving(ex)


# ------------------------------------------------------------------ outputs

def test_huge_repr(ex):
    r = ex.run("def f(n):\n    return list(range(n))", str(10**6))
    assert (r.ok, r.error) == (False, "output_too_large")
    assert_serving(ex)


def test_repr_that_raises(ex):
    program = "class Bad:\n    def __repr__(self):\n        raise ValueError('no')\n\ndef f(a):\n    return Bad()"
    r = ex.run(program, "1")
    assert (r.ok, r.error) == (False, "repr_error: ValueError")
    assert_serving(ex)


def test_repr_that_never_ends(ex):
    program = "class Bad:\n    def __repr__(self):\n        while True:\n            pass\n\ndef f(a):\n    return Bad()"
    r = ex.run(program, "1", timeout_s=SHORT)
    assert (r.ok, r.error) == (False, "timeout")
    assert_serving(ex)


# ------------------------------------------------------------------ the harness itself

def test_exit_the_worker(ex):
    for program in ("import os\ndef f(a):\n    os._exit(0)", "import os\ndef f(a):\n    os.closerange(0, 64)\n    return a",
                    "import os, signal\ndef f(a):\n    os.kill(os.getpid(), signal.SIGKILL)"):
        r = ex.run(program, "1")
        assert not r.ok or r.output == "1"
        assert_serving(ex)


def test_forged_replies_do_not_reach_later_runs(ex):
    forged = '0[true,null,"","\\"forged\\"",true,"",null,null]'
    program = ("import os, struct\ndef f(a):\n    data = a.encode()\n    for fd in range(3, 8):\n        try:\n"
               "            os.write(fd, struct.pack('>I', len(data)) + data)\n        except OSError:\n            pass\n"
               "    return 'real'")
    ex.run(program, repr(forged))
    for k in range(6):
        r = ex.run(ADD, f"{k}, 1")
        assert r.output == str(k + 1)


@pytest.mark.parametrize("tamper, check, expected", [
    ("import builtins\n    builtins.len = lambda x: 42", "len([1, 2])", "2"),
    ("import math\n    math.pi = 3", "__import__('math').pi", "3.141592653589793"),
    ("from collections import Counter\n    Counter.most_common = lambda self, n=None: 'x'",
     "__import__('collections').Counter('aab').most_common(1)", "[('a', 2)]"),
    ("import sys\n    sys.modules['math'] = None", "__import__('math').floor(1.5)", "1"),
    ("import json\n    json.dumps = lambda *a, **k: 'x'", "__import__('json').dumps([1])", "'[1]'"),
    ("import calendar\n    calendar.setfirstweekday(6)", "__import__('calendar').firstweekday()", "0"),
    ("import decimal\n    decimal.getcontext().prec = 3", "str(__import__('decimal').Decimal(1) / 3)[:8]",
     "'0.333333'"),
    ("import copy\n    copy._deepcopy_dispatch[list] = lambda x, memo: 'x'", "__import__('copy').deepcopy([1])", "[1]"),
], ids=["builtins", "module-attribute", "class-attribute", "sys.modules", "json", "calendar", "decimal",
        "private-table"])
def test_tampering_does_not_reach_later_runs(ex, tamper, check, expected):
    ex.run(f"def f(a):\n    {tamper}\n    return a", "1")
    for _ in range(4):  # whichever worker serves it
        r = ex.run(f"def f(a):\n    return {check}", "1")
        assert r.output == expected, r
    assert_serving(ex)


def test_worker_is_replaced_after_an_incident(ex):
    pid = "import os\ndef f(a):\n    return os.getpid()"
    with PythonExecutor(workers=1, timeout_s=2.0, audit_hook=ex.mode == "audit_hook") as one:
        first = one.run(pid, "1").output
        assert one.run(pid, "1").output == first  # reused while nothing happens
        one.run("def f(a):\n    return bytearray(1 << 40)", "1")  # an incident
        assert one.run(pid, "1").output != first


# ------------------------------------------------------------------ lifecycle

def test_no_process_is_left_behind(tmp_path):
    with PythonExecutor(workers=2, timeout_s=1.0) as e:
        e.run_many([("def f(a):\n    while True:\n        pass", "1")] * 2, timeout_s=0.3)
        e.run("import os\ndef f(a):\n    return os.fork()", "1")
        tree = process_tree(e.process_ids())
        assert len(tree) >= 2
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in tree if alive(pid)]


def test_scratch_area_is_removed(tmp_path):
    with PythonExecutor(workers=1, timeout_s=2.0, isolation="process") as e:
        scratch_root = Path(e._host_scratch)
        r = e.run("import os\ndef f(a):\n    open('x', 'w').write('1')\n    os.mkdir('d')\n    return os.getcwd()", "1")
        assert r.ok
        assert not Path(eval(r.output)).exists()  # removed after the run
    assert not scratch_root.exists()  # and the whole area on close


def test_process_isolation_mode(victim, tmp_path):
    """Without namespaces (isolation='process'): rlimits, an unprivileged uid when
    started as root, the audit hook."""
    with PythonExecutor(workers=1, timeout_s=2.0, isolation="process") as e:
        assert e.containment["namespaces"] == []
        assert e.validate("def f(p):\n    return open(p).read()", "'/etc/passwd'").reason == \
            "forbidden: open /etc/passwd"
        assert not e.run("import socket\ndef f(a):\n    return socket.socket()", "1").ok
        assert not e.run("import os\ndef f(a):\n    return os.fork()", "1").ok
        e.run("import os\ndef f(pid):\n    os.kill(pid, 9)", str(victim.pid))
        assert victim.poll() is None
        marker = tmp_path / "pwned"
        e.run("import os\ndef f(p):\n    return os.system('touch ' + p)", repr(str(marker)))
        assert not marker.exists()
        assert_serving(e)


def test_a_worker_that_closes_its_request_pipe(ex):
    ex.run("import os\ndef f(a):\n    os.close(3)\n    return a", "1")  # the worker exits after replying
    for k in range(4):
        assert ex.run(ADD, f"{k}, 1").output == str(k + 1)


HOSTILE = [
    "import os\ndef f(a, b):\n    os._exit(3)",
    "def f(a, b):\n    while True:\n        pass",
    "def f(a, b):\n    return bytearray(1 << 40)",
    "import os, struct\ndef f(a, b):\n    os.write(4, struct.pack('>I', 20) + b'0' * 20)\n    return 1",
    "import os\ndef f(a, b):\n    os.close(3)\n    return 1",
    "import builtins\ndef f(a, b):\n    builtins.len = None\n    return 1",
    "def f(a, b):\n    return [0] * (10 ** 6)",
]


def test_incidents_do_not_hurt_the_runs_queued_beside_them(ex):
    items = []
    for k in range(160):
        items.append((HOSTILE[k % len(HOSTILE)], "1, 2") if k % 8 == 3 else (ADD, f"{k}, 1"))
    results = ex.run_many(items, timeout_s=SHORT)
    wrong = [(k, r) for k, ((p, _), r) in enumerate(zip(items, results)) if p == ADD and r.output != str(k + 1)]
    assert not wrong
    assert_serving(ex)


def test_sandbox_processes_killed_under_load():
    import random
    import signal
    import threading

    with PythonExecutor(workers=2, timeout_s=2.0) as e:
        stop = threading.Event()

        def killer():
            rng = random.Random(0)
            while not stop.wait(rng.uniform(0.05, 0.2)):
                try:
                    os.killpg(rng.choice(e.process_ids()), signal.SIGKILL)
                except (OSError, IndexError):
                    pass

        thread = threading.Thread(target=killer)
        thread.start()
        answered = lost = 0
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                results = e.run_many([(ADD, f"{k}, 1") for k in range(100)])
                for k, r in enumerate(results):  # never a wrong answer, never an exception
                    assert r.output == str(k + 1) or (r.output is None and r.error == "executor_error"), r
                answered += sum(r.ok for r in results)
                lost += sum(not r.ok for r in results)
        finally:
            stop.set()
            thread.join()
        assert answered > 10 * lost  # a request is retried once on a fresh sandbox
        assert_serving(e)
