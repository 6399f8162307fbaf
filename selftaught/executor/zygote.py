"""The zygote: sets up containment once, then forks and supervises workers.

Started by the trainer as ``python -s -S -B zygote.py CONFIG_JSON`` with an
environment of the trainer's making (no user site, no site-packages). It never
runs user code. It reads requests on stdin and answers on stdout, one frame each.

Per worker process it: enters namespaces (when possible) and becomes init of its
own PID namespace, builds the filesystem jail, imports warm modules, then for each
request hands the program to a worker (harness.py), times it with a wall clock,
and kills and replaces the worker after any incident. Killing a worker as PID
namespace init (kill(-1)) reaches every process the program could have made.
"""

import gc
import json
import os
import signal
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import guard  # noqa: E402
import harness  # noqa: E402
import isolation  # noqa: E402
import protocol  # noqa: E402

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
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
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
    """Holds at most one worker and answers requests through it."""

    def __init__(self, cfg, report, scratch_base, roots, devnull):
        self.cfg, self.report, self.scratch_base = cfg, report, scratch_base
        self.roots, self.devnull = roots, devnull
        self.pid = None
        self.spawned = 0
        self.max_runs = int(cfg["max_runs"])
        self.reply_limit = 4 * (int(cfg["max_output_chars"]) + int(cfg["max_stdout_chars"])) + 65536
        harness.prepare_zygote_state()
        self.guard = guard.StateGuard()  # snapshot once; every worker inherits it
        gc.collect()
        gc.freeze()  # workers are forked from here: fewer copy-on-write faults

    def spawn(self, memory_mb):
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
        self.pid, self.base, self.memory_mb, self.runs = pid, base, memory_mb, 0
        self.req_fd, self.rep_fd = req_w, rep_r

    def kill(self):
        """Threat: leftover processes and files after an incident."""
        if self.pid is None:
            return 0
        pid, self.pid = self.pid, None
        os.close(self.req_fd)
        os.close(self.rep_fd)
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

    def handle(self, timeout, memory_mb, payload):
        """Run one request; return the reply frame's payload (bytes).

        The reply is a small JSON header, a newline, then the worker's own JSON
        array, forwarded without being decoded here (the trainer decodes it).
        """
        for attempt in (1, 2):
            reply, retry = self._attempt(timeout, memory_mb, payload)
            if not retry or attempt == 2:
                return reply

    def _attempt(self, timeout, memory_mb, payload):
        if self.pid is not None and self.memory_mb != memory_mb:
            self.kill()
        if self.pid is None:
            self.spawn(memory_mb)
        # threat: forged or stale replies. Each request carries a fresh nonce that
        # the worker's harness echoes; a program cannot know the next one, so
        # bytes it wrote into the reply pipe can never pass for a later run's reply.
        nonce = os.urandom(8)
        t0 = time.monotonic()
        error = None
        try:
            protocol.write_frame(self.req_fd, nonce + payload)
            data = protocol.read_frame(self.rep_fd, t0 + timeout, self.reply_limit)
        except TimeoutError:
            data, error = None, "timeout"  # threat: spinning, sleeping, blocking
        except protocol.FrameTooLarge:
            data, error = None, "output_too_large"  # threat: output floods
        except protocol.ProtocolError:
            data, error = None, "crash: garbled reply"
        except OSError:
            data = None
        duration = time.monotonic() - t0
        self.runs += 1
        retry = False
        if data is not None and data[1:9] != nonce:
            # Left over from an earlier run that wrote into the pipe, or forged now:
            # this worker is discarded and the request tried once on a fresh one.
            data, error, retry = None, "crash: garbled reply", True
        recycled = None
        if data is None or data[:1] != b"0":
            recycled = error or "worker exit"
        elif self.runs >= self.max_runs:
            recycled = "max_runs"
        if recycled:
            status = self.kill()
            if data is None and error is None:
                error = death_reason(status)
        head = json.dumps({"duration_s": duration, "recycled": recycled, "error": error}).encode()
        return head + b"\n" + (data[9:] if data else b""), retry


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
    report, scratch_base, roots, devnull = set_up(cfg)
    supervisor = Supervisor(cfg, report, scratch_base, roots, devnull)
    supervisor.spawn(int(cfg["memory_mb"]))  # warm: the first request finds a worker
    protocol.send_json(1, {"ready": True, "containment": report})
    header = protocol.REQUEST
    while True:
        frame = protocol.read_frame(0)
        if frame is None:
            break
        timeout, memory_mb = header.unpack_from(frame)
        try:
            reply = supervisor.handle(timeout, memory_mb, frame[header.size:])
        except Exception as exc:  # a bug here must not take the worker down silently
            supervisor.kill()
            reply = json.dumps({"duration_s": 0.0, "recycled": "executor_error", "error": "executor_error",
                                "detail": harness._short(exc)}).encode() + b"\n"
        protocol.write_frame(1, reply)
        if supervisor.pid is None:  # replace it now, while the trainer reads the reply
            supervisor.spawn(memory_mb)
    supervisor.kill()


if __name__ == "__main__":
    main()
