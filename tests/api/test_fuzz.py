"""Schemathesis over every operation of ``/openapi.json``, against a real ``tidegate serve``.

The server is a subprocess on loopback, dev-style: the session test chain (Ocean
contracts deployed), SQLite, private file URLs refused, no gateways. ``schemathesis
run`` (its CLI, in a subprocess: the runner that ``make fuzz`` uses too) sends, per
operation, the schema's examples, its coverage cases (boundaries, missing and
wrong-typed fields, invalid values) and ``TIDEGATE_FUZZ_EXAMPLES`` random cases
(default 25; ``make fuzz`` runs 300), with a fixed seed (``TIDEGATE_FUZZ_SEED``,
default 16), one worker. A case fails on a 5xx other than a documented 502/503/504, on
an error body that is not JSON ``{error, code}`` (tests/api/fuzz_hooks.py), and on a
response that does not match its documented schema or media type (schemathesis's
``response_schema_conformance``, ``content_type_conformance``), and on schema drift:
schema-valid data refused or schema-invalid data accepted (``positive_data_acceptance``
and ``negative_data_rejection``, less what OpenAPI cannot state: tests/api/fuzz_hooks.py)
and an undocumented method not answered 405 (``unsupported_method``). The figures
(operations, cases, server errors) are printed at the end of the test session.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.api.fuzz import (
    error_body_problem,
    excused_refusal,
    server_error_problem,
    sink_urls,
    tidegate_process,
)
from tests.chain_fixtures import ChainHarness
from tests.helpers import PROVIDER_KEY
from tests.local_http import LocalServer, QuietHandler

EXAMPLES = int(os.environ.get("TIDEGATE_FUZZ_EXAMPLES", "25"))
#: Seconds the run may take: about 50 s at 25 cases per operation on an idle 2-core
#: machine, about 1.5 s per random case per operation on a busy one.
BUDGET = 300 + 3 * EXAMPLES
SEED = int(os.environ.get("TIDEGATE_FUZZ_SEED", "16"))
#: The schema-drift checks are schemathesis's ``positive_data_acceptance`` and
#: ``negative_data_rejection`` with the narrow exclusions of tests/api/fuzz_hooks.py (the
#: ``tidegate_`` ones), and ``unsupported_method``. ``TIDEGATE_FUZZ_CHECKS`` replaces
#: them, e.g. ``make fuzz FUZZ_CHECKS=all`` for every check schemathesis has (its own
#: drift checks give way to ours).
CHECKS = os.environ.get("TIDEGATE_FUZZ_CHECKS") or ",".join((
    "tidegate_rules", "response_schema_conformance", "content_type_conformance",
    "tidegate_positive_data_acceptance", "tidegate_negative_data_rejection",
    "unsupported_method"))
REPLACED_CHECKS = "positive_data_acceptance,negative_data_rejection"


@pytest.fixture(scope="module")
def fuzzed_server(session_harness: ChainHarness,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("fuzz")
    env = {
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "NETWORK_URL": session_harness.rpc.url,
        "ADDRESS_FILE": str(session_harness.address_file),
        "TIDEGATE_DATA_DIR": str(data),
        # Fuzzed file objects must reach nothing: private addresses refused (the
        # hooks point every URL at loopback), no gateways.
        "TIDEGATE_ALLOW_PRIVATE_URLS": "false",
        "IPFS_GATEWAY": "",
        "ARWEAVE_GATEWAY": "",
        "TIDEGATE_ACCESS_LOG": "false",
        "TIDEGATE_RATE_LIMIT": "false",
        "LOG_LEVEL": "WARNING",
    }
    with tidegate_process(env, data / "server.log") as url:
        yield url


def run_schemathesis(base_url: str, tally: Path, examples: int = EXAMPLES,
                     ) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, int]]]:
    """``schemathesis run`` over ``base_url``'s document with our checks and hooks: the
    finished process and the statuses answered, per operation."""
    # No crash cache and no example database: a run would replay earlier failures
    # first, so it would not be the same run for the same seed (and both would write
    # into the checkout: .schemathesis/, .hypothesis/).
    config = tally.with_name("schemathesis.toml")
    config.write_text("[cache]\nenabled = false\n")
    run = subprocess.run(
        [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
         "--config-file", str(config),
         "run", base_url + "/openapi.json", "--checks", CHECKS,
         *(["--exclude-checks", REPLACED_CHECKS] if CHECKS == "all" else []),
         "--seed", str(SEED), "--max-examples", str(examples), "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
         "--generation-database", "none",
         "--suppress-health-check", "all", "--warnings", "off", "--no-color"],
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks",
             "TIDEGATE_FUZZ_TALLY": str(tally)},
        capture_output=True, text=True, timeout=BUDGET, check=False,
    )
    assert tally.exists(), (run.stdout + run.stderr)[-6000:]
    return run, json.loads(tally.read_text())


@pytest.mark.timeout(BUDGET + 60)
def test_every_operation_holds_under_fuzzing(fuzzed_server: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run, statuses = run_schemathesis(fuzzed_server, tmp_path / "tally.json")
    output = run.stdout + run.stderr
    cases = sum(sum(counts.values()) for counts in statuses.values())
    server_errors = {label: {s: n for s, n in counts.items() if s.startswith("5")}
                     for label, counts in statuses.items()}
    server_errors = {label: found for label, found in server_errors.items() if found}
    figures = (f"fuzz figures: {len(statuses)} operations, {cases} cases, "
               f"{sum(sum(f.values()) for f in server_errors.values())} server errors "
               f"{server_errors or ''} (seed {SEED}, {EXAMPLES} random cases per operation)")
    with capsys.disabled():  # the figures are the run's record, shown even when it passes
        print("\n" + figures)
    operations = httpx.get(fuzzed_server + "/openapi.json").json()
    documented = {f"{method.upper()} {path}" for path, methods in operations["paths"].items()
                  for method in methods}
    # Every operation was fuzzed (schemathesis loads the document itself, fuzzes it not).
    assert documented - set(statuses) == {"GET /openapi.json"}, figures
    assert run.returncode == 0, output[-20000:]


# --- the rules themselves (they must be able to fail) --------------------------------


class _BrokenApi(QuietHandler):
    """A deliberately broken fake API (not Tidegate): one operation per defect."""

    DOCUMENT: ClassVar[dict[str, Any]] = {
        "openapi": "3.1.0", "info": {"title": "broken", "version": "1"},
        "paths": {path: {"get": {"operationId": path.strip("/"), "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {
                "type": "object", "required": ["n"],
                "properties": {"n": {"type": "integer"}}}}}},
            "503": {"description": "down"},
            "default": {"description": "error"}}}}
            for path in ("/bug", "/text-error", "/off-schema", "/undocumented-502", "/fine")},
    }
    ANSWERS: ClassVar[dict[str, tuple[int, str, bytes]]] = {
        "/bug": (500, "application/json", b'{"error": "boom", "code": "internal_error"}'),
        "/text-error": (400, "text/plain", b"Bad Request"),
        "/off-schema": (200, "application/json", b'{"n": "not a number"}'),
        "/undocumented-502": (502, "application/json", b'{"error": "x", "code": "y"}'),
        "/fine": (200, "application/json", b'{"n": 1}'),
    }

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/openapi.json":
            answer = (200, "application/json", json.dumps(self.DOCUMENT).encode())
        else:
            answer = self.ANSWERS.get(path, (404, "application/json",
                                             b'{"error": "no", "code": "not_found"}'))
        self._answer(*answer)

    def _not_allowed(self) -> None:  # what the coverage phase's unexpected methods get
        self._answer(405, "application/json", b'{"error": "no", "code": "method_not_allowed"}')

    def __getattr__(self, name: str) -> Any:  # do_POST, do_TRACE, do_QUERY...
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_run_fails_on_each_defect_of_a_deliberately_broken_fake_api(
        tmp_path: Path) -> None:
    """The same runner, checks and hooks, over a fake API with one defect per operation:
    the run fails and names each defective operation, and only those."""
    with LocalServer(_BrokenApi).running() as broken:
        run, statuses = run_schemathesis(broken.url, tmp_path / "tally.json", examples=2)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert set(statuses) == {f"GET {path}" for path in _BrokenApi.ANSWERS}
    failed = set(re.findall(r"^_+ (GET /[a-z0-9-]+) _+$", output, re.MULTILINE))
    assert failed == {"GET /bug", "GET /text-error", "GET /off-schema",
                      "GET /undocumented-502"}, output[-6000:]


def test_a_bug_or_an_undocumented_dependency_error_is_refused() -> None:
    assert server_error_problem(500, {500, 503}) is not None
    assert server_error_problem(501, {503}) is not None
    assert server_error_problem(503, {200}) is not None
    assert server_error_problem(502, {503}) is not None
    assert server_error_problem(503, {503}) is None
    assert server_error_problem(504, {502, 504}) is None
    assert server_error_problem(404, set()) is None


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", b"Internal Server Error"),
    ("application/json", b"not json"),
    ("application/json", b"[]"),
    ("application/json", b'{"error": "x"}'),
    ("application/json", b'{"error": "x", "code": 3}'),
    ("", b'{"error": "x", "code": "y"}'),
])
def test_an_error_body_that_is_not_json_error_and_code_is_refused(
        content_type: str, body: bytes) -> None:
    assert error_body_problem(400, content_type, body) is not None
    assert error_body_problem(503, content_type, body) is not None


def test_a_json_error_body_and_any_success_body_pass() -> None:
    body = b'{"error": "Bad.", "code": "bad"}'
    assert error_body_problem(400, "application/json", body) is None
    assert error_body_problem(400, "application/json; charset=utf-8", body) is None
    assert error_body_problem(200, "text/plain", b"anything") is None


def _refusal(code: str, **errors: str) -> bytes:
    return json.dumps({"error": "x", "code": code, "errors": errors}).encode()


def test_only_what_openapi_cannot_state_is_excused_from_the_drift_checks() -> None:
    future, past = {"expiration": 4_102_444_800}, {"expiration": "7"}
    assert excused_refusal("x", 400, _refusal("did_not_found"), [{}]) is not None
    assert excused_refusal("x", 400, _refusal("invalid_expiration"), [past]) is not None
    assert excused_refusal("x", 400, _refusal("invalid_expiration"), [future]) is None
    nonce = _refusal("validation_error", nonce="The nonce field is required.")
    assert excused_refusal("x", 400, nonce, [{}]) is not None
    assert excused_refusal("x", 400, nonce, [{}], token=True) is None
    assert excused_refusal("x", 400, _refusal("invalid_file_object"), [{"type": "url"}])
    assert excused_refusal("x", 400, _refusal("invalid_file_object"), [{"did": "d"}]) is None
    assert excused_refusal("aquariusValidate", 400, _refusal("validation_error"), [{}])
    # A refusal of the request's shape, or any other status, is drift.
    shape = _refusal("validation_error", fileIndex="The fileIndex must be less than 2.")
    assert excused_refusal("x", 400, shape, [{}]) is None
    assert excused_refusal("x", 404, _refusal("did_not_found"), [{}]) is None
    assert excused_refusal("x", 400, b"not json", [{}]) is None


def test_file_urls_are_sunk_to_loopback() -> None:
    data = {"type": "url", "url": "https://evil.example/a?b=1", "nested": [
        {"url": "http://x.test:8080/p"}], "other": "http://kept.example/"}
    assert sink_urls(data) == {"type": "url", "url": "https://127.0.0.1:9/a?b=1", "nested": [
        {"url": "http://127.0.0.1:9/p"}], "other": "http://kept.example/"}
    assert sink_urls({"url": "no url at all"}) == {"url": "no url at all"}


def test_the_server_log_path_is_written(tmp_path: Path) -> None:
    """tidegate_process reports a server that cannot start, with its log."""
    with pytest.raises(RuntimeError, match="did not start"), \
            tidegate_process({"NETWORK_URL": "not json {"}, tmp_path / "log"):
        pass
