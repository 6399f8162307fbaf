"""The zygote: sets up containment once, then forks and supervises workers.

Started by the trainer as ``python -s -S -B zygote.py CONFIG_JSON`` with an
environment of the trainer's making (no user site, no site-packages). It never
runs user code and is not on the path of requests: it hands the trainer the pipes
of each worker it forks (SCM_RIGHTS over a unix socket), and the trainer talks to
the worker directly, times each run and asks the zygote to replace the worker
after any incident ("respawn"). One hop less per run matters on a busy machine.

Once per worker slot it enters namespaces (when possible) and becomes init of its
own PID namespace, builds the filesystem jail and imports warm modules. Replacing
a worker as PID-namespace init (kill(-1)) reaches every process a program could
have made.
"""

import gc
import json
import os
import signal
import socket
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import guard  # noqa: E402
import harness  # noqa: E402
import isolation  # noqa: E402

sys.path[:] = [p for p in sys.path if p != _HERE]  # programs must not import the executor's files

# Warm imports: modules model-written programs commonly use. Imported once here,
# they cost nothing per run and keep working inside the jail, where shared
# libraries outside the standard library are not visible.
WARM_MODULES = (
    "abc", "array", "base64", "binascii", "bisect", "calendar", "cmath", "collections",
    "collections.abc", "contextlib", "copy", "dataclasses", "datetime", "decimal",
    "enum", "fractions", "functools", "hashlib", "heapq", "itertools", "json", "keyword",
    "math", "numbers", "operator", "random", "re", "statistics", "string", "struct",
    "textwrap", "typing", "unicodedata", "zlib",
)


def set_up(cfg):
    """Containment shared by every run of this worker; returns the report."""
    report = {"namespaces": [], "user_namespace": False, "filesystem": "host",
              "pid_namespace": False, "notes": []}
    outer_uid = os.getuid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # no KeyboardInterrupt from a child
    # A job-wide SIGTERM (SLURM's preemption) must not end the sandbox while the trainer finishes
    # its step (selftaught.preemption): the zygote ends when the trainer closes its socket.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)  # opened before the jail hides /dev
    for name in WARM_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    entered = []
    if cfg["isolation"] in ("auto", "namespaces"):
        try:
            entered = isolation.enter_namespaces()
        except (OSError, AttributeError) as exc:
            report["notes"].append(f"namespaces unavailable: {exc}")
            if cfg["isolation"] == "namespaces":
                raise
    if entered:
        # The first child after unshare(CLONE_NEWPID) is init of the new namespace.
        # This process only waits for it; the trainer kills our process group.
        pid = os.fork()
        if pid:
            os.close(cfg["ctl_fd"])  # the trainer sees end of file when init exits
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    report["namespaces"] = entered
    report["user_namespace"] = "user" in entered
    report["pid_namespace"] = os.getpid() == 1
    scratch_base, roots = cfg["host_scratch"], isolation.readable_roots()
    if "mount" in entered:
        try:
            scratch_base, roots = isolation.build_jail(cfg["scratch_mb"])
            report["filesystem"] = "jail"
        except OSError as exc:
            if cfg["isolation"] == "namespaces":
                raise
            report["notes"].append(f"filesystem jail unavailable: {exc}")
    # Same-uid processes may not ptrace us or read our memory (threat: a worker in a
    # user namespace tampering with its supervisor).
    isolation.prctl(isolation.PR_SET_DUMPABLE, 0)
    report["drops_to_uid"] = os.getuid() == 0 and not report["user_namespace"]
    report["run_uid"] = cfg["run_uid"] if report["drops_to_uid"] else outer_uid
    report["network"] = "isolated" if "net" in entered else "audit hook only"
    report["audit_hook"] = bool(cfg["audit_hook"])
    report["readable_paths"] = roots
    report["rlimits"] = {"cpu": "per worker, backstop", "address_space_mb": cfg["memory_mb"],
                         "file_size_mb": cfg["file_size_mb"], "open_files": 64,
                         "processes": 0, "core": 0}
    report["max_runs_per_worker"] = cfg["max_runs"]
    return report, scratch_base, roots, devnull


class Supervisor:
    """Holds at most one worker; forks, kills and replaces it."""

    def __init__(self, cfg, report, scratch_base, roots, devnull):
        self.cfg, self.report, self.scratch_base = cfg, report, scratch_base
        self.roots, self.devnull = roots, devnull
        self.pid = None
        self.spawned = 0
        harness.prepare_zygote_state()
        self.guard = guard.StateGuard()  # snapshot once; every worker inherits it
        gc.collect()
        gc.freeze()  # workers are forked from here: fewer copy-on-write faults

    def spawn(self, memory_mb):
        """Fork a worker; return the trainer's ends of its pipes (request, reply)."""
        self.spawned += 1
        base = f"{self.scratch_base}/w{self.spawned}"
        os.mkdir(base, 0o700)
        if self.report["drops_to_uid"]:
            os.chown(base, self.cfg["run_uid"], self.cfg["run_uid"])
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(req_w)
            os.close(rep_r)
            harness.worker_main(self.cfg, memory_mb, base, self.roots, self.report["user_namespace"],
                                self.devnull, req_r, rep_w, self.guard)
        os.close(req_r)
        os.close(rep_w)
        self.pid, self.base = pid, base
        return req_w, rep_r

    def kill(self):
        """Kill the worker and everything it left (threat: leftover processes and
        files after an incident); return its wait status."""
        if self.pid is None:
            return 0
        pid, self.pid = self.pid, None
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
        if os.getpid() == 1:
            # As init of the PID namespace, kill(-1) reaches every process left.
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        while True:  # reap everything; as init, orphans are ours too
            try:
                if os.waitpid(-1, 0 if os.getpid() == 1 else os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        try:
            harness._remove_tree(self.base)
        except OSError as exc:
            self.report["notes"].append(f"scratch cleanup failed: {exc}")
        return status


def death_reason(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "timeout"
        if sig == signal.SIGXFSZ:
            return "file_size"
        return f"crash: {signal.Signals(sig).name}"
    if os.WIFEXITED(status):
        return f"crash: exit {os.WEXITSTATUS(status)}"
    return "crash"


def main():
    cfg = json.loads(sys.argv[1])
    ctl = socket.socket(fileno=cfg["ctl_fd"])  # SOCK_SEQPACKET to the trainer
    report, scratch_base, roots, devnull = set_up(cfg)
    supervisor = Supervisor(cfg, report, scratch_base, roots, devnull)

    def answer(message, memory_mb):
        fds = supervisor.spawn(memory_mb)
        socket.send_fds(ctl, [json.dumps(message).encode()], list(fds))
        for fd in fds:  # the trainer holds them now; our copies would hide end of file
            os.close(fd)

    answer({"ready": True, "containment": report}, int(cfg["memory_mb"]))
    while True:
        try:
            data = ctl.recv(1 << 16)
        except OSError:
            data = b""
        if not data:  # the trainer is gone
            break
        try:
            request = json.loads(data)
            status = supervisor.kill()
            answer({"died": death_reason(status) if status else None}, int(request["memory_mb"]))
        except Exception as exc:  # never leave the trainer waiting
            ctl.send(json.dumps({"error": harness._short(exc)}).encode())
    supervisor.kill()


if __name__ == "__main__":
    main()
