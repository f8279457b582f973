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
from urllib.parse import parse_qsl, urlsplit

import jsonschema_rs
import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.api.fuzz import (
    documented_statuses,
    error_body_problem,
    excused_refusal,
    server_error_problem,
    sink_urls,
)
from tidegate.api.openapi import PARAMETERS_SOURCE

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


@schemathesis.check
def tidegate_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's ``positive_data_acceptance``, less the refusals that no request
    schema can describe (tests/api/fuzz.py ``excused_refusal``: the server's state, a
    time already past, a validator's verdict)."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        operation = case.operation.definition.raw
        query = _query_sent(response)
        read = query or (case.body if isinstance(case.body, dict) else {})
        if operation.get(PARAMETERS_SOURCE) and not _valid_as_body(case, read):
            # What the server read (the query, else the body: {} when there is none)
            # breaks a rule across fields, which the body's schema states (anyOf,
            # if/then) and OpenAPI cannot state for query parameters, nor for a request
            # with neither (both are optional: either may carry the parameters).
            return None
        headers = {str(name).lower() for name in (case.headers or {})}
        sent = [query, case.body] if query else [case.body]
        if excused_refusal(operation.get("operationId", ""), int(response.status_code),
                           response.content, sent,
                           token=bool(headers & {"authtoken", "authorization"})) is None:
            raise
        return None


def _query_sent(response: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(str(response.request.url)).query,
                          keep_blank_values=True))


def _valid_as_body(case: Any, query: dict[str, Any]) -> bool:
    body = case.operation.definition.raw.get("requestBody", {}).get("content", {}).get(
        "application/json", {}).get("schema")
    if body is None:
        return True
    document = case.operation.schema.raw_schema
    schema = {**body, "components": document.get("components", {})}
    return bool(jsonschema_rs.validator_for(schema).is_valid(query))


@schemathesis.check
def tidegate_negative_data_rejection(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's ``negative_data_rejection``, where the server reads parameters
    from the query, else the body (``x-tidegate-parameters``): only the part it read
    counts (an invalid body beside a query is never read; an invalid query left empty
    leaves the body to be read)."""
    if case.operation.definition.raw.get(PARAMETERS_SOURCE) and case.meta is not None:
        read = ParameterLocation.QUERY if urlsplit(str(response.request.url)).query \
            else ParameterLocation.BODY
        if not case.meta.is_negative_at(read):
            return None
    return negative_data_rejection(ctx, response, case)


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
