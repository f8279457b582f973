"""A watch over the whole test suite for the provider's private key (#16 item 9).

Every log record any test produces (formatted as Tidegate's JSON log line, exception
fields included) and every error body an in-process client receives is searched for
the test provider key, in the spellings it could leak in; a hit fails the test that
produced it. The consumer keys are not watched: tests sign with them, Tidegate never
holds them.
"""

from __future__ import annotations

import logging
from typing import Final

import httpx

from tests.helpers import PROVIDER_KEY
from tidegate.logs import JsonFormatter

_HEX: Final = PROVIDER_KEY.removeprefix("0x").lower()
SPELLINGS: Final = (_HEX, _HEX.upper(), repr(bytes.fromhex(_HEX))[2:-1])


def leaks(text: str) -> list[str]:
    """The spellings of the provider key found in ``text``."""
    return [spelling for spelling in SPELLINGS if spelling in text]


class SecretWatch(logging.Handler):
    """Collects the log lines (and error bodies) that hold the key, per test."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is another test's problem
            return
        if leaks(line):
            self.hits.append(f"log line: {line[:300]}")

    async def check_response(self, response: httpx.Response) -> None:
        """An httpx response hook: error bodies must not hold the key."""
        if response.status_code >= 400:
            body = (await response.aread()).decode("utf-8", "replace")
            if leaks(body):
                self.hits.append(f"{response.status_code} body: {body[:300]}")


WATCH: Final = SecretWatch()
