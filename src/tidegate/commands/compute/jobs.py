"""What status, stop and delete share: which jobs, and who may act on them.

The job operations select the owner's jobs (optionally one job, or one input's). Stop
and delete are always signed (``consumerAddress + jobId + documentId + nonce`` in the
Provider API); status only where the operator requires it
(``TIDEGATE_COMPUTE_STATUS_SIGNED``; ocean.js sends no signature), which is why the
check takes ``signed``: the one home of the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidegate.auth.request_auth import SignedRequest
from tidegate.commands.compute.context import ComputeContext
from tidegate.compute.jobs import JobNotFoundError, JobRecord


@dataclass(frozen=True)
class JobSelection:
    """The jobs of ``owner`` (checksummed), narrowed to ``job_id`` and/or ``did``;
    ``proof``: the owner's signed request for them."""

    owner: str
    proof: SignedRequest
    job_id: str | None = None
    did: str | None = None


async def job_owner(ctx: ComputeContext, selection: JobSelection, *, signed: bool) -> str:
    """The owner whose jobs may be touched: the verified signer when ``signed``."""
    if signed:
        return await ctx.authenticator.authenticate(selection.proof)
    return selection.owner


def found(jobs: list[JobRecord], selection: JobSelection) -> list[JobRecord]:
    """The records, or a 404 ``job_not_found`` when a named job does not exist.

    ocean.py 3.1.2 reads element 0 of a stop/delete answer: an empty list would crash
    it with IndexError, a 404 becomes its ordinary provider error.
    """
    if selection.job_id and not jobs:
        raise JobNotFoundError("Job not found.")
    return jobs
