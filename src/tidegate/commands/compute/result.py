"""Compute result: open one result file of the owner's job (signed)."""

from __future__ import annotations

from dataclasses import dataclass

from tidegate.auth.request_auth import SignedRequest
from tidegate.commands.compute.context import ComputeContext
from tidegate.compute.engines.base import ResultStream


@dataclass(frozen=True)
class ComputeResult:
    """Result ``index`` (its position in the job's ``results``) of job ``job_id``, for
    the signer of ``proof``."""

    job_id: str
    index: int
    proof: SignedRequest


async def compute_result(ctx: ComputeContext, cmd: ComputeResult) -> ResultStream:
    """The opened result (nothing is streamed yet); 400/404 if the job has no such result."""
    owner = await ctx.authenticator.authenticate(cmd.proof)
    return await ctx.engine.result(owner, cmd.job_id, cmd.index)
