import httpx


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    # The test chain RPC (127.0.0.1:9) is down: not ready, and it says which part.
    r = await client.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["store"] == "ok"
    assert r.json()["chains"] == {"8996": "unavailable"}


async def test_ready_with_a_live_chain(chain_client: httpx.AsyncClient) -> None:
    r = await chain_client.get("/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "store": "ok", "chains": {"8996": "ok"},
                        "compute": "ok"}


async def test_metrics_count_requests_per_route(client: httpx.AsyncClient) -> None:
    await client.get("/api/services/nonce")
    text = (await client.get("/metrics")).text
    assert 'tidegate_requests_total{method="GET",route="/api/services/nonce",status="400"}' in text
    assert "tidegate_request_duration_seconds_bucket" in text


async def test_openapi_describes_every_endpoint(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    root = (await client.get("/")).json()
    for method, path in root["serviceEndpoints"].values():
        assert method.lower() in doc["paths"][path], path
    params = doc["paths"]["/api/services/createAuthToken"]["get"]["parameters"]
    assert {p["name"] for p in params} == {"address", "nonce", "signature", "expiration"}
    assert "requestBody" in doc["paths"]["/api/services/encrypt"]["post"]
    assert (await client.get("/docs")).status_code == 200


async def test_docs_work_offline(client: httpx.AsyncClient) -> None:
    # Swagger UI comes from Tidegate itself: no external URL in the page, and every
    # file it loads is served (a blank page offline or air-gapped otherwise).
    import re

    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href|url)\s*[:=]\s*"([^"]+)"', page.text)
    assert urls and not [u for u in urls if "//" in u], urls
    assets = [u for u in urls if u.startswith("/docs/assets/")]
    assert len(assets) == 3
    for url in assets:
        r = await client.get(url)
        assert r.status_code == 200, url
        assert len(r.content) > 500, url
    assert "SwaggerUIBundle" in (await client.get("/docs/assets/swagger-ui-bundle.js")).text
    for other in ("/docs/assets/index.html", "/docs/assets/..%2F__init__.py",
                  "/docs/assets/swagger-ui-bundle.js.map"):
        r = await client.get(other)
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), other


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/services/nothing", params={"secret": "0xabc"})
    assert r.status_code == 404
    assert r.json() == {"error": "Not found.", "code": "not_found"}


async def test_cors_preflight(client: httpx.AsyncClient) -> None:
    r = await client.options("/api/services/nonce", headers={
        "Origin": "https://market.example", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
