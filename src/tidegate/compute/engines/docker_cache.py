"""The images Tidegate pulled: their last use, and least-recently-used eviction under a cap.

Only what Tidegate pulled is tracked (an image the daemon already had is the
operator's and never removed), by the reference it pulled (``reg:5000/team/algo:1``,
``name@sha256:…``), in ``<compute dir>/images.json`` (shared by the processes on this
machine, under a file lock). When the tracked images' total size exceeds the cap, the
least recently used references whose image no job container uses (of any Tidegate
process: the daemon's labelled containers) and no job of this process is about to run
are removed, oldest first, until the total fits. A removal untags the reference
(never ``force``): an image that another tag or any container still uses stays on the
daemon, and the daemon frees its layers only when nothing else shares them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiodocker
from aiodocker.exceptions import DockerError

from tidegate.compute.engines.container_spec import JOB_LABEL

__all__ = ["ImageCache"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class ImageCache:
    """Tracks the references Tidegate pulled in ``path``; evicts beyond ``cap_bytes``
    (None: tracked, never evicted)."""

    def __init__(self, docker: aiodocker.Docker, path: Path, cap_bytes: int | None) -> None:
        self._docker = docker
        self._path = path
        self._cap = cap_bytes
        self._held: dict[str, int] = {}  # image id -> jobs of this process about to use it
        self._lock = asyncio.Lock()

    # --- the tracking file -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)} \
            if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, sort_keys=True))
        temporary.replace(self._path)

    async def _change(self, change: Callable[[dict[str, dict[str, Any]]], _T]) -> _T:
        def apply() -> _T:
            with self._locked():
                data = self._read()
                result = change(data)
                self._write(data)
                return result
        return await asyncio.to_thread(apply)

    async def tracked(self) -> dict[str, dict[str, Any]]:
        """Reference -> ``{"id", "size", "used"}`` of every image Tidegate pulled."""
        def read() -> dict[str, dict[str, Any]]:
            with self._locked():
                return self._read()
        return await asyncio.to_thread(read)

    # --- events ------------------------------------------------------------------------
    async def pulled(self, reference: str, image: dict[str, Any]) -> None:
        """Tidegate pulled ``reference``: track it, used now."""
        entry = {"id": str(image.get("Id", "")), "size": int(image.get("Size") or 0),
                 "used": time.time()}
        await self._change(lambda data: data.__setitem__(reference, entry))

    async def used(self, reference: str) -> None:
        """A job is about to run ``reference``: its last use is now (if tracked)."""
        def touch(data: dict[str, dict[str, Any]]) -> None:
            if reference in data:
                data[reference]["used"] = time.time()
        await self._change(touch)

    def hold(self, image_id: str) -> None:
        """A job of this process will run ``image_id``: not evicted until :meth:`release`."""
        self._held[image_id] = self._held.get(image_id, 0) + 1

    def release(self, image_id: str) -> None:
        left = self._held.get(image_id, 0) - 1
        if left > 0:
            self._held[image_id] = left
        else:
            self._held.pop(image_id, None)

    # --- eviction ----------------------------------------------------------------------
    async def _in_use(self) -> set[str] | None:
        """Image ids of every job container on the daemon (None: cannot tell)."""
        try:
            containers = await self._docker.containers.list(
                all="true", filters=json.dumps({"label": [JOB_LABEL]}))
        except DockerError:
            return None
        return {str(c["ImageID"]) for c in containers if c["ImageID"]} | set(self._held)

    async def evict(self) -> list[str]:
        """Remove least recently used references until the tracked total fits the cap;
        the references removed (oldest first)."""
        if self._cap is None:
            return []
        async with self._lock:
            tracked = await self.tracked()
            total = sum({e["id"]: int(e.get("size", 0)) for e in tracked.values()}.values())
            if total <= self._cap:
                return []
            in_use = await self._in_use()
            if in_use is None:
                return []
            removed: list[str] = []
            for reference, entry in sorted(tracked.items(), key=lambda kv: kv[1]["used"]):
                if total <= self._cap:
                    break
                if entry["id"] in in_use:
                    continue
                try:
                    await self._docker.images.delete(reference)
                except DockerError as exc:
                    if exc.status != 404:  # 409: a container or another use keeps it
                        continue
                removed.append(reference)
                if not any(e["id"] == entry["id"] for r, e in tracked.items()
                           if r != reference and r not in removed):
                    total -= int(entry.get("size", 0))
            if removed:
                logger.info("compute: image cache over %d MB: removed %d least recently "
                            "used image(s)", self._cap // (1024 * 1024), len(removed))

                def forget(data: dict[str, dict[str, Any]]) -> None:
                    for reference in removed:
                        data.pop(reference, None)
                await self._change(forget)
            return removed
