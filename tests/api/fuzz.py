"""What the schemathesis run holds every answer to, and the Tidegate it runs against.

The rules are plain functions over (status, headers, body, documented statuses), so
they are tested on their own (tests/api/test_fuzz.py) and wrapped as schemathesis
checks for the run:

* no 5xx other than 502/503/504, and those only where the operation documents them;
* every error (4xx/5xx) is a JSON object with a string ``error`` and a string ``code``.

Schemathesis's own ``response_schema_conformance`` and ``content_type_conformance``
check the body against its documented schema and media type.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

#: Server errors that mean "a dependency or the file's origin failed", never a bug.
DEPENDENCY_ERRORS = frozenset({502, 503, 504})
#: Keys of file objects whose text is a URL Tidegate would fetch.
URL_KEYS = ("url",)
#: Where every fuzzed file URL is sent instead: a loopback port nobody listens on.
#: The fuzzed Tidegate refuses private addresses, so it is never even connected to;
#: no fuzzed hostname ever reaches a DNS server.
LOOPBACK_SINK = "127.0.0.1:9"


def server_error_problem(status: int, documented: set[int]) -> str | None:
    """Why a ``status`` answer is a defect, or ``None`` (``documented``: the operation's)."""
    if status < 500:
        return None
    if status not in DEPENDENCY_ERRORS:
        return f"server error {status}: a bug (only 502/503/504 may come from outside)"
    if status not in documented:
        return f"server error {status} is not documented for this operation"
    return None


def error_body_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why an error answer's body is a defect (not a JSON ``{error, code}``), or ``None``."""
    if status < 400:
        return None
    if content_type.split(";")[0].strip().lower() != "application/json":
        return f"error {status} answered {content_type or 'no content type'}, not JSON"
    try:
        data = json.loads(body)
    except ValueError:
        return f"error {status} body is not JSON"
    if not isinstance(data, dict):
        return f"error {status} body is not a JSON object"
    for key in ("error", "code"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"error {status} body has no string {key!r}"
    return None


#: Refusals (400, the reference's status) of a request whose shape is valid, for what
#: the server knows rather than what the request says: a DID it cannot resolve, a chain
#: it does not serve, a compute environment it does not have. No request schema can
#: know them; schemathesis counts a 400 to schema-valid data as drift (it expects 404 or
#: 409 for such), so these codes are excused.
STATE_CODES: Final = frozenset({"did_not_found", "unsupported_chain", "unknown_environment"})
#: Codes of "a time in the future" refused for a time already past, by its field: the
#: bound moves with the clock, so the schema says "in the future" in its description.
TIME_CODES: Final = {"invalid_expiration": "expiration", "invalid_valid_until": "validUntil"}
#: Operations whose 400 is their answer, not a refusal of the request's shape: ddo/validate
#: judges a DDO (any JSON object) by the DDO rules, which are not its request schema.
JUDGES: Final = frozenset({"aquariusValidate"})


def _values(data: Any, key: str) -> Iterator[Any]:
    """Every value of ``key`` in ``data``, at any depth."""
    if isinstance(data, Mapping):
        for name, value in data.items():
            if name == key:
                yield value
            yield from _values(value, key)
    elif isinstance(data, list):
        for item in data:
            yield from _values(item, key)


def excused_refusal(operation_id: str, status: int, body: bytes, sent: list[Any],
                    *, token: bool = False) -> str | None:
    """Why a refusal of schema-valid data (``sent``: its query and body; ``token``: it
    carried an ``AuthToken`` or ``Authorization`` header) is not drift, or ``None``.

    Each excuse is a rule the models hold that OpenAPI 3.1 cannot state (each is in the
    field's or the operation's description)."""
    if status != 400:
        return None
    if operation_id in JUDGES:
        return "the operation's answer"
    try:
        answer = json.loads(body)
        code, errors = answer.get("code"), answer.get("errors") or {}
    except (ValueError, AttributeError):
        return None
    if code in STATE_CODES:
        return f"{code}: the server's state, not the request's shape"
    if code == "validation_error" and set(errors) == {"nonce"} and not token:
        # A nonce may be left out only beside a token (a header: another parameter set).
        return "a nonce is required without a token"
    if code in ("invalid_input", "missing_meta_documentId") and any(
            isinstance(v, str) for data in sent for v in _values(data, "meta")):
        # contentMediaType/contentSchema (JSON text of an object) are annotations: a
        # JSON Schema validator, and so schemathesis, does not assert them.
        return "algorithm.meta is text that is not a JSON object"
    if code == "invalid_file_object" and any(
            "type" in data for data in sent if isinstance(data, Mapping)):
        # A file object's keys are checked by its type's parser (the reference's rules
        # and messages, e.g. a smartcontract's ABI), not by the request schema.
        return "the file object's type rules"
    field = TIME_CODES.get(code)
    if field is not None:
        now = time.time()
        for value in (v for data in sent for v in _values(data, field)):
            number = _digits(value)
            if number is not None and number <= now:
                return f"{code}: {field} is past"
    return None


def _digits(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def documented_statuses(operation: Mapping[str, Any]) -> set[int]:
    """The explicit statuses of an OpenAPI operation's ``responses`` (not ``default``)."""
    return {int(key) for key in operation.get("responses", {}) if key.isdigit()}


def _sink(value: str) -> str:
    """``value`` with its host replaced by :data:`LOOPBACK_SINK` (scheme, path kept)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value  # not even a URL: Tidegate refuses it before any lookup
    if not parts.netloc:
        return value
    return parts._replace(netloc=LOOPBACK_SINK).geturl()


def sink_urls(data: Any) -> Any:
    """``data`` with every file-object URL pointed at :data:`LOOPBACK_SINK`.

    Fuzzed hostnames would otherwise be looked up in the machine's DNS; the URL's
    parsing is fuzzed in tests/unit/files (test_urls.py, test_safe_fetch.py).
    """
    if isinstance(data, dict):
        return {key: _sink(value) if key in URL_KEYS and isinstance(value, str)
                else sink_urls(value) for key, value in data.items()}
    if isinstance(data, list):
        return [sink_urls(item) for item in data]
    return data


@contextmanager
def tidegate_process(env: Mapping[str, str], log: Path) -> Iterator[str]:
    """A real ``tidegate serve`` on a free loopback port; yields its base URL.

    The process takes ``env`` over this one's (PYTHONPATH included, so a worktree
    serves its own source) and is terminated on exit.
    """
    from tests.api.server_helpers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidegate", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tidegate serve did not start:\n" + log.read_text()[-4000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
