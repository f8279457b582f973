"""A job's directory: its layout, provisioning (inputs, DDOs, algorithm) and results.

``<root>/data/{inputs,ddos,transformations,outputs,logs}`` become ``/data/*`` in the
sandbox; ``<root>/algorithm.log`` receives the algorithm's stdout and stderr. Files the
job may read are 0644 in 0755 directories whatever the provider's umask.

Results are only regular files the job wrote under ``outputs`` (never symlinks, so a
job cannot make the provider serve a host file) plus the algorithm's log. What the job
writes (``outputs``, ``logs``, the log) is measured by :meth:`Workspace.usage` against
the environment's disk quota, and at most ``max_outputs`` outputs are listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from tidegate.compute.engines.base import JobSpec
from tidegate.compute.jobs import JobResult, JobStatus
from tidegate.errors import BadRequestError, NotFoundError, TidegateError
from tidegate.files.objects import FileObject, StorageContext, parse_file_object
from tidegate.files.open import open_file

__all__ = ["ResultNotFoundError", "Workspace", "collect_results", "finished_results",
           "provision", "read_result", "result_file", "unlisted_note"]

_DID: Final = re.compile(r"^[A-Za-z0-9:._-]{1,200}$")
_CHUNK: Final = 256 * 1024
_ENTRY_BYTES: Final = 4096
"""What every file, directory or link costs at least: a block and an inode on disk, so
millions of empty files cannot exhaust the provider's inodes for free."""
_MAX_RESULT_NAME: Final = 255
"""Longest output path listed (characters): keeps the status document bounded."""


class ResultNotFoundError(NotFoundError):
    code = "result_not_found"


class _OverBudget(Exception):
    """The inputs and algorithm outgrew the environment's disk."""


