"""Operating-system containment: namespaces, the filesystem jail, dropping privileges.

Used inside the zygote only (standard library only; imported as a top-level module).
Each function names the threat it contains. Python 3.11 has no ``os.unshare``, so
the few system calls go through ctypes; the trainer process never calls them.
"""

import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 4, 28, 38
SECURE_NOROOT_ALL = 0x2F  # NOROOT, NOROOT_LOCKED, NO_SETUID_FIXUP, NO_SETUID_FIXUP_LOCKED
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine)

_libc = None
_get_errno = None
_capset_args = None


def libc():
    """The C library through ctypes, or None where it cannot be loaded.

    Loaded once in the zygote, which then removes ctypes from sys.modules: workers
    keep only these few prepared objects and never import ctypes again.
    """
    global _libc, _get_errno, _capset_args
    if _libc is None:
        try:
            import ctypes

            # dlopen(NULL): the interpreter's own symbols, libc included. (ctypes.util
            # would import subprocess and threading into every worker.)
            _libc = ctypes.CDLL(None, use_errno=True)
            _get_errno = ctypes.get_errno
            # _LINUX_CAPABILITY_VERSION_3 for this thread; effective, permitted and
            # inheritable sets all empty.
            _capset_args = ((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)())
        except (ImportError, OSError):
            _libc = False
        for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
            del sys.modules[name]
    return _libc or None


def _check(ret, what):
    if ret != 0:
        err = _get_errno() if _get_errno else 0
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option, arg):
    lib = libc()
    return -1 if lib is None else lib.prctl(option, arg, 0, 0, 0)


def enter_namespaces():
    """Unshare network, PID, mount, IPC and UTS namespaces.

    Threats: network access (the new network namespace has no usable interface),
    signals to and the sight of other processes (new PID namespace), the host
    filesystem (new mount namespace, see build_jail). Without root, a user
    namespace lends the right to create the others where the kernel allows it.
    Returns the list of namespaces entered; raises OSError when not possible.
    """
    lib = libc()
    if lib is None:
        raise OSError("ctypes is not available")
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        _check(lib.unshare(flags), "unshare")
        return ["mount", "pid", "net", "ipc", "uts"]
    _check(lib.unshare(CLONE_NEWUSER | flags), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    return ["user", "mount", "pid", "net", "ipc", "uts"]


def _mount(src, dst, fstype, flags, data):
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(libc().mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


def _bind_readonly(src, dst):
    os.makedirs(dst, 0o755, exist_ok=True)
    _mount(src, dst, None, MS_BIND | MS_REC, None)
    # Inside a user namespace a remount must keep the flags the kernel locked.
    have, keep = os.statvfs(src).f_flag, 0
    for st_flag, ms_flag in ((os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                             (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)):
        if have & st_flag:
            keep |= ms_flag
    try:
        _mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | keep, None)
    except OSError:
        pass
    if not os.statvfs(dst).f_flag & os.ST_RDONLY:  # never leave a writable view behind
        libc().umount2(os.fsencode(dst), MNT_DETACH)
        raise OSError(f"could not make {src} read-only")


def readable_roots():
    """Directories a program may read: the interpreter's standard library."""
    roots = []
    for path in sorted({os.path.realpath(p) for p in sys.path if os.path.isdir(p)}):
        if not any(path == r or path.startswith(r + "/") for r in roots):
            roots.append(path)
    return roots


def build_jail(scratch_mb):
    """Make a small tmpfs the root of this mount namespace.

    Threat: reading or writing the host filesystem (/etc/passwd, the home
    directory, the project tree, other users' files). Inside the jail there is only
    the standard library, read-only at its usual path so imports work, and
    /scratch for the per-run directories; the tmpfs size bounds what programs can
    write. The old root is detached, so no path leads back to the host. Must run
    in a fresh mount namespace. Returns (scratch_base, readable_roots).
    """
    if SYS_PIVOT_ROOT is None:
        raise OSError("pivot_root: unknown architecture")
    roots = readable_roots()
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)  # our mounts stay ours
    jail = "/tmp"  # mounted over in our own namespace only; the host's /tmp is untouched
    _mount("selftaught-jail", jail, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(scratch_mb)}m,nr_inodes=16384,mode=755")
    for path in roots:
        _bind_readonly(path, jail + path)
    os.mkdir(jail + "/scratch", 0o711)
    os.chdir(jail)
    _check(libc().syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc().umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")
    return "/scratch", roots


def drop_privileges(run_uid, in_user_namespace):
    """Give up every privilege before running user code.

    Threats: reading root-only files, signalling other processes, fork bombs
    (RLIMIT_NPROC is not enforced for uid 0), regaining privileges through exec.
    As real root: become `run_uid` (nobody). Inside a user namespace (where we are
    uid 0 of that namespace only): lock root's special treatment and drop every
    capability. Always: no_new_privs.
    """
    if os.getuid() == 0 and not in_user_namespace:
        os.setgroups([])
        os.setresgid(run_uid, run_uid, run_uid)
        os.setresuid(run_uid, run_uid, run_uid)
    elif in_user_namespace and libc() is not None:
        libc().prctl(PR_SET_SECUREBITS, SECURE_NOROOT_ALL, 0, 0, 0)
        _check(libc().capset(*_capset_args), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)
