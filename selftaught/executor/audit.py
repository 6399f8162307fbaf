"""The audit hook: an in-process first line that refuses and records operations.

Python's audit hooks (PEP 578) see opens, sockets, process creation, signals and
more before they happen. Raising from the hook refuses the operation; the first
refusal is recorded so a run is reported as 'forbidden: <what>' even when the
program catches the error. A hook is bypassable in principle (it is the same
process as the program); the operating-system layers are the boundary.

Standard library only; imported as a top-level module inside the zygote.
"""

import os

_DENIED_EVENTS = frozenset({
    # threat: network
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.sendto", "socket.sendmsg",
    # threat: starting processes, fork bombs, leftover children
    "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.startfile", "pty.spawn",
    # threat: signals to other processes
    "os.kill", "os.killpg", "signal.pthread_kill",
    # threat: environment, limits, escaping scratch through links or descriptors
    "os.fchdir", "os.putenv", "os.unsetenv", "resource.setrlimit", "resource.prlimit",
    "os.symlink", "os.link", "os.chown", "os.chflags", "os.setxattr", "os.removexattr",
    # threat: tampering with the harness through the heap
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
})
_DENIED_PREFIXES = ("socket.", "ctypes.", "os.exec", "os.spawn", "os.posix_spawn", "_winapi.", "winreg.")
_DENIED_IMPORTS = frozenset({"ctypes", "_ctypes", "cffi"})
_PATH_EVENTS = frozenset({"os.chdir", "os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.truncate",
                          "os.utime", "os.chmod", "shutil.rmtree", "shutil.copyfile", "shutil.move",
                          "os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr"})
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def make_audit_hook(area, read_roots, violations):
    """Refuse, and record, what a self-play program has no business doing.

    Paths may be used inside area[0] (the current run's scratch directory while a
    program runs, the worker's whole area while the harness cleans up); the
    standard library may be read (imports). The OS layers hold where this is
    bypassed.
    """
    roots = tuple(r + "/" for r in read_roots)
    normpath, fsdecode, getcwd = os.path.normpath, os.fsdecode, os.getcwd

    def where(path):
        if isinstance(path, int) or path is None:
            return None  # a descriptor the process already holds
        try:
            p = fsdecode(path)
        except TypeError:
            return "?"
        return normpath(p if p.startswith("/") else getcwd() + "/" + p)

    def deny(what):
        if not violations:
            violations.append(what)
        raise PermissionError(f"sandbox: {what} is not allowed")

    def allowed(p, reading):
        base = area[0]
        return p is None or p == base or p.startswith(base + "/") or (
            reading and (p + "/").startswith(roots))

    def hook(event, args):
        if event in _DENIED_EVENTS or event.startswith(_DENIED_PREFIXES):
            deny(event)
        elif event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if mode else bool(flags and flags & _WRITE_FLAGS)
            p = where(path)
            if not allowed(p, not writes):
                deny(f"open {p}")
        elif event == "import":
            if args[0].partition(".")[0] in _DENIED_IMPORTS:
                deny(f"import {args[0]}")
        elif event in _PATH_EVENTS:
            for a in args[:2]:
                if isinstance(a, (str, bytes, os.PathLike)):
                    p = where(a)
                    if not allowed(p, event in _READ_EVENTS):
                        deny(f"{event} {p}")

    return hook