class Workspace:
    """A job's directory: ``data/{inputs,ddos,transformations,outputs,logs}`` + the log.

    ``data/*`` become ``/data/*`` in the sandbox. ``algorithm.log`` (stdout and stderr)
    stays outside the sandbox's view; the job writes it through an inherited descriptor.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.inputs = self.data / "inputs"
        self.ddos = self.data / "ddos"
        self.transformations = self.data / "transformations"
        self.outputs = self.data / "outputs"
        self.logs = self.data / "logs"
        self.log_file = root / "algorithm.log"

    def create(self) -> None:
        """Create the directories (readable by the sandbox uid)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (self.data, self.inputs, self.ddos, self.transformations, self.outputs,
                     self.logs):
            path.mkdir(exist_ok=True)
            path.chmod(0o755)  # explicit: the provider's umask may be 077

    def make_dir(self, path: Path) -> None:
        """Create a directory the job may list (0755)."""
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)

    def write_file(self, path: Path, content: bytes) -> None:
        """Write a small file the job may read (0644)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        path.write_bytes(content)
        path.chmod(0o644)

    def grant(self, uid: int | None) -> None:
        """Let ``uid`` (the sandbox user when Tidegate is root) write outputs and logs."""
        if uid is not None:
            for path in (self.outputs, self.logs):
                os.chown(path, uid, uid)

    def usage(self, limit: int) -> int:
        """Bytes the job's writable files take: ``outputs``, ``logs`` and the log.

        Each entry under ``outputs`` and ``logs`` counts its size or allocated blocks,
        at least 4 KiB; the log (one file, Tidegate's) its size. Counting stops
        once over ``limit`` (the cost of a check is bounded); a directory that cannot
        be read (made unreadable, or a path too long) counts as ``limit + 1``, so
        nothing can be hidden from the quota.
        """
        total = 0
        with contextlib.suppress(FileNotFoundError):
            total += os.lstat(self.log_file).st_size
        for root in (self.outputs, self.logs):
            try:
                for _, info in _walk(str(root)):
                    total += max(_ENTRY_BYTES, info.st_size, info.st_blocks * 512)
                    if total > limit:
                        return total
            except OSError:
                return limit + 1
        return total

    def clear_scratch(self) -> None:
        """Empty ``logs`` (scratch, never a result) so it holds no disk after the run."""
        if self.logs.is_dir():
            _remove_tree(str(self.logs))  # one pass, however many entries the job made
            self.logs.mkdir(mode=0o755, exist_ok=True)
            self.logs.chmod(0o755)

    def outputs_size(self) -> int:
        """Bytes of the regular files under ``outputs`` (symlinks are not followed)."""
        return sum(size for _, size in self.collect_outputs())

    def collect_outputs(self) -> list[tuple[str, int]]:
        """``(relative path, size)`` of every regular file under ``outputs``, sorted.

        Symlinks, devices and FIFOs are skipped: a result is only ever a file the job
        wrote itself, never a link to a host path.
        """
        base = str(self.outputs)
        found: list[tuple[str, int]] = []
        with contextlib.suppress(OSError):  # an unreadable part is simply not listed
            for path, info in _walk(base, strict=False):
                if stat.S_ISREG(info.st_mode):
                    found.append((os.path.relpath(path, base), info.st_size))
        return sorted(found)

    def output_path(self, relative: str) -> Path:
        """The path of output ``relative``; ValueError if it leaves ``outputs``."""
        base = os.path.realpath(self.outputs)
        path = os.path.realpath(os.path.join(base, relative))
        if not path.startswith(base + os.sep):
            raise ValueError("result path outside the outputs directory")
        return Path(path)

    def remove(self) -> None:
        """Delete everything, also directories the job made unreadable."""
        _remove_tree(str(self.root))


def _remove_tree(path: str) -> None:
    """Remove ``path`` (a file, link or tree), links never followed.

    ``rm`` first: it walks by directory descriptors, so trees deeper than Python's
    recursion limit or PATH_MAX (a job can make them) go too. What it could not remove
    (directories the job made unreadable, without root) is retried after a chmod.
    """
    if not os.path.lexists(path):
        return
    rm = shutil.which("rm", path="/usr/bin:/bin") or "rm"
    subprocess.run([rm, "-rf", "--one-file-system", "--", path], check=False,  # noqa: S603
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=_force)
        else:
            os.unlink(path)


def _force(func: Callable[..., object], path: str, _exc: object) -> None:
    """rmtree's retry: make the parent (and ``path`` if a directory) ours, again.

    chmod follows symlinks: ``path`` is changed only when it is a real directory, else a
    link the job left would make Tidegate chmod the host file it points to.
    """
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(path), 0o700)
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o700)
        func(path)


def _walk(root: str, *, strict: bool = True) -> Iterator[tuple[str, os.stat_result]]:
    """``(path, lstat)`` of every entry under ``root``, links not followed.

    Iterative (a job may nest directories deeper than Python's recursion limit).
    Entries removed meanwhile are skipped; any other error raises when ``strict``, else
    the unreadable directory is skipped.
    """
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
                    yield entry.path, info
        except FileNotFoundError:
            continue
        except OSError:
            if strict:
                raise


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    handle = path.open("wb")
    path.chmod(0o644)
    return handle


def _json_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def _valid_did(did: str | None) -> bool:
    return bool(did) and _DID.match(did or "") is not None and did not in (".", "..")


async def _fetch(file: FileObject, path: Path, storage: StorageContext, left: list[int]) -> None:
    """Stream one file to ``path`` (its one upstream request), within the budget."""
    stream = await open_file(file, storage)
    try:
        handle = await asyncio.to_thread(_create, path)
        try:
            async for chunk in stream.iter_bytes():
                left[0] -= len(chunk)
                if left[0] < 0:
                    raise _OverBudget
                # Disk writes can stall under writeback pressure: not on the event loop.
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
    finally:
        await stream.aclose()


def _reason(exc: BaseException, budget: int) -> str:
    if isinstance(exc, _OverBudget):
        return f"the files exceed the environment's disk limit ({budget} bytes)."
    if isinstance(exc, TidegateError):
        return exc.message  # Tidegate messages never carry URLs or secrets
    if isinstance(exc, OSError):
        return f"the file could not be stored ({exc.strerror})."
    return "unexpected error."


async def provision(spec: JobSpec, workspace: Workspace, storage: StorageContext,
                    budget: int) -> tuple[JobStatus, str] | None:
    """Fetch every input file to ``inputs/<did>/<index>``, write each DDO to
    ``ddos/<did>``, the algorithm to ``transformations/algorithm`` and its custom data to
    ``inputs/algoCustomData.json``. Inputs and algorithm together may use ``budget``
    bytes. Returns ``(31 or 32, detail)`` on failure, None on success.
    """
    left = [budget]
    where = "the inputs"
    try:
        for item in spec.inputs:
            where = f"input {item.did}"
            if not _valid_did(item.did):
                raise BadRequestError("invalid DID")
            workspace.write_file(workspace.ddos / item.did, _json_bytes(dict(item.ddo)))
            workspace.make_dir(workspace.inputs / item.did)
            for index, raw in enumerate(item.files):
                where = f"input {item.did} file {index}"
                await _fetch(parse_file_object(raw, item.userdata),
                             workspace.inputs / item.did / str(index), storage, left)
    except (TidegateError, OSError, _OverBudget) as exc:
        return (JobStatus.DATA_PROVISIONING_FAILED,
                f"Could not provision {where}: {_reason(exc, budget)}")
    algorithm = spec.algorithm
    try:
        target = workspace.transformations / "algorithm"
        if algorithm.rawcode:
            workspace.write_file(target, algorithm.rawcode.encode())
        elif algorithm.files:
            await _fetch(parse_file_object(algorithm.files[0], algorithm.userdata), target,
                         storage, left)
        else:
            raise BadRequestError("the algorithm has no code")
        if algorithm.did and algorithm.ddo is not None and _valid_did(algorithm.did):
            workspace.write_file(workspace.ddos / algorithm.did, _json_bytes(dict(algorithm.ddo)))
        if algorithm.algocustomdata is not None:
            workspace.write_file(workspace.inputs / "algoCustomData.json",
                                 _json_bytes(algorithm.algocustomdata))
    except (TidegateError, OSError, _OverBudget) as exc:
        return (JobStatus.ALGORITHM_PROVISIONING_FAILED,
                f"Could not provision the algorithm: {_reason(exc, budget)}")
    return None


def collect_results(workspace: Workspace,
                    max_outputs: int | None = None) -> tuple[list[JobResult], int]:
    """The outputs (sorted, type "output") then the log (type "algorithmLog"), and how
    many outputs were left out: beyond the first ``max_outputs``, or with a path longer
    than 255 characters (the listing, which the status repeats, stays bounded)."""
    found = workspace.collect_outputs() if workspace.outputs.is_dir() else []
    named = [(name, size) for name, size in found if len(name) <= _MAX_RESULT_NAME]
    listed = named if max_outputs is None else named[:max_outputs]
    results = [JobResult(filename=name, filesize=size, type="output", index=i)
               for i, (name, size) in enumerate(listed)]
    if workspace.log_file.is_file():
        results.append(JobResult(filename="algorithm.log",
                                 filesize=workspace.log_file.stat().st_size,
                                 type="algorithmLog", index=len(results)))
    return results, len(found) - len(listed)


def unlisted_note(omitted: int, max_outputs: int | None) -> str:
    """What the status detail says about outputs that are not listed ("" if none)."""
    if omitted <= 0:
        return ""
    cap = f"at most {max_outputs} are listed, " if max_outputs is not None else ""
    return (f"{omitted} output file(s) not listed ({cap}"
            f"paths longer than {_MAX_RESULT_NAME} characters never).")


def finished_results(workspace: Workspace, detail: str, completed: bool,
                     max_outputs: int | None = None) -> tuple[list[JobResult], int]:
    """A finished job's results: outputs (if it completed) then, always, the log; and
    the number of outputs not listed (see :func:`collect_results`).

    A job that did not complete, or whose algorithm never wrote to the log (stopped
    while queued, or stopped before its first line), gets a log ending with ``detail``,
    so result 0 always exists and is never empty when there is something to say.
    """
    results, omitted = collect_results(workspace, max_outputs) if completed else ([], 0)
    if (completed and results and results[-1].type == "algorithmLog"
            and (results[-1].filesize > 0 or not detail)):
        return results, omitted
    outputs = [r for r in results if r.type != "algorithmLog"]
    workspace.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with workspace.log_file.open("ab") as log:
        log.write(f"tidegate: {detail}\n".encode())
    return [*outputs, JobResult(filename="algorithm.log",
                                filesize=workspace.log_file.stat().st_size,
                                type="algorithmLog", index=len(outputs))], omitted


def result_file(workspace: Workspace, result: JobResult) -> tuple[Path, os.stat_result]:
    """Path and ``lstat`` of a result; ResultNotFoundError unless a regular file."""
    try:
        path = (workspace.log_file if result.type == "algorithmLog"
                else workspace.output_path(result.filename))
        info = os.lstat(path)
    except (OSError, ValueError):
        raise ResultNotFoundError("The result file is no longer available.") from None
    if not stat.S_ISREG(info.st_mode):
        raise ResultNotFoundError("The result file is no longer available.")
    return path, info


async def read_result(path: Path, inode: int) -> AsyncIterator[bytes]:
    """The file's bytes; opened lazily (no descriptor leaks if never iterated)."""
    # O_NONBLOCK: were it ever a FIFO, opening would not hang (the inode check refuses it).
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if os.fstat(fd).st_ino != inode:
            raise ResultNotFoundError("The result file changed.")
        while chunk := await asyncio.to_thread(os.read, fd, _CHUNK):
            yield chunk
    finally:
        os.close(fd)
