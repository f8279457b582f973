"""Compute stop: stop the owner's running jobs (signed); a finished job stays as it is."""

from __future__ import annotations

from tidegate.commands.compute.context import ComputeContext
from tidegate.commands.compute.jobs import JobSelection, found, job_owner
from tidegate.compute.jobs import JobRecord


async def stop_compute(ctx: ComputeContext, selection: JobSelection) -> list[JobRecord]:
    """Records of the selected jobs after the stop request; 404 for a named unknown job."""
    owner = await job_owner(ctx, selection, signed=True)
    return found(await ctx.engine.stop(owner, selection.job_id, selection.did), selection)
