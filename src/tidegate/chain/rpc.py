"""Translate web3 failures into Tidegate errors at the chain boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception

from tidegate.errors import BadRequestError, ServiceUnavailableError

T = TypeVar("T")


class ContractCallError(BadRequestError):
    code = "contract_call_failed"


async def rpc(call: Awaitable[T], what: str) -> T:
    """Await a web3 call; RPC trouble -> 503, a reverted call -> 400.

    ``TransactionNotFound`` passes through unchanged.

    ``what`` names the operation in the error (never the RPC URL).
    """
    try:
        return await call
    except TransactionNotFound:
        raise  # "not found" is an answer, not an outage: callers decide
    except ContractLogicError as exc:
        raise ContractCallError(f"The contract call failed: {what}.") from exc
    except (TimeoutError, Web3Exception, aiohttp.ClientError, OSError, ValueError) as exc:
        raise ServiceUnavailableError(f"The chain RPC is unavailable ({what}).") from exc


async def concurrently(*calls: Awaitable[Any]) -> list[Any]:
    """Await independent calls together; on the first failure cancel the rest.

    ``asyncio.gather`` would leave the other calls running after one fails, and they
    could outlive the request (and the RPC session, at shutdown). The first
    exception is re-raised as is, not wrapped in an ExceptionGroup.
    """
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
