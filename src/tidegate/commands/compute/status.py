"""Compute status: the owner's jobs (unsigned unless the operator requires a signature)."""

from __future__ import annotations

from tidegate.commands.compute.context import ComputeContext
from tidegate.commands.compute.jobs import JobSelection, job_owner
from tidegate.compute.jobs import JobRecord


async def compute_status(ctx: ComputeContext, selection: JobSelection, *,
                         signed: bool) -> list[JobRecord]:
    """Records of the selected jobs (possibly none: status never answers 404)."""
    owner = await job_owner(ctx, selection, signed=signed)
    return await ctx.engine.jobs(owner, selection.job_id, selection.did)
