"""A method a path does not serve is a 405 JSON error whose ``Allow`` names every
method of that path (found by the schemathesis run's Allow-header check)."""

from __future__ import annotations

import httpx
import pytest

from tidegate.app import all_endpoints


def _methods(path: str) -> set[str]:
    found = {e.method for e in all_endpoints() if e.path == path}
    return found | ({"HEAD"} if "GET" in found else set())


@pytest.mark.parametrize(("method", "path"), [
    ("PATCH", "/api/services/compute"),
    ("OPTIONS", "/api/services/compute"),  # no Origin: not a CORS preflight
    ("DELETE", "/api/aquarius/assets/ddo/validate"),  # not taken for ddo/{did}
    ("GET", "/api/aquarius/assets/ddo/validate"),  # nor a GET, which ddo/{did} has
    ("PUT", "/api/services/nonce"),
    ("POST", "/api/aquarius/assets/ddo/did:op:" + "ab" * 32),
])
async def test_405_names_every_method_of_the_path(client: httpx.AsyncClient, method: str,
                                                  path: str) -> None:
    r = await client.request(method, path)
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    template = path if "did:op" not in path else "/api/aquarius/assets/ddo/{did}"
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed == _methods(template)


async def test_each_method_of_a_shared_path_reaches_its_own_endpoint(
        client: httpx.AsyncClient) -> None:
    # Four endpoints on /api/services/compute: each names its own missing fields.
    missing = {}
    for method in ("GET", "POST", "PUT", "DELETE"):
        r = await client.request(method, "/api/services/compute")
        assert r.status_code == 400, (method, r.text)
        missing[method] = set(r.json()["errors"])
    assert missing["GET"] == {"consumerAddress"}  # status: unsigned
    assert {"dataset", "algorithm", "environment", "nonce"} <= missing["POST"]
    # Stop also takes Ocean Node's Authorization token alone: its nonce is required by
    # the authenticator (once the address is given), not by the model.
    assert missing["PUT"] == {"consumerAddress"}
    assert missing["DELETE"] == {"consumerAddress", "nonce"}
    assert (await client.head("/api/services/nonce")).status_code == 400  # HEAD as GET
