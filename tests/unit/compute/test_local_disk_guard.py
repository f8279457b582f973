"""The local engine's disk-space guard on a real small filesystem (a tmpfs the test
mounts and fills; nothing of the free-space check is faked)."""

from __future__ import annotations

import os

import pytest

from tests.docker_daemon import HOSTS_ROOT, fill, small_filesystem
from tests.unit.compute.conftest import TEST_OPTIONS, environment, finished, result_bytes, spec
from tidegate.compute.engines.local import LocalEngine
from tidegate.compute.engines.queueing import InsufficientDiskError
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore

MIB = 1024 * 1024


async def test_a_local_job_is_refused_while_the_compute_disk_is_nearly_full(
        store: SqliteStore, storage: StorageContext) -> None:
    env = environment(disk_gb=4 * MIB / 1024**3)  # inputs + outputs: 8 MB
    mount = HOSTS_ROOT / f"local-disk-{os.getpid()}"
    with small_filesystem(mount, 64) as disk:
        engine = LocalEngine(store, storage, [env], disk / "compute", sandbox=TEST_OPTIONS,
                             min_free_bytes=16 * MIB)
        await engine.open()
        try:
            filler = fill(disk, 20 * MIB)  # 20 MB left < 8 MB + the 16 MB floor
            with pytest.raises(InsufficientDiskError) as refused:
                await engine.start(spec(env, code="print('no room')"))
            assert (refused.value.status, refused.value.code) == (503, "insufficient_disk")
            assert await engine.jobs(None, None, None) == []  # nothing persisted
            filler.unlink()
            job = spec(env, code="print('room')")
            await engine.start(job)
            assert (await finished(engine, job.job_id, within=60)).detail == ""
            assert await result_bytes(engine, job.job_id) == b"room\n"
        finally:
            await engine.close()
    mount.rmdir()
