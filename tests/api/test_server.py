"""A real `tidegate serve` process: HTTP over a socket, and state across restarts."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import base_env, offline_address_file
from tests.helpers import CONSUMER_ADDRESS, CONSUMER_KEY, sign_like_ocean_js


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tidegate", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start: " + log.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {**base_env(tmp_path), "TIDEGATE_ACCESS_LOG": "true",
           "ADDRESS_FILE": str(offline_address_file(tmp_path))}


def test_state_survives_restart_and_logs_hold_no_secrets(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = Server(env, log)
    try:
        nonce = "7"
        signature = sign_like_ocean_js(CONSUMER_ADDRESS + nonce, CONSUMER_KEY)
        r = httpx.get(server.url + "/api/services/createAuthToken", params={
            "address": CONSUMER_ADDRESS, "nonce": nonce, "signature": signature,
            "expiration": str(int(time.time()) + 3600)})
        assert r.status_code == 200
        token = r.json()["token"]
        signature2 = sign_like_ocean_js(CONSUMER_ADDRESS + "8", CONSUMER_KEY)
        r = httpx.request("DELETE", server.url + "/api/services/deleteAuthToken", params={
            "address": CONSUMER_ADDRESS, "nonce": "8", "signature": signature2, "token": token})
        assert r.status_code == 200
        assert r.headers.get("connection") != "close"  # keep-alive, unlike the reference
    finally:
        server.stop()

    server = Server(env, log)
    try:
        r = httpx.get(server.url + "/api/services/nonce",
                      params={"userAddress": CONSUMER_ADDRESS})
        assert r.json() == {"nonce": 8}
        # The revocation survived, and so did the token secret (else: "invalid").
        signature3 = sign_like_ocean_js(CONSUMER_ADDRESS + "9", CONSUMER_KEY)
        r = httpx.request("DELETE", server.url + "/api/services/deleteAuthToken", params={
            "address": CONSUMER_ADDRESS, "nonce": "9", "signature": signature3, "token": token})
        assert (r.status_code, r.json()["code"]) == (401, "token_deleted")
    finally:
        server.stop()

    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line.get("logger") == "tidegate.access" for line in lines)
    for secret in (signature, signature2, token, CONSUMER_KEY, json.loads(env[
            "PROVIDER_PRIVATE_KEY"])["8996"]):
        assert secret not in text


def test_bad_configuration_exits_with_message(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tidegate", "serve"],
        env={**os.environ, "PROVIDER_PRIVATE_KEY": "nope", "NETWORK_URL": "x"},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "PROVIDER_PRIVATE_KEY must be a 32-byte hex private key" in proc.stderr


def test_two_workers_log_json_lines_with_access_records(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "TIDEGATE_ACCESS_LOG": "true", "LOG_LEVEL": "INFO",
           "ADDRESS_FILE": str(offline_address_file(tmp_path))}
    port = free_port()
    log = tmp_path / "workers.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidegate", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        given = httpx.get(url + "/api/services/nonce", params={"userAddress": CONSUMER_ADDRESS},
                          headers={"X-Request-ID": "trace-42"})
        assert given.headers["x-request-id"] == "trace-42"
        fresh = httpx.get(url + "/api/aquarius/assets/ddo/did:op:" + "ab" * 32,
                          headers={"X-Request-ID": "not a token; drop"})
        assert fresh.status_code == 404 and len(fresh.headers["x-request-id"]) == 16
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lines = log.read_text().splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every stderr line is JSON
    access = [r for r in records if r["logger"] == "tidegate.access"]
    by_id = {r["request_id"]: r for r in access}
    assert by_id["trace-42"]["route"] == "/api/services/nonce"
    assert by_id["trace-42"]["status"] == 200 and by_id["trace-42"]["bytes"] > 0
    assert by_id[fresh.headers["x-request-id"]]["status"] == 404
    assert all("?" not in r["path"] and isinstance(r["ms"], float) for r in access)
    assert any(r["logger"] == "tidegate.startup" for r in records)


def test_text_log_format_for_humans(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tidegate", "serve", "--port", "1"],
        env={**os.environ, **base_env(tmp_path), "LOG_FORMAT": "loud"},
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "LOG_FORMAT must be json or text" in proc.stderr
    import logging

    from tidegate.logs import FIELDS_EXTRA, TextFormatter

    record = logging.LogRecord("tidegate.access", logging.INFO, __file__, 1, "GET / %d",
                               (200,), None)
    setattr(record, FIELDS_EXTRA, {"status": 200, "ms": 1.5})
    text = TextFormatter().format(record)
    assert text.endswith("INFO    tidegate.access: GET / 200 status=200 ms=1.5")
