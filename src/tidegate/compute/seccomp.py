"""A seccomp filter for sandboxed jobs, compiled with libseccomp (through ctypes).

Why libseccomp and not a Python package: it is the maintained C library (Debian's
``libseccomp2``, a dependency of apt, so on every Debian-like host) that resolves
system call names per architecture and writes the BPF program; the Python bindings
on PyPI are unmaintained wrappers of the same calls. bubblewrap loads the program
(``--seccomp FD``) just before it executes the job.

What the filter refuses (EPERM unless noted), everything else is allowed: new
namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag; ``clone3``
answers ENOSYS so the C library falls back to ``clone``), mounts, the kernel keyring,
``ptrace`` and other processes' memory, BPF, perf events, userfaultfd, io_uring,
kernel modules and kexec, changing the clock, host name, swap or quotas, rebooting,
file handles (``open_by_handle_at``); and, when the job has network,
``socket(AF_UNIX)`` (abstract unix sockets belong to the network namespace, which the
job then shares with the host; ``socketpair`` still works). System calls of another
architecture (x32, i386 on x86-64) kill the job.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
from typing import Final

__all__ = ["DENIED", "SeccompUnavailableError", "compile_filter"]

DENIED: Final = (
    # namespaces and mounts: the sandbox's own shape is fixed by bubblewrap
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # kernel keyring
    "add_key", "request_key", "keyctl",
    # other processes, kernel instrumentation
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "lookup_dcookie",
    # the machine itself
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "syslog", "vhangup", "iopl", "ioperm", "nfsservctl", "uselib", "ustat", "sysfs",
    "_sysctl", "open_by_handle_at", "name_to_handle_at",
)
_NAMESPACE_FLAGS: Final = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
                           0x20000000, 0x40000000, 0x00000080)
"""CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME."""
_ALLOW: Final = 0x7FFF0000
_KILL_PROCESS: Final = 0x80000000
_ATTR_BADARCH: Final = 2  # SCMP_FLTATR_ACT_BADARCH
_CMP_EQ: Final = 4
_CMP_MASKED_EQ: Final = 7


def _errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO(code)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class SeccompUnavailableError(OSError):
    """libseccomp is missing or refused the filter."""


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompUnavailableError(f"libseccomp is not installed ({name})") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def compile_filter(*, allow_network: bool) -> bytes:
    """The BPF program (bytes, as ``bwrap --seccomp`` reads it) for one job.

    Raises :class:`SeccompUnavailableError` if libseccomp is missing or fails.
    """
    lib = _library()
    ctx = lib.seccomp_init(_ALLOW)
    if not ctx:
        raise SeccompUnavailableError("seccomp_init failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _ATTR_BADARCH, _KILL_PROCESS), "bad-arch action")

        def rule(action: int, name: str, *conditions: tuple[int, int, int, int]) -> None:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                return  # not a system call of this architecture (e.g. umount on x86-64)
            array = (_ArgCmp * max(1, len(conditions)))(*[_ArgCmp(*c) for c in conditions])
            _check(lib.seccomp_rule_add_array(ctx, action, number, len(conditions), array),
                   name)

        for name in DENIED:
            rule(_errno(errno.EPERM), name)
        for flag in _NAMESPACE_FLAGS:
            rule(_errno(errno.EPERM), "clone", (0, _CMP_MASKED_EQ, flag, flag))
        rule(_errno(errno.ENOSYS), "clone3")  # flags sit behind a pointer: not checkable
        if allow_network:
            rule(_errno(errno.EPERM), "socket", (0, _CMP_EQ, socket.AF_UNIX, 0))
        program = os.memfd_create("tidegate-seccomp", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, program), "export")
            os.lseek(program, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(program, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(program)
    finally:
        lib.seccomp_release(ctx)


def _check(result: int, what: str) -> None:
    if result < 0:
        raise SeccompUnavailableError(f"libseccomp refused {what} ({os.strerror(-result)})")
