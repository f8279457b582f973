"""Schemathesis hooks for the fuzz run (``SCHEMATHESIS_HOOKS=tests.api.fuzz_hooks``).

Loaded by the ``schemathesis run`` process that tests/api/test_fuzz.py starts:

* ``tidegate_rules``: the check of tests/api/fuzz.py (documented 502/503/504 only;
  JSON ``{error, code}`` error bodies);
* every fuzzed file URL is pointed at a dead loopback port before it is sent;
* each answer's status is tallied per operation into ``TIDEGATE_FUZZ_TALLY`` (a JSON
  file, written at exit) for the run's figures.
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis

from tests.api.fuzz import (
    documented_statuses,
    error_body_problem,
    server_error_problem,
    sink_urls,
)

_TALLY: dict[str, Counter[str]] = {}


@schemathesis.check
def tidegate_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 5xx is a documented 502/503/504; an error body is JSON ``{error, code}``."""
    status = int(response.status_code)
    documented = documented_statuses(case.operation.definition.raw)
    content_type = (response.headers.get("content-type") or [""])[0]
    for problem in (server_error_problem(status, documented),
                    error_body_problem(status, content_type, response.content)):
        if problem is not None:
            raise AssertionError(problem)
    return None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if isinstance(case.body, dict | list):
        case.body = sink_urls(case.body)
    if isinstance(case.query, dict):
        case.query = sink_urls(case.query)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    _TALLY.setdefault(case.operation.label, Counter())[str(response.status_code)] += 1


def _write_tally() -> None:
    target = os.environ.get("TIDEGATE_FUZZ_TALLY")
    if target:
        Path(target).write_text(json.dumps(_TALLY, sort_keys=True))


atexit.register(_write_tally)
