"""Compute environments, grouped by chain (clients read them keyed by chain id)."""

from __future__ import annotations

from tidegate.chain.clients import Chains
from tidegate.compute.engines.base import ComputeEngine
from tidegate.compute.environments import Environment


async def compute_environments(engine: ComputeEngine,
                               chains: Chains) -> dict[int, list[Environment]]:
    """Every configured chain (possibly with no environment), then the engine's others."""
    answer: dict[int, list[Environment]] = {chain_id: [] for chain_id in chains.ids}
    for env in await engine.environments():
        answer.setdefault(env.chain_id, []).append(env)
    return answer
