"""Make ocean.py 3.1.2 importable and callable on Python >= 3.11.

ocean-lib 3.1.2 pins ``enforce-typing==1.0.0.post1``. Its ``enforce_types`` decorator
skips a hint only when the hint is a ``typing._SpecialForm`` instance and otherwise
calls ``isinstance(value, hint)``. Up to Python 3.10 ``typing.Any`` is such a special
form; from 3.11 on it is a class whose ``isinstance`` raises
``TypeError: typing.Any cannot be used with isinstance()``, so every ocean.py function
with an ``Any`` (or ``Optional[Any]``) parameter fails when it is called
(``pay_for_access_service``, ``download_asset``, ``DataServiceProvider.initialize``...).

``make e2e-setup`` copies this module into ``.venv-oceanpy``'s site-packages together
with a ``.pth`` file that imports it at interpreter start, but only when that venv's
Python is 3.11 or newer (with Python 3.10 nothing is patched). It wraps the original
decorator: the hints that mention ``Any`` are hidden from it while it reads the
signature, so those parameters are simply not checked (as on 3.10); every other
check of the original runs unchanged. It changes no byte that ocean.py sends.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import typing

_PATCHED = "_tidegate_e2e_any_fix"


def _mentions_any(hint: object) -> bool:
    if hint is typing.Any:
        return True
    return typing.get_origin(hint) is typing.Union and typing.Any in typing.get_args(hint)


def _patch() -> None:
    import enforce_typing
    import enforce_typing.decorator as decorator

    original = decorator.enforce_types
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def enforce_types(wrapped: typing.Any) -> typing.Any:
        target = wrapped.__init__ if inspect.isclass(wrapped) else wrapped
        annotations = getattr(target, "__annotations__", None)
        if not isinstance(annotations, dict):
            return original(wrapped)
        hidden = {name: hint for name, hint in annotations.items() if _mentions_any(hint)}
        for name in hidden:
            del annotations[name]
        try:
            # The original reads the annotations once, here, into its own copy.
            return original(wrapped)
        finally:
            annotations.update(hidden)

    setattr(enforce_types, _PATCHED, True)
    decorator.enforce_types = enforce_types
    enforce_typing.enforce_types = enforce_types


# This file runs in the client venv, whose Python may be 3.10 (nothing to patch there).
if sys.version_info >= (3, 11):  # noqa: UP036
    with contextlib.suppress(ImportError):  # enforce_typing not installed: nothing to patch
        _patch()
