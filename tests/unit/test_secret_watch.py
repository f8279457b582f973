"""The suite-wide watch (tests/secret_watch.py) sees the key where it would leak."""

import logging

import httpx

from tests.helpers import PROVIDER_KEY
from tests.secret_watch import WATCH, leaks


async def test_the_watch_catches_a_key_in_a_log_line_and_an_error_body() -> None:
    logging.getLogger("tidegate.selfcheck").warning("oops %s", PROVIDER_KEY)
    try:  # Tidegate's log lines scrub an exception's message: not a hit
        raise ValueError(f"bad key {PROVIDER_KEY}")
    except ValueError:
        logging.getLogger("tidegate.selfcheck").exception("failed")
    await WATCH.check_response(httpx.Response(500, text=f'{{"error": "{PROVIDER_KEY}"}}'))
    await WATCH.check_response(httpx.Response(200, text=PROVIDER_KEY))  # only errors
    hits, WATCH.hits[:] = list(WATCH.hits), []  # seen here, so this test does not fail
    assert [hit.split(":")[0] for hit in hits] == ["log line", "500 body"], hits
    assert leaks(PROVIDER_KEY.upper()) and not leaks("0x" + "ab" * 32)
