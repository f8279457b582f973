"""Job records, leases and results in the store: what every engine on this machine shares.

The Docker engine keeps its jobs exactly as the local engine does (same record, same
lease name ``compute-job:<id>``, same ``jobs/<id>/`` workspace), so a stop or delete
sent to any Tidegate process reaches the job through the store, and any engine's sweep
fails a job whose process died.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final

from eth_utils import is_address, to_checksum_address

from tidegate.compute.engines.base import JobSpec, ResultStream
from tidegate.compute.engines.queueing import queue_expired_detail
from tidegate.compute.jobs import (
    FINISHED,
    QUEUE_EXPIRED_TEXT,
    STATUS_TEXT,
    JobNotFoundError,
    JobRecord,
    JobResult,
    JobStatus,
)
from tidegate.compute.workspace import (
    ResultNotFoundError,
    Workspace,
    finished_results,
    read_result,
    result_file,
    unlisted_note,
)
from tidegate.files.storages import safe_filename
from tidegate.stores.base import Store

__all__ = ["INTERRUPTED", "JOB_ID", "JobBook", "JobNotRunningError", "lease_name", "owner_key"]

JOB_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INTERRUPTED: Final = "Interrupted by a Tidegate restart."


def owner_key(owner: str) -> str:
    """Owners are stored checksummed, so the store's exact match finds any spelling."""
    return str(to_checksum_address(owner)) if is_address(owner) else owner


def lease_name(job_id: str) -> str:
    return f"compute-job:{job_id}"


