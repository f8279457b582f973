"""Compute delete: remove the owner's jobs' files (signed); the records stay, ``removed``.

A deleted job keeps its record with ``removed: 1`` and no results, as operator-service
does, so a second delete or a status still finds it.
"""

from __future__ import annotations

from tidegate.commands.compute.context import ComputeContext
from tidegate.commands.compute.jobs import JobSelection, found, job_owner
from tidegate.compute.jobs import JobRecord


async def delete_compute(ctx: ComputeContext, selection: JobSelection) -> list[JobRecord]:
    """Records of the deleted jobs; 404 for a named unknown job."""
    owner = await job_owner(ctx, selection, signed=True)
    return found(await ctx.engine.delete(owner, selection.job_id, selection.did), selection)
