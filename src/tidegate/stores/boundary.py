"""Where database exceptions become Tidegate errors.

A store whose database is down, restarting, locked or out of disk is a dependency
that is unavailable: the client gets a 503 ``store_unavailable`` (and can retry),
never a 500 with a driver's exception. Everything else a driver raises (a syntax
error, a constraint violated) is a bug in Tidegate and stays an unexpected error,
which the API layer answers with a scrubbed 500.

The driver's message is not carried over: it can name the database, its host or a
statement's parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tidegate.errors import ServiceUnavailableError

T = TypeVar("T")


class StoreUnavailableError(ServiceUnavailableError):
    code = "store_unavailable"


def translate_unavailable(
    is_unavailable: Callable[[Exception], bool],
) -> Callable[[type[T]], type[T]]:
    """Class decorator: every public coroutine method of the store raises
    :class:`StoreUnavailableError` instead of an exception ``is_unavailable`` accepts
    (the others propagate unchanged)."""

    def guard(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except StoreUnavailableError:
                raise
            except Exception as exc:
                if is_unavailable(exc):
                    raise StoreUnavailableError("The database is unavailable.") from exc
                raise

        return guarded

    def decorate(cls: type[T]) -> type[T]:
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(member):
                setattr(cls, name, guard(member))
        return cls

    return decorate