class JobBook:
    """The records and files of jobs under ``jobs_dir``, leased by ``instance``."""

    def __init__(self, store: Store, jobs_dir: Path, instance: str, lease_ms: int) -> None:
        self.store = store
        self.jobs_dir = jobs_dir
        self.instance = instance
        self.lease_ms = lease_ms

    def workspace(self, job_id: str) -> Workspace:
        return Workspace(self.jobs_dir / job_id)

    async def lease(self, job_id: str) -> bool:
        """Take or renew the job's lease; False while another live process holds it."""
        return await self.store.try_lease(lease_name(job_id), self.instance, self.lease_ms)

    def new_record(self, spec: JobSpec) -> JobRecord:
        return JobRecord(
            job_id=spec.job_id, owner=owner_key(spec.owner),
            did=spec.inputs[0].did if spec.inputs else "", agreement_id=spec.agreement_id,
            environment=spec.environment.id, chain_id=spec.chain_id,
            date_created=time.time(), algorithm_did=spec.algorithm.did,
            input_dids=[i.did for i in spec.inputs if i.did], protocol=spec.protocol,
            free=spec.free, max_duration=spec.max_duration,
            queue_max_wait=spec.queue_max_wait,
            resources=[{"id": rid, "amount": amount} for rid, amount in spec.resources])

    async def load(self, job_id: str) -> JobRecord | None:
        document = await self.store.get_job(job_id)
        return JobRecord.from_store(json.loads(document)) if document else None

    async def save(self, record: JobRecord) -> None:
        await self.store.put_job(record.job_id, record.owner, json.dumps(record.to_store()))

    async def all(self) -> list[JobRecord]:
        return [JobRecord.from_store(json.loads(d)) for d in await self.store.list_jobs(None)]

    async def query(self, owner: str | None, job_id: str | None,
                    did: str | None) -> list[JobRecord]:
        """Records matching every given filter (owner compared case-insensitively)."""
        if job_id is not None:
            found = await self.load(job_id)
            records = [found] if found is not None else []
        else:
            records = [JobRecord.from_store(json.loads(d)) for d in
                       await self.store.list_jobs(owner_key(owner) if owner else None)]
        return [r for r in records
                if (owner is None or r.owner.lower() == owner.lower())
                and (did is None or did == r.did or did in r.input_dids)]

    async def update(self, job_id: str, status: JobStatus | None, *,
                     stop_requested: bool | None = None,
                     running_log: bool = False) -> None:
        """Set the status (and the stop flag) of an unfinished job.

        ``running_log``: list the algorithm log as result 0 while the job runs, so its
        owner can read the log so far.
        """
        record = await self.load(job_id)
        if record is None or record.status in FINISHED:
            return  # deleted, or already finished by someone else
        if status is not None:
            record.status, record.status_text = int(status), STATUS_TEXT[status]
            if status == JobStatus.RUNNING and record.date_started is None:
                record.date_started = time.time()  # what a paid job is charged from
        if stop_requested is not None:
            record.stop_requested = stop_requested
        if running_log:
            log = self.workspace(job_id).log_file
            size = await asyncio.to_thread(lambda: log.stat().st_size if log.exists() else 0)
            record.results = [_log_result(size)]
        await self.save(record)

    async def finish(self, job_id: str, detail: str,
                     status: JobStatus = JobStatus.COMPLETED, *, stopped: bool = False,
                     quota: int | None = None, max_outputs: int | None = None,
                     status_text: str | None = None) -> None:
        """Mark the job finished; its log is always a result, on 70 its outputs too.

        ``status_text``: instead of the status's own (``stopped``: ``Job stopped``).

        ``quota`` (bytes): outputs are results, in order, while their total stays within
        it; ``max_outputs``: at most that many are listed. ``detail`` says how many
        were left out either way.
        """
        record = await self.load(job_id)
        if record is None or record.status in FINISHED:
            return
        record.results, omitted = await asyncio.to_thread(
            finished_results, self.workspace(job_id), detail, status == JobStatus.COMPLETED,
            max_outputs)
        notes = [detail] if detail else []
        if quota is not None:
            record.results, cut = _within(record.results, quota)
            if cut:
                notes.append(f"{cut} output file(s) beyond the disk limit ({quota} bytes) "
                             "are not results.")
        if omitted:
            notes.append(unlisted_note(omitted, max_outputs))
        record.status, record.detail = int(status), " ".join(notes)
        record.status_text = status_text or ("Job stopped" if stopped else STATUS_TEXT[status])
        record.date_finished = time.time()
        await self.save(record)

    async def end_unrun(self, spec: JobSpec, stopped: bool) -> None:
        """End a job that left the queue without running: ``stopped``, or past its
        ``queue_max_wait`` (``queueing.wait_for_slot`` returned False without a stop)."""
        if stopped or not spec.queue_max_wait:
            await self.finish(spec.job_id, "Job stopped", stopped=True)
        else:
            await self.finish(spec.job_id, queue_expired_detail(spec.queue_max_wait),
                              status_text=QUEUE_EXPIRED_TEXT)

    async def expire(self, storage_expiry: Mapping[str, int], now: float) -> list[str]:
        """Remove the files of finished jobs kept past their environment's
        ``storageExpiry`` (seconds; environment id -> seconds, others untouched).

        The record stays as a tombstone (``removed``, no results), as after a delete.
        Returns the ids of the jobs expired now.
        """
        expired: list[str] = []
        for record in await self.all():
            keep = storage_expiry.get(record.environment)
            if (keep is None or record.removed or record.status not in FINISHED
                    or record.date_finished is None or record.date_finished + keep > now):
                continue
            await asyncio.to_thread(self.workspace(record.job_id).remove)
            record.removed, record.results = True, []
            await self.save(record)
            expired.append(record.job_id)
        return expired

    async def stop_requested(self, job_id: str) -> bool:
        """True once the job was stopped, deleted or finished by anyone (the store)."""
        record = await self.load(job_id)
        return record is None or record.stop_requested or record.status in FINISHED

    async def open_result(self, owner: str, job_id: str, index: int) -> ResultStream:
        """Result ``index`` of the owner's job; the log also while the job runs."""
        record = await self.load(job_id) if JOB_ID.match(job_id) else None
        if record is None or record.owner.lower() != owner.lower():
            raise JobNotFoundError("Job not found.")
        match = [r for r in record.results if r.index == index]
        if not match:
            raise ResultNotFoundError(f"The job has no result with index {index}.")
        path, info = await asyncio.to_thread(result_file, self.workspace(job_id), match[0])
        name = os.path.basename(match[0].filename)
        content_type = ("text/plain" if match[0].type == "algorithmLog"
                        else mimetypes.guess_type(name)[0] or "application/octet-stream")
        return ResultStream(filename=safe_filename(name), size=info.st_size,
                            content_type=content_type,
                            chunks=_at_most(read_result(path, info.st_ino), info.st_size))


    async def follow_log(self, owner: str, job_id: str, *,
                         poll: float = 0.25) -> AsyncIterator[bytes]:
        """The owner's unfinished job's log as it grows, until the job ends (then the
        rest of the file). 404 ``job_not_found`` (not the owner's, or no such job) or
        ``job_not_running`` (finished) before anything is read."""
        record = await self.load(job_id) if JOB_ID.match(job_id) else None
        if record is None or record.owner.lower() != owner.lower():
            raise JobNotFoundError("Job not found.")
        if record.status in FINISHED:
            raise JobNotRunningError("Job not found or not running.")
        return self._tail(job_id, poll)

    async def _tail(self, job_id: str, poll: float) -> AsyncIterator[bytes]:
        log = self.workspace(job_id).log_file
        offset = 0
        while True:
            done = await self._finished(job_id)  # before the read: then read the rest
            chunk = await asyncio.to_thread(_read_from, log, offset)
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            if done:
                return
            await asyncio.sleep(poll)

    async def _finished(self, job_id: str) -> bool:
        record = await self.load(job_id)
        return record is None or record.status in FINISHED


class JobNotRunningError(JobNotFoundError):
    """The job exists but has finished: nothing is streaming (Ocean Node answers 404)."""

    code = "job_not_running"


def _read_from(path: Path, offset: int, limit: int = 64 * 1024) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except FileNotFoundError:
        return b""


def _within(results: list[JobResult], quota: int) -> tuple[list[JobResult], int]:
    """The outputs whose running total fits ``quota``, then the log (re-indexed), and
    how many outputs were left out."""
    kept: list[JobResult] = []
    total, cut = 0, 0
    for result in results:
        if result.type == "output":
            if total + result.filesize > quota:
                cut += 1
                continue
            total += result.filesize
        kept.append(replace(result, index=len(kept)))
    return kept, cut


def _log_result(size: int) -> JobResult:
    return JobResult(filename="algorithm.log", filesize=size, type="algorithmLog", index=0)


async def _at_most(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The first ``size`` bytes: a log still growing must match the announced length."""
    left = size
    try:
        async for chunk in chunks:
            if left <= 0:
                break
            yield chunk[:left]
            left -= len(chunk)
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()  # closes the file at once, also when cut short

