"""Streamable logs (Ocean Node's ``getComputeStreamableLogs``): a running job's log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from tidegate.auth.request_auth import SignedRequest
from tidegate.commands.compute.context import ComputeContext


@dataclass(frozen=True)
class ComputeLogs:
    """The log of job ``job_id``, for the signer of ``proof`` (its owner)."""

    job_id: str
    proof: SignedRequest


async def compute_logs(ctx: ComputeContext, cmd: ComputeLogs) -> AsyncIterator[bytes]:
    """The log so far, then as it grows until the job ends. The nonce is consumed;
    404 ``job_not_found`` for another owner's or an unknown job, 404 ``job_not_running``
    once the job has finished (its log is then a result: ``computeResult``)."""
    owner = await ctx.authenticator.authenticate(cmd.proof)
    return await ctx.engine.follow_log(owner, cmd.job_id)
